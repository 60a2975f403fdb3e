package partners

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// OperatorID is the partner that runs the server. Its admin creates
// partners; its auditor reads the whole log.
const OperatorID = "operator"

func invalidf(format string, args ...any) error {
	return errs.New(errs.Invalid, "%s", fmt.Sprintf(format, args...))
}

var partnerName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._&'-]{0,99}$`)

// CreatePartner adds a partner and its first admin key, returning the key's
// secret (shown once). Only the operator's admin creates partners; every
// key after the first is the partner's own admin's business (CreateKey).
func (s *Service) CreatePartner(ctx context.Context, tx *sql.Tx, actor Principal, name string) (wire.Partner, wire.Key, string, error) {
	if !actor.IsOperator() || actor.Role != wire.Admin {
		return wire.Partner{}, wire.Key{}, "", errs.New(errs.Forbidden, "only the operator's admin key creates partners")
	}
	name = strings.TrimSpace(name)
	if err := wire.CheckText("name", name); err != nil {
		return wire.Partner{}, wire.Key{}, "", invalidf("partner %v", err)
	}
	if !partnerName.MatchString(name) {
		return wire.Partner{}, wire.Key{}, "", invalidf("partner name %q: use 1-100 letters, digits, spaces or . _ & ' -", name)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM partners WHERE lower(name) = lower(?)`, name).Scan(&n); err != nil {
		return wire.Partner{}, wire.Key{}, "", err
	}
	if n > 0 {
		return wire.Partner{}, wire.Key{}, "", errs.New(errs.Conflict, "a partner named %q already exists", name)
	}
	p := wire.Partner{ID: NewID("p_"), Name: name, CreatedAt: s.now()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO partners VALUES (?, ?, ?)`, p.ID, p.Name, p.CreatedAt); err != nil {
		return wire.Partner{}, wire.Key{}, "", err
	}
	if _, err := auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, "", audit.PartnerCreate, map[string]any{"partner_id": p.ID, "name": p.Name}); err != nil {
		return wire.Partner{}, wire.Key{}, "", err
	}
	k, secret, err := s.createKey(ctx, tx, actor, p.ID, wire.Admin, "first admin key")
	return p, k, secret, err
}

// EnsureOperator creates the operator partner and its admin key on first
// start. It returns the secret only when it created the key.
func (s *Service) EnsureOperator(ctx context.Context, tx *sql.Tx) (secret string, err error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM partners WHERE id = ?`, OperatorID).Scan(&n); err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO partners VALUES (?, 'operator', ?)`, OperatorID, s.now()); err != nil {
		return "", err
	}
	sys := Principal{KeyID: "system", PartnerID: OperatorID}
	if _, err := auditlog.Append(ctx, tx, sys.KeyID, OperatorID, "", audit.ServerInit, map[string]any{}); err != nil {
		return "", err
	}
	_, secret, err = s.createKey(ctx, tx, sys, OperatorID, wire.Admin, "operator admin key")
	return secret, err
}

// GetPartner returns a partner.
func GetPartner(ctx context.Context, q store.Querier, id string) (wire.Partner, error) {
	var p wire.Partner
	err := q.QueryRowContext(ctx, `SELECT id, name, created_at FROM partners WHERE id = ?`, id).Scan(&p.ID, &p.Name, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errs.New(errs.NotFound, "partner %s", id)
	}
	return p, err
}

// ListPartners returns every partner but the operator (an empty list, not
// nil, when there is none).
func ListPartners(ctx context.Context, q store.Querier) ([]wire.Partner, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, created_at FROM partners WHERE id <> ? ORDER BY created_at`, OperatorID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []wire.Partner{}
	for rows.Next() {
		var p wire.Partner
		if err := rows.Scan(&p.ID, &p.Name, &p.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
