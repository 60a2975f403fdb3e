package cohort

import (
	"context"
	"sync"
	"time"

	"github.com/cleanroom/cleanroom/internal/store"
)

// Service runs uploads and matches on one database, and drops what a
// deletion (package deletion) takes.
type Service struct {
	DB *store.DB
	// TempDir holds spooled Parquet uploads; default the system's.
	TempDir string
	// Now stamps what the service records (audiences, matches, revisions,
	// the match's budget charge); default time.Now.
	Now func() time.Time
	// UploadsPerPartner bounds a partner's uploads in progress; default
	// DefaultUploadsPerPartner.
	UploadsPerPartner int
	// SpoolPerPartner bounds the bytes of a partner's Parquet uploads
	// spooled to TempDir at once; default DefaultSpoolPerPartner.
	SpoolPerPartner int64

	// slots counts each partner's uploads in progress and spooled bytes.
	slots uploadSlots

	// starts lets one StartMatch per collaboration build point tables at
	// a time: the parties start together, and two builds of the same
	// tables would each take the cores and memory the other needs.
	starts keyedLock
	// builds lets one PutPoints per collaboration build and publish a
	// cohort at a time (the build runs outside the write lock): the
	// second half to arrive sees the first recorded, and no two builds
	// of one match race to publish.
	builds keyedLock

	// beforeRecord, when set (by tests only), runs in StartMatch between
	// building the point tables and recording the match: where a
	// concurrent start can win the race.
	beforeRecord func()
	// beforePoints, when set (by tests only), runs in StartMatch after it
	// has read the parties' tables, before it reads their points: where
	// a replacement can drop a table under it.
	beforePoints func()
	// midBuild, when set (by tests only), runs in the middle of a cohort
	// build, with the build's transaction open: where other work must
	// not wait for it.
	midBuild func(matchID string)
}

// keyedLock is a mutex per key whose waiters give up with their context.
// The zero value is ready to use.
type keyedLock struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when the holder unlocks
}

// lock waits for key to be free, takes it, and returns its unlock.
func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		k.mu.Lock()
		done, busy := k.held[key]
		if !busy {
			if k.held == nil {
				k.held = map[string]chan struct{}{}
			}
			done = make(chan struct{})
			k.held[key] = done
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, key)
				k.mu.Unlock()
				close(done)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// now is the service's clock.
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
