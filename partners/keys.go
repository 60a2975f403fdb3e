package partners

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// keyAdmin refuses an actor that is not partnerID's own admin: a
// partner's keys, after the first, are its admin's alone, not the
// operator's.
func keyAdmin(actor Principal, partnerID string) error {
	if actor.IsOperator() {
		return errs.New(errs.Forbidden, "a partner's keys are its own admin's to manage; the operator creates a partner and its first admin key only")
	}
	if actor.PartnerID != partnerID {
		return errs.New(errs.NotFound, "partner %s", partnerID)
	}
	if actor.Role != wire.Admin {
		return errs.New(errs.Forbidden, "this needs a key with role admin; yours is %s", actor.Role)
	}
	return nil
}

// CreateKey adds an API key for the actor's own partner (the actor must be
// its admin) and returns its secret, which is stored only as a SHA-256
// hash: it cannot be shown again.
func (s *Service) CreateKey(ctx context.Context, tx *sql.Tx, actor Principal, partnerID string, role wire.Role, label string) (wire.Key, string, error) {
	if err := keyAdmin(actor, partnerID); err != nil {
		return wire.Key{}, "", err
	}
	return s.createKey(ctx, tx, actor, partnerID, role, label)
}

func (s *Service) createKey(ctx context.Context, tx *sql.Tx, actor Principal, partnerID string, role wire.Role, label string) (wire.Key, string, error) {
	if _, err := wire.ParseRole(string(role)); err != nil {
		return wire.Key{}, "", invalidf("%v", err)
	}
	if len(label) > 200 {
		return wire.Key{}, "", invalidf("label longer than 200 characters")
	}
	if err := wire.CheckText("label", label); err != nil {
		return wire.Key{}, "", invalidf("%v", err)
	}
	if _, err := GetPartner(ctx, tx, partnerID); err != nil {
		return wire.Key{}, "", err
	}
	k := wire.Key{ID: NewID("k_"), PartnerID: partnerID, Role: role, Label: label, CreatedAt: s.now()}
	secretPart := randomID("", 32)
	sum := sha256.Sum256([]byte(secretPart))
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)`,
		k.ID, k.PartnerID, string(k.Role), k.Label, sum[:], k.CreatedAt); err != nil {
		return wire.Key{}, "", err
	}
	if _, err := auditlog.Append(ctx, tx, actor.KeyID, partnerID, "", audit.KeyCreate, map[string]any{"key_id": k.ID, "role": k.Role, "label": k.Label}); err != nil {
		return wire.Key{}, "", err
	}
	return k, keyPrefix + k.ID + "." + secretPart, nil
}

// RevokeKey stops a key of the actor's own partner (the actor must be its
// admin) from working, unless it is the partner's last admin key
// (errs.LastAdminKey). Revoking twice is a no-op.
func (s *Service) RevokeKey(ctx context.Context, tx *sql.Tx, actor Principal, partnerID, keyID string) (wire.Key, error) {
	if err := keyAdmin(actor, partnerID); err != nil {
		return wire.Key{}, err
	}
	k, err := GetKey(ctx, tx, keyID)
	if err != nil || k.PartnerID != partnerID {
		return wire.Key{}, errs.New(errs.NotFound, "key %s", keyID)
	}
	if k.RevokedAt != nil {
		return k, nil
	}
	// The operator mints only a partner's first admin key, so a partner
	// without one is locked out for good. The count reads this
	// transaction, and writes are serialised, so two revocations at once
	// cannot each see the other's key as the one left.
	if k.Role == wire.Admin {
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE partner_id = ? AND role = ? AND revoked_at IS NULL AND id <> ?`,
			partnerID, string(wire.Admin), keyID).Scan(&others); err != nil {
			return wire.Key{}, err
		}
		if others == 0 {
			return wire.Key{}, errs.New(errs.LastAdminKey, "key %s is the partner's last admin key: revoked, it would leave no one to manage the partner's keys and collaborations, and the operator cannot issue another; create a new admin key first (cleanroom keys rotate replaces a key in one step)", keyID)
		}
	}
	t := s.now()
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, t, keyID); err != nil {
		return wire.Key{}, err
	}
	k.RevokedAt = &t
	if _, err := auditlog.Append(ctx, tx, actor.KeyID, partnerID, "", audit.KeyRevoke, map[string]any{"key_id": keyID}); err != nil {
		return wire.Key{}, err
	}
	return k, nil
}

// GetKey returns a key by its id.
func GetKey(ctx context.Context, q store.Querier, id string) (wire.Key, error) {
	var k wire.Key
	var revoked sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT id, partner_id, role, label, created_at, revoked_at FROM api_keys WHERE id = ?`, id).
		Scan(&k.ID, &k.PartnerID, &k.Role, &k.Label, &k.CreatedAt, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return k, errs.New(errs.NotFound, "key %s", id)
	}
	if revoked.Valid {
		t := revoked.Time
		k.RevokedAt = &t
	}
	return k, err
}

// ListKeys returns the keys (never their secrets) of the actor's own
// partner; the actor must be its admin.
func ListKeys(ctx context.Context, q store.Querier, actor Principal, partnerID string) ([]wire.Key, error) {
	if err := keyAdmin(actor, partnerID); err != nil {
		return nil, err
	}
	ids, err := store.QueryStrings(ctx, q, `SELECT id FROM api_keys WHERE partner_id = ? ORDER BY created_at`, partnerID)
	if err != nil {
		return nil, err
	}
	keys := make([]wire.Key, 0, len(ids))
	for _, id := range ids {
		k, err := GetKey(ctx, q, id)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
