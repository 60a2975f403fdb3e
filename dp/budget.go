package dp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrBudgetExhausted is a charge the remaining budget cannot cover.
var ErrBudgetExhausted = errors.New("privacy budget exhausted")

// BudgetError says how much was asked and how much is left.
type BudgetError struct {
	Asked, Remaining float64
	Refresh          string
}

func (e *BudgetError) Error() string {
	msg := fmt.Sprintf("privacy budget exhausted: this needs epsilon %g and %g is left", e.Asked, e.Remaining)
	if e.Refresh == "monthly" {
		msg += "; the budget refreshes at the start of next month (UTC)"
	}
	return msg
}

func (e *BudgetError) Unwrap() error { return ErrBudgetExhausted }

// PeriodStart is when the current budget period began: the zero time for
// refresh "none" (one budget for the collaboration's life), the first of
// the month (UTC) for "monthly".
func PeriodStart(refresh string, now time.Time) time.Time {
	if refresh == "monthly" {
		now = now.UTC()
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// Querier reads the ledger: *sql.DB or *sql.Tx.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Spent returns the epsilon and delta a partner has spent in a
// collaboration since the period start (basic composition: they add up).
func Spent(ctx context.Context, q Querier, collabID, partnerID string, since time.Time) (eps, delta float64, err error) {
	err = q.QueryRowContext(ctx, `SELECT coalesce(sum(epsilon), 0), coalesce(sum(delta), 0) FROM budget_ledger
		WHERE collab_id = ? AND partner_id = ? AND at >= ?`, collabID, partnerID, since.UTC()).Scan(&eps, &delta)
	return eps, delta, err
}

// Charge is one debit.
type Charge struct {
	CollabID, PartnerID string
	Kind                string // query, match
	Ref                 string // plan hash, match id
	Epsilon, Delta      float64
	Budget              float64 // the rule epsilon_budget
	Refresh             string  // the rule budget_refresh
	Now                 time.Time
}

// slack absorbs floating-point error in sums of epsilons, so that ten
// charges of 0.1 fit a budget of 1.
const slack = 1e-9

// Debit records c in tx if the remaining budget covers it, and returns what
// remains after it. The caller must hold the store's write lock (store.DB.Write):
// the check and the insert then happen without any other debit between them,
// so concurrent charges can never overspend.
func Debit(ctx context.Context, tx *sql.Tx, c Charge) (remaining float64, err error) {
	if !(c.Epsilon >= 0) || !(c.Delta >= 0) {
		return 0, fmt.Errorf("dp.Debit: epsilon %v and delta %v must not be negative", c.Epsilon, c.Delta)
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	spent, _, err := Spent(ctx, tx, c.CollabID, c.PartnerID, PeriodStart(c.Refresh, c.Now))
	if err != nil {
		return 0, fmt.Errorf("dp.Debit: %w", err)
	}
	left := c.Budget - spent
	if c.Epsilon > left+slack {
		return max(left, 0), &BudgetError{Asked: c.Epsilon, Remaining: max(left, 0), Refresh: c.Refresh}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO budget_ledger VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.CollabID, c.PartnerID, c.Now.UTC(), c.Kind, c.Ref, c.Epsilon, c.Delta); err != nil {
		return 0, fmt.Errorf("dp.Debit: %w", err)
	}
	return max(left-c.Epsilon, 0), nil
}

// Remaining returns the budget left for a partner now.
func Remaining(ctx context.Context, q Querier, collabID, partnerID string, budget float64, refresh string, now time.Time) (float64, error) {
	spent, _, err := Spent(ctx, q, collabID, partnerID, PeriodStart(refresh, now))
	if err != nil {
		return 0, err
	}
	return max(budget-spent, 0), nil
}
