package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// BudgetName names one of a partner's two budgets.
type BudgetName string

// The two budgets, as refusals name them (rules epsilon_budget and
// delta_budget).
const (
	EpsilonBudget BudgetName = "epsilon"
	DeltaBudget   BudgetName = "delta"
)

// BudgetError says which budget a charge would exceed, how much was asked
// and how much is left. It is of kind errs.BudgetExhausted, refined to
// errs.DeltaBudgetExhausted for the delta budget.
type BudgetError struct {
	Budget           BudgetName
	Asked, Remaining float64
	// Total is the rule epsilon_budget or delta_budget.
	Total   float64
	Refresh wire.BudgetRefresh
}

func (e *BudgetError) Error() string {
	msg := fmt.Sprintf("privacy budget exhausted: this needs %s %v and %v is left of the rule %s_budget (%v)",
		e.Budget, e.Asked, e.Remaining, e.Budget, e.Total)
	if e.Budget == DeltaBudget {
		msg += "; grouped queries (partition selection) and Gaussian noise spend the rule delta, ungrouped queries with Laplace noise spend none"
	}
	if e.Refresh == wire.RefreshMonthly {
		msg += "; the budget refreshes at the start of next month (UTC)"
	} else {
		msg += "; the budget does not refresh"
	}
	return msg
}

func (e *BudgetError) Unwrap() error {
	if e.Budget == DeltaBudget {
		return errs.DeltaBudgetExhausted
	}
	return errs.BudgetExhausted
}

