package cohort

import (
	"crypto/ed25519"
	"encoding/json"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
)

// The error kinds this package wraps, as the server's taxonomy names
// them; the API maps them to statuses.
var (
	ErrInvalid  = errs.Invalid
	ErrNotFound = errs.NotFound
	ErrConflict = errs.Conflict
)

// Service runs uploads, matches and deletions on one database.
type Service struct {
	DB *store.DB
	// TempDir holds spooled Parquet uploads; default the system's.
	TempDir string
	// Signer signs deletion receipts (the audit signing key).
	Signer ed25519.PrivateKey

	// beforeRecord, when set (by tests only), runs in StartMatch between
	// building the point tables and recording the match: where a
	// concurrent start can win the race.
	beforeRecord func()
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
