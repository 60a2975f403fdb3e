package partners

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// Principal is an authenticated key.
type Principal struct {
	KeyID     string
	PartnerID string
	Role      wire.Role
}

// IsOperator reports whether the key belongs to the server's operator.
func (p Principal) IsOperator() bool { return p.PartnerID == OperatorID }

// keyPrefix starts every API key, so leaked keys are recognisable.
const keyPrefix = "crk_"

// Authenticate checks an API key and returns who it belongs to. Every
// failure is the same errs.Unauthorized, so a caller learns nothing about
// which keys exist.
func Authenticate(ctx context.Context, q store.Querier, apiKey string) (Principal, error) {
	rest, ok := strings.CutPrefix(apiKey, keyPrefix)
	if !ok {
		return Principal{}, errs.Unauthorized
	}
	id, secret, ok := strings.Cut(rest, ".")
	if !ok || len(id) > 64 {
		return Principal{}, errs.Unauthorized
	}
	var p Principal
	var stored []byte
	var revoked sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT id, partner_id, role, secret_sha256, revoked_at FROM api_keys WHERE id = ?`, id).
		Scan(&p.KeyID, &p.PartnerID, &p.Role, &stored, &revoked)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		// An outage is the operator's to see, not an unknown key: the
		// caller gets a 500 and the log says why.
		return Principal{}, fmt.Errorf("authenticating a key: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if err != nil || revoked.Valid || subtle.ConstantTimeCompare(sum[:], stored) != 1 {
		return Principal{}, errs.Unauthorized
	}
	return p, nil
}
