package partners

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

func refuseDeleted(c wire.Collaboration) error {
	if c.State == wire.StateDeleted {
		return errs.New(errs.Conflict, "collaboration %s was deleted; deletion is final, propose a new collaboration instead", c.ID)
	}
	return nil
}

// Propose creates a collaboration between the actor's partner and another,
// approved by the proposer only until the other approves.
func (s *Service) Propose(ctx context.Context, tx *sql.Tx, actor Principal, name, otherPartner string, rules wire.Rules) (wire.Collaboration, error) {
	if actor.IsOperator() {
		return wire.Collaboration{}, errs.New(errs.Forbidden, "the operator does not take part in collaborations; use a partner's admin key")
	}
	if otherPartner == actor.PartnerID {
		return wire.Collaboration{}, invalidf("a collaboration needs two different partners")
	}
	if otherPartner == OperatorID {
		return wire.Collaboration{}, invalidf("partner %s cannot take part in a collaboration", otherPartner)
	}
	if _, err := GetPartner(ctx, tx, otherPartner); err != nil {
		return wire.Collaboration{}, invalidf("partner %q does not exist", otherPartner)
	}
	if err := checkRules(ctx, tx, &rules, wire.Collaboration{Proposer: actor.PartnerID, Partner: otherPartner}); err != nil {
		return wire.Collaboration{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return wire.Collaboration{}, invalidf("name must be 1-200 characters")
	}
	if err := wire.CheckText("name", name); err != nil {
		return wire.Collaboration{}, invalidf("%v", err)
	}
	c := wire.Collaboration{ID: NewID("c_"), Name: name, Proposer: actor.PartnerID, Partner: otherPartner, Rules: rules,
		RulesVersion: 1, ApprovedBy: []string{actor.PartnerID}, State: wire.StateProposed, CreatedAt: s.now()}
	c.UpdatedAt = c.CreatedAt
	rj, aj, err := marshalRules(c, true)
	if err != nil {
		return wire.Collaboration{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO collaborations (id, name, proposer, partner, rules, rules_version, approved_by, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Proposer, c.Partner, rj, c.RulesVersion, aj, c.State, c.CreatedAt, c.UpdatedAt); err != nil {
		return wire.Collaboration{}, err
	}
	_, err = auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.CollaborationPropose,
		map[string]any{"name": c.Name, "partner": c.Partner, "rules": c.Rules, "rules_version": 1})
	return c, err
}

// GetCollaboration returns a collaboration the viewer may see: a member's
// key, or the operator's. Anyone else gets errs.NotFound, so outsiders cannot
// tell which collaborations exist.
func GetCollaboration(ctx context.Context, q store.Querier, id string, viewer Principal) (wire.Collaboration, error) {
	var c wire.Collaboration
	var rj, aj string
	var approved sql.NullString
	err := q.QueryRowContext(ctx, `SELECT c.id, c.name, c.proposer, c.partner, CAST(c.rules AS VARCHAR), c.rules_version, CAST(c.approved_by AS VARCHAR),
			c.state, c.created_at, c.updated_at, CAST(c.approved_rules AS VARCHAR), coalesce(a.name, ''), coalesce(b.name, '')
		FROM collaborations c LEFT JOIN partners a ON a.id = c.proposer LEFT JOIN partners b ON b.id = c.partner
		WHERE c.id = ?`, id).Scan(&c.ID, &c.Name, &c.Proposer, &c.Partner, &rj, &c.RulesVersion, &aj, &c.State, &c.CreatedAt, &c.UpdatedAt,
		&approved, &c.ProposerName, &c.PartnerName)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !c.HasMember(viewer.PartnerID) && !viewer.IsOperator()) {
		return wire.Collaboration{}, errs.New(errs.NotFound, "collaboration %s", id)
	}
	if err != nil {
		return c, err
	}
	c.Rules = wire.DefaultRules() // rules added since a collaboration was stored take their defaults
	if err := json.Unmarshal([]byte(rj), &c.Rules); err != nil {
		return c, fmt.Errorf("collaboration %s: stored rules: %w", id, err)
	}
	if err := json.Unmarshal([]byte(aj), &c.ApprovedBy); err != nil {
		return c, fmt.Errorf("collaboration %s: stored approvals: %w", id, err)
	}
	// The rules both last approved are shown beside a pending change, so
	// whoever approves it sees what would change.
	if approved.Valid && c.State == wire.StateProposed {
		r := wire.DefaultRules()
		if err := json.Unmarshal([]byte(approved.String), &r); err != nil {
			return c, fmt.Errorf("collaboration %s: stored approved rules: %w", id, err)
		}
		c.ApprovedRules = &r
	}
	return c, nil
}

// ListCollaborations returns the collaborations the viewer may see.
func ListCollaborations(ctx context.Context, q store.Querier, viewer Principal) ([]wire.Collaboration, error) {
	query := `SELECT id FROM collaborations`
	var args []any
	if !viewer.IsOperator() {
		query += ` WHERE proposer = ? OR partner = ?`
		args = append(args, viewer.PartnerID, viewer.PartnerID)
	}
	ids, err := store.QueryStrings(ctx, q, query+` ORDER BY created_at`, args...)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Collaboration, 0, len(ids))
	for _, id := range ids {
		c, err := GetCollaboration(ctx, q, id, viewer)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