// PeriodStart is when the current budget period began: the zero time for
// refresh "none" (one budget for the collaboration's life), the first of
// the month (UTC) for "monthly".
func PeriodStart(refresh wire.BudgetRefresh, now time.Time) time.Time {
	if refresh == wire.RefreshMonthly {
		now = now.UTC()
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// Spent returns the epsilon and delta a partner has spent in a
// collaboration since the period start (basic composition: they add up).
func Spent(ctx context.Context, q store.Querier, collabID, partnerID string, since time.Time) (wire.Amount, error) {
	var a wire.Amount
	err := q.QueryRowContext(ctx, `SELECT CAST(coalesce(sum(epsilon_units), 0) AS BIGINT), CAST(coalesce(sum(delta_units), 0) AS BIGINT)
		FROM budget_ledger WHERE collab_id = ? AND partner_id = ? AND at >= ?`, collabID, partnerID, since.UTC()).Scan(&a.EpsilonUnits, &a.DeltaUnits)
	return a, err
}

// CollaborationSpent returns the epsilon and delta spent in a collaboration
// by all its partners, matches included, over its whole life (budget
// refreshes do not reset it): by basic composition, the privacy loss of a
// person in its cohort from everything released so far.
func CollaborationSpent(ctx context.Context, q store.Querier, collabID string) (wire.Amount, error) {
	var a wire.Amount
	err := q.QueryRowContext(ctx, `SELECT CAST(coalesce(sum(epsilon_units), 0) AS BIGINT), CAST(coalesce(sum(delta_units), 0) AS BIGINT)
		FROM budget_ledger WHERE collab_id = ?`, collabID).Scan(&a.EpsilonUnits, &a.DeltaUnits)
	return a, err
}

// CollaborationSpentBefore is CollaborationSpent counting only what was
// spent before until: a person's privacy loss as it stood then.
func CollaborationSpentBefore(ctx context.Context, q store.Querier, collabID string, until time.Time) (wire.Amount, error) {
	var a wire.Amount
	err := q.QueryRowContext(ctx, `SELECT CAST(coalesce(sum(epsilon_units), 0) AS BIGINT), CAST(coalesce(sum(delta_units), 0) AS BIGINT)
		FROM budget_ledger WHERE collab_id = ? AND at < ?`, collabID, until.UTC()).Scan(&a.EpsilonUnits, &a.DeltaUnits)
	return a, err
}

// Budget is a partner's allowance in a collaboration: the rules
// epsilon_budget, delta_budget and budget_refresh.
type Budget struct {
	Epsilon, Delta float64
	Refresh        wire.BudgetRefresh
}

// Units returns the budget in units, or an error if a part is not a whole
// number of units.
func (b Budget) Units() (wire.Amount, error) {
	e, err := wire.EpsilonUnits(b.Epsilon)
	if err != nil {
		return wire.Amount{}, fmt.Errorf("epsilon_budget: %w", err)
	}
	d, err := wire.DeltaUnits(b.Delta)
	if err != nil {
		return wire.Amount{}, fmt.Errorf("delta_budget: %w", err)
	}
	return wire.Amount{EpsilonUnits: e, DeltaUnits: d}, nil
}

// Kind is what a charge paid for.
type Kind string

// Charge kinds, as the ledger's kind column and the report's budget
// spent by day name them.
const (
	// KindQuery: a released answer; Ref is its plan hash.
	KindQuery Kind = "query"
	// KindMatch: a match's noisy cohort size, charged to both partners;
	// Ref is the match id.
	KindMatch Kind = "match"
)

// Charge is one debit. Epsilon and Delta must be whole numbers of units;
// they are recorded exactly.
type Charge struct {
	CollabID, PartnerID string
	Kind                Kind
	Ref                 string // plan hash, match id
	Epsilon, Delta      float64
	Budget              Budget
	Now                 time.Time
}

// Check returns what the budget would have left after c, or a
// *BudgetError if c does not fit in the epsilon or the delta budget, or
// a *CapError if it would take either partner of the collaboration past
// its exposure cap (CheckCaps). The sums are exact, with no slack: a
// budget or a cap at 0 covers nothing more.
func Check(ctx context.Context, q store.Querier, c Charge) (left wire.Amount, err error) {
	// A charge or budget the ledger cannot count exactly is the rules'
	// fault (rules_invalid), not the database's.
	eu, err := wire.EpsilonUnits(c.Epsilon)
	if err != nil {
		return wire.Amount{}, errs.New(errs.RulesInvalid, "ledger: charge: %w", err)
	}
	du, err := wire.DeltaUnits(c.Delta)
	if err != nil {
		return wire.Amount{}, errs.New(errs.RulesInvalid, "ledger: charge: %w", err)
	}
	total, err := c.Budget.Units()
	if err != nil {
		return wire.Amount{}, errs.New(errs.RulesInvalid, "ledger: budget: %w", err)
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	spent, err := Spent(ctx, q, c.CollabID, c.PartnerID, PeriodStart(c.Budget.Refresh, c.Now))
	if err != nil {
		return wire.Amount{}, fmt.Errorf("ledger: %w", err)
	}
	before := total.Sub(spent)
	switch {
	case eu > before.EpsilonUnits:
		return before, &BudgetError{Budget: EpsilonBudget, Asked: c.Epsilon, Remaining: before.Epsilon(), Total: c.Budget.Epsilon, Refresh: c.Budget.Refresh}
	case du > before.DeltaUnits:
		return before, &BudgetError{Budget: DeltaBudget, Asked: c.Delta, Remaining: before.Delta(), Total: c.Budget.Delta, Refresh: c.Budget.Refresh}
	}
	if err := CheckCaps(ctx, q, c.CollabID, c.PartnerID, wire.Amount{EpsilonUnits: eu, DeltaUnits: du}, c.Now); err != nil {
		return before, err
	}
	return before.Sub(wire.Amount{EpsilonUnits: eu, DeltaUnits: du}), nil
}

// Debit records c in tx if the remaining budgets and both partners'
// exposure caps cover it, and returns what remains of the budget after it. The caller must hold the store's write lock (store.DB.Write):
// the check and the insert then happen without any other debit between them,
// so concurrent charges can never overspend.
func Debit(ctx context.Context, tx *sql.Tx, c Charge) (remaining wire.Amount, err error) {
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	left, err := Check(ctx, tx, c)
	if err != nil {
		return left, err
	}
	// Check has converted both; these cannot fail.
	eu, _ := wire.EpsilonUnits(c.Epsilon)
	du, _ := wire.DeltaUnits(c.Delta)
	if _, err := tx.ExecContext(ctx, `INSERT INTO budget_ledger (collab_id, partner_id, at, kind, ref, epsilon, delta, epsilon_units, delta_units)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.CollabID, c.PartnerID, c.Now.UTC(), c.Kind, c.Ref, wire.EpsilonOf(eu), wire.DeltaOf(du), eu, du); err != nil {
		return wire.Amount{}, fmt.Errorf("ledger.Debit: %w", err)
	}
	return left, nil
}

// Remaining returns the budget left for a partner now.
func Remaining(ctx context.Context, q store.Querier, collabID, partnerID string, b Budget, now time.Time) (wire.Amount, error) {
	total, err := b.Units()
	if err != nil {
		return wire.Amount{}, fmt.Errorf("ledger: budget: %w", err)
	}
	spent, err := Spent(ctx, q, collabID, partnerID, PeriodStart(b.Refresh, now))
	if err != nil {
		return wire.Amount{}, err
	}
	return total.Sub(spent), nil
}

// Of returns the budget a collaboration's rules give each partner.
func Of(r wire.Rules) Budget {
	return Budget{Epsilon: r.EpsilonBudget, Delta: r.DeltaBudget, Refresh: r.BudgetRefresh}
}
