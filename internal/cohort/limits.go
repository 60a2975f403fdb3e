package cohort

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/psi"
)

// Defaults of the upload bounds.
const (
	// DefaultUploadsPerPartner: a partner's uploads in progress at once.
	DefaultUploadsPerPartner = 2
	// DefaultSpoolPerPartner: the bytes of a partner's Parquet uploads on
	// disk at once, the largest body the server reads by default.
	DefaultSpoolPerPartner = 4 << 30
)

func (s *Service) uploadsPerPartner() int {
	if s.UploadsPerPartner > 0 {
		return s.UploadsPerPartner
	}
	return DefaultUploadsPerPartner
}

func (s *Service) spoolPerPartner() int64 {
	if s.SpoolPerPartner > 0 {
		return s.SpoolPerPartner
	}
	return DefaultSpoolPerPartner
}

// uploadSlots counts each partner's uploads in progress and the bytes
// they spooled, so that one partner's uploads cannot take the server's
// disk, cores and memory from everyone else's. The zero value is ready.
type uploadSlots struct {
	mu      sync.Mutex
	running map[string]int
	spooled map[string]int64
}

// start takes one of the partner's upload slots, or refuses when it has
// limit uploads in progress; release gives it back.
func (u *uploadSlots) start(partnerID string, limit int) (release func(), err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.running[partnerID] >= limit {
		return nil, errs.New(errs.TooManyUploads, "your partner has %d uploads in progress, as many as the server takes from one partner at once (serve --uploads-per-partner); retry when one has finished", u.running[partnerID])
	}
	if u.running == nil {
		u.running = map[string]int{}
	}
	u.running[partnerID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.running[partnerID]--; u.running[partnerID] == 0 {
				delete(u.running, partnerID)
			}
		})
	}, nil
}

// spool counts n more bytes of one upload (which has spooled mine so
// far) against the partner's limit.
func (u *uploadSlots) spool(partnerID string, mine, n, limit int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if mine+n > limit {
		return errs.New(errs.TooLarge, "a Parquet body is spooled to the server's disk, and this one is over the %d bytes a partner's Parquet uploads may hold there (serve --spool-per-partner); send it as an Arrow IPC stream (cleanroom upload turns Parquet into one on your machine) or split it", limit)
	}
	if u.spooled[partnerID]+n > limit {
		return errs.New(errs.TooManyUploads, "your partner's other Parquet uploads in progress hold %d of the %d bytes its uploads may spool to the server's disk (serve --spool-per-partner); retry when they have finished", u.spooled[partnerID]-mine, limit)
	}
	if u.spooled == nil {
		u.spooled = map[string]int64{}
	}
	u.spooled[partnerID] += n
	return nil
}

func (u *uploadSlots) unspool(partnerID string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.spooled[partnerID] -= n; u.spooled[partnerID] <= 0 {
		delete(u.spooled, partnerID)
	}
}

// spoolWriter writes a spooled body, counting it against its partner's
// limit before each write; release gives the bytes back.
type spoolWriter struct {
	w       io.Writer
	s       *Service
	partner string
	n       int64
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if err := w.s.slots.spool(w.partner, w.n, int64(len(p)), w.s.spoolPerPartner()); err != nil {
		return 0, err
	}
	w.n += int64(len(p))
	return w.w.Write(p)
}

func (w *spoolWriter) release() {
	w.s.slots.unspool(w.partner, w.n)
	w.n = 0
}

// checkUploadTables checks an upload of table name against the party's
// current tables: one of the same name is replaced only when the upload
// says so, and the others must have been blinded with the same key.
func checkUploadTables(current []Audience, name string, o UploadOptions) error {
	for _, t := range current {
		if t.Table == name && !o.Replace {
			return errs.New(errs.ReplaceRequired, "your table %s already holds audience %s (%d rows, uploaded %s); an upload replaces it and deletes its data and the matches built from it: pass --replace (API: replace=true) to do so, or --dry-run (dry_run=true) to check the file without storing it",
				name, t.ID, t.Rows, t.CreatedAt.UTC().Format(time.RFC3339))
		}
	}
	if t, ok := otherKey(current, o.KeyFingerprint, name); ok {
		return errs.New(errs.KeyMismatch, "this upload was blinded with the key of fingerprint %s, but your table %s was blinded with the key of fingerprint %s; a person's tables join on their blinded point, and one key's points never meet another's: upload with the key file you used for %s, or delete your other tables to start over with this key",
			psi.ShortFingerprint(o.KeyFingerprint), t.Table, psi.ShortFingerprint(t.KeyFingerprint), t.Table)
	}
	return nil
}

// otherKey returns a table of tables, other than skip, that states a key
// fingerprint other than fp (a table or an fp that states none differs
// from nothing).
func otherKey(tables []Audience, fp, skip string) (Audience, bool) {
	if fp == "" {
		return Audience{}, false
	}
	for _, t := range tables {
		if t.Table != skip && t.KeyFingerprint != "" && t.KeyFingerprint != fp {
			return t, true
		}
	}
	return Audience{}, false
}

// CheckIdentifiersKey refuses identifiers (of a deletion, an opt-out or
// an access request) blinded with another key than the party's tables
// in collabID, fp being that key's fingerprint: they would find no one,
// and the receipt would say so as if the people were not there. It reads
// only the caller's own tables; "" (an older client) is not checked, nor
// is a party with no table yet (an opt-out may come first).
func (s *Service) CheckIdentifiersKey(ctx context.Context, q store.Querier, collabID, partnerID, fp string) error {
	if fp == "" {
		return nil
	}
	tables, err := s.CurrentTables(ctx, q, collabID, partnerID)
	if err != nil {
		return err
	}
	if t, ok := otherKey(tables, fp, ""); ok {
		return errs.New(errs.KeyMismatch, "these identifiers were blinded with the key of fingerprint %s, but your table %s was uploaded with the key of fingerprint %s; points blinded with another key find no one, so nothing was done: use the key file you uploaded with (--psi-key)",
			psi.ShortFingerprint(fp), t.Table, psi.ShortFingerprint(t.KeyFingerprint))
	}
	return nil
}

// errMatchKey refuses a match half (or start) whose key is not the one
// the caller's tables were blinded with.
func errMatchKey(fp string, t Audience) error {
	return errs.New(errs.KeyMismatch, "this match half comes with the key of fingerprint %s, but your table %s was uploaded with the key of fingerprint %s; points re-blinded with another key never match, and the match would charge both budgets for a cohort of nobody: run match with the key file you uploaded with, or upload your tables again with this key (--replace)",
		psi.ShortFingerprint(fp), t.Table, psi.ShortFingerprint(t.KeyFingerprint))
}

// nullable is s, or NULL for "".
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
