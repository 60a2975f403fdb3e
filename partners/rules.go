package partners

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// ParseRules reads rules JSON over the defaults as wire.ParseRules does;
// its errors are of kind errs.InvalidRules and name the rule.
func ParseRules(b []byte) (wire.Rules, error) {
	r, err := wire.ParseRules(b)
	if err != nil {
		return r, errs.New(errs.InvalidRules, "%w", err) // a *wire.JSONError stays reachable, to be placed in a body
	}
	return r, nil
}

// checkRules checks rules proposed for collaboration c (between
// c.Proposer and c.Partner; no ID yet when it is being proposed),
// including the names analysts will give the columns its tables declare
// and that every column the rules name is one a party has.
func checkRules(ctx context.Context, q store.Querier, r *wire.Rules, c wire.Collaboration) error {
	a, b := c.Proposer, c.Partner
	if err := r.Validate(); err != nil {
		return errs.New(errs.InvalidRules, "%v", err)
	}
	if cols := DeclaredColumns(*r); len(cols) > 0 {
		n, err := NamingOf(ctx, q, a, b)
		if err != nil {
			return err
		}
		if _, err := n.Names(cols); err != nil {
			return errs.New(errs.InvalidRules, "rules: tables: %v", err)
		}
	}
	for _, q := range r.Queriers {
		if q != a && q != b {
			return errs.New(errs.InvalidRules, "rules: queriers: %q is not a partner of this collaboration", q)
		}
	}
	return checkColumnNames(ctx, q, r, c)
}

// memberOf loads collaboration id for actor, who must be one of its
// partners (to verb its rules), and refuses a deleted one.
func memberOf(ctx context.Context, tx *sql.Tx, actor Principal, id, verb string) (wire.Collaboration, error) {
	c, err := GetCollaboration(ctx, tx, id, actor)
	if err != nil {
		return c, err
	}
	if !c.HasMember(actor.PartnerID) {
		return c, errs.New(errs.Forbidden, "only the collaboration's partners %s its rules", verb)
	}
	return c, refuseDeleted(c)
}

// marshalRules is the stored form of c's approvals and, with withRules,
// of its rules.
func marshalRules(c wire.Collaboration, withRules bool) (rules, approvedBy string, err error) {
	var rj []byte
	if withRules {
		if rj, err = json.Marshal(c.Rules); err != nil {
			return "", "", fmt.Errorf("collaboration %s: rules: %w", c.ID, err)
		}
	}
	aj, err := json.Marshal(c.ApprovedBy)
	if err != nil {
		return "", "", fmt.Errorf("collaboration %s: approvals: %w", c.ID, err)
	}
	return string(rj), string(aj), nil
}

