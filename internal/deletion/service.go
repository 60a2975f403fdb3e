package deletion

import (
	"crypto/ed25519"
	"time"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/store"
)

// Service runs deletions, opt-outs, expiry and access requests on one
// database. Each request is one store.DB.Write transaction; it takes none
// of the cohort service's per-collaboration locks, so a deletion never
// waits for a cohort build (which runs outside the write lock and finds
// its match voided when it publishes).
type Service struct {
	DB *store.DB
	// Cohorts drops and deletes people's data from its audiences, matches
	// and cohorts, in the transaction a deletion opens.
	Cohorts *cohort.Service
	// Signer signs deletion receipts (the audit signing key).
	Signer ed25519.PrivateKey
	// Now stamps what the service records (opt-outs, receipts, a
	// collaboration's end); default time.Now. Give it Cohorts' clock: the
	// revisions and drops Cohorts stamps belong to the same deletion.
	Now func() time.Time
}

// now is the service's clock.
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