// saveRules stores c's approvals, state and time, with its rules and
// version when they changed, and logs action with details, in tx. With
// agreed, the rules both partners now approve are kept apart too, for the
// diff of a later change.
func saveRules(ctx context.Context, tx *sql.Tx, actor Principal, c wire.Collaboration, changed, agreed bool, action audit.Action, details map[string]any) error {
	rj, aj, err := marshalRules(c, changed)
	if err != nil {
		return err
	}
	// approved_rules reads the row's rules before this update: with
	// agreed, they are the rules just approved.
	const set = `approved_by = ?, state = ?, updated_at = ?, approved_rules = CASE WHEN ? THEN rules ELSE approved_rules END`
	if changed {
		_, err = tx.ExecContext(ctx, `UPDATE collaborations SET rules = ?, rules_version = ?, `+set+` WHERE id = ?`,
			rj, c.RulesVersion, aj, c.State, c.UpdatedAt, agreed, c.ID)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE collaborations SET `+set+` WHERE id = ?`, aj, c.State, c.UpdatedAt, agreed, c.ID)
	}
	if err != nil {
		return err
	}
	_, err = auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, action, details)
	return err
}

// Approve records the actor's partner's approval of the current rules; the
// collaboration is active once both approved. Approving again is a no-op.
func (s *Service) Approve(ctx context.Context, tx *sql.Tx, actor Principal, id string, rulesVersion int) (wire.Collaboration, error) {
	c, err := memberOf(ctx, tx, actor, id, "approve or change")
	if err != nil {
		return c, err
	}
	if rulesVersion != 0 && rulesVersion != c.RulesVersion {
		return c, errs.New(errs.Conflict, "the rules changed (now version %d, you approved version %d); review them and approve again", c.RulesVersion, rulesVersion)
	}
	if slices.Contains(c.ApprovedBy, actor.PartnerID) {
		return c, nil
	}
	c.ApprovedBy = append(c.ApprovedBy, actor.PartnerID)
	if len(c.ApprovedBy) == 2 {
		c.State, c.ApprovedRules = wire.StateActive, nil
	}
	c.UpdatedAt = s.now()
	err = saveRules(ctx, tx, actor, c, false, c.State == wire.StateActive, audit.CollaborationApprove,
		map[string]any{"rules_version": c.RulesVersion, "state": c.State})
	return c, err
}

// ChangeRules proposes new rules: the collaboration goes back to proposed
// with only the actor's approval, until the other partner approves again.
func (s *Service) ChangeRules(ctx context.Context, tx *sql.Tx, actor Principal, id string, rules wire.Rules) (wire.Collaboration, error) {
	c, err := memberOf(ctx, tx, actor, id, "approve or change")
	if err != nil {
		return c, err
	}
	if err := checkRules(ctx, tx, &rules, c); err != nil {
		return c, err
	}
	c.Rules, c.RulesVersion, c.ApprovedBy, c.State, c.UpdatedAt = rules, c.RulesVersion+1, []string{actor.PartnerID}, wire.StateProposed, s.now()
	if err := saveRules(ctx, tx, actor, c, true, false, audit.CollaborationChangeRules,
		map[string]any{"rules": c.Rules, "rules_version": c.RulesVersion}); err != nil {
		return c, err
	}
	return GetCollaboration(ctx, tx, c.ID, actor) // with the approved rules beside the change
}

// Reject turns down a pending change of the rules: the rules both last
// approved come back, as a new version both partners approve. Only the
// partner asked to approve the change rejects it; a first proposal has
// nothing to go back to and is declined by deleting the collaboration.
func (s *Service) Reject(ctx context.Context, tx *sql.Tx, actor Principal, id string, rulesVersion int) (wire.Collaboration, error) {
	c, err := memberOf(ctx, tx, actor, id, "approve or reject")
	if err != nil {
		return c, err
	}
	switch {
	case c.State != wire.StateProposed:
		return c, errs.New(errs.Conflict, "no change of the rules awaits approval (the collaboration is %s)", c.State)
	case c.ApprovedRules == nil:
		return c, errs.New(errs.Conflict, "both partners have yet to approve any rules of this collaboration, so there are none to go back to; to decline this proposal, delete the collaboration")
	case slices.Contains(c.ApprovedBy, actor.PartnerID):
		return c, errs.New(errs.Conflict, "your partner proposed this change, so only the other partner can reject it; wait for its answer, or propose the earlier rules again (PUT .../rules) to withdraw it")
	case rulesVersion != 0 && rulesVersion != c.RulesVersion:
		return c, errs.New(errs.Conflict, "the rules changed (now version %d, you rejected version %d); review them again", c.RulesVersion, rulesVersion)
	}
	rejected := c.RulesVersion
	c.Rules, c.RulesVersion, c.ApprovedBy, c.State, c.UpdatedAt = *c.ApprovedRules, c.RulesVersion+1, c.Members(), wire.StateActive, s.now()
	c.ApprovedRules = nil
	err = saveRules(ctx, tx, actor, c, true, false, audit.CollaborationRejectRules,
		map[string]any{"rejected_version": rejected, "rules": c.Rules, "rules_version": c.RulesVersion, "state": c.State})
	return c, err
}
