package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// Cap is a partner's cap on its people's exposure: the epsilon and delta
// that every charge in any of its collaborations adds up to in a period,
// whichever partner paid it. A query's answer or a match's noisy size is
// privacy loss for everyone in the cohort, the people of both partners,
// so each charge counts against both partners' caps. A nil part is not
// capped.
type Cap struct {
	Epsilon, Delta *int64 // in units; nil: no cap on that part
	// Refresh is the period: RefreshNone counts every charge ever made
	// (a person's whole exposure), RefreshMonthly the calendar month (UTC).
	Refresh wire.BudgetRefresh
	SetAt   time.Time
}

// CapOf returns partnerID's cap; ok is false when it has set none.
func CapOf(ctx context.Context, q store.Querier, partnerID string) (c Cap, ok bool, err error) {
	var e, d sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT epsilon_units, delta_units, refresh, set_at FROM exposure_caps WHERE partner_id = ?`, partnerID).
		Scan(&e, &d, &c.Refresh, &c.SetAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Cap{}, false, nil
	}
	if err != nil {
		return Cap{}, false, fmt.Errorf("ledger: cap: %w", err)
	}
	if e.Valid {
		c.Epsilon = &e.Int64
	}
	if d.Valid {
		c.Delta = &d.Int64
	}
	return c, true, nil
}

// SetCap replaces partnerID's cap with c, or removes it when c is nil, in
// tx (a store.DB.Write, with its audit entry): a debit after it commits
// is checked against the new cap.
func SetCap(ctx context.Context, tx *sql.Tx, partnerID string, c *Cap) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM exposure_caps WHERE partner_id = ?`, partnerID); err != nil {
		return fmt.Errorf("ledger: cap: %w", err)
	}
	if c == nil {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO exposure_caps VALUES (?, ?, ?, ?, ?)`,
		partnerID, c.Epsilon, c.Delta, string(c.Refresh), c.SetAt.UTC()); err != nil {
		return fmt.Errorf("ledger: cap: %w", err)
	}
	return nil
}

// Exposure returns what counts against partnerID's cap in [since, until)
// (a zero until: no end): every charge in any collaboration partnerID is
// a member of, by either partner, matches included, deleted
// collaborations too. It is the sum of those collaborations' totals
// (CollaborationSpent) over the period: by basic composition, the
// privacy loss of a person in all of them.
func Exposure(ctx context.Context, q store.Querier, partnerID string, since, until time.Time) (wire.Amount, error) {
	cond, args := "", []any{partnerID, partnerID, since.UTC()}
	if !until.IsZero() {
		cond, args = " AND at < ?", append(args, until.UTC())
	}
	var a wire.Amount
	err := q.QueryRowContext(ctx, `SELECT CAST(coalesce(sum(epsilon_units), 0) AS BIGINT), CAST(coalesce(sum(delta_units), 0) AS BIGINT)
		FROM budget_ledger WHERE collab_id IN (SELECT id FROM collaborations WHERE proposer = ? OR partner = ?) AND at >= ?`+cond, args...).
		Scan(&a.EpsilonUnits, &a.DeltaUnits)
	if err != nil {
		return a, fmt.Errorf("ledger: exposure: %w", err)
	}
	return a, nil
}

// CapError says that a charge would take a partner past its exposure
// cap, and which part (epsilon or delta). It is of kind
// errs.ExposureCapExceeded. It names the partner whose cap it is but
// holds none of its figures: the cap and the total are that partner's
// settings and business (its other collaborations), which its own keys
// read and the other partner of the collaboration does not.
type CapError struct {
	PartnerID, PartnerName string
	Budget                 BudgetName
	// Asked is what the release would add to the partner's exposure.
	Asked   float64
	Refresh wire.BudgetRefresh
}

func (e *CapError) Error() string {
	period := "over all time"
	when := "it does not refresh"
	if e.Refresh == wire.RefreshMonthly {
		period, when = "in a calendar month (UTC)", "it starts over at the start of next month (UTC)"
	}
	return fmt.Sprintf("partner %s (%s) caps the %s its people may be exposed to across all its collaborations %s, and this release would add %s %v, past that cap; "+
		"%s. The cap and the total counted against it are that partner's: its keys read them (cleanroom partners cap), and its admin may raise it",
		e.PartnerName, e.PartnerID, e.Budget, period, e.Budget, e.Asked, when)
}

func (e *CapError) Unwrap() error { return errs.ExposureCapExceeded }

// CheckCaps returns a *CapError when adding a to the exposure of either
// partner of collaboration collabID would pass its cap: first's cap is
// checked first (the partner charged), then the other's. Run inside the
// Write that debits (Debit does), the check and the debit see the same
// ledger, so concurrent charges in different collaborations cannot
// together pass a cap.
func CheckCaps(ctx context.Context, q store.Querier, collabID, first string, a wire.Amount, now time.Time) error {
	var proposer, partner string
	if err := q.QueryRowContext(ctx, `SELECT proposer, partner FROM collaborations WHERE id = ?`, collabID).Scan(&proposer, &partner); err != nil {
		return fmt.Errorf("ledger: members of %s: %w", collabID, err)
	}
	members := []string{proposer, partner}
	if first == partner {
		members = []string{partner, proposer}
	}
	for _, p := range members {
		c, ok, err := CapOf(ctx, q, p)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		spent, err := Exposure(ctx, q, p, PeriodStart(c.Refresh, now), time.Time{})
		if err != nil {
			return err
		}
		over := func(name BudgetName, cap *int64, spent, asked int64, of func(int64) float64) error {
			if cap == nil || asked <= *cap-spent {
				return nil
			}
			e := &CapError{PartnerID: p, Budget: name, Asked: of(asked), Refresh: c.Refresh}
			if err := q.QueryRowContext(ctx, `SELECT name FROM partners WHERE id = ?`, p).Scan(&e.PartnerName); err != nil {
				return fmt.Errorf("ledger: partner %s: %w", p, err)
			}
			return e
		}
		if err := over(EpsilonBudget, c.Epsilon, spent.EpsilonUnits, a.EpsilonUnits, wire.EpsilonOf); err != nil {
			return err
		}
		if err := over(DeltaBudget, c.Delta, spent.DeltaUnits, a.DeltaUnits, wire.DeltaOf); err != nil {
			return err
		}
	}
	return nil
}

// CapStatus is partnerID's cap as its own keys read it: the cap (none:
// every part null), its period, and what counts against it now.
func CapStatus(ctx context.Context, q store.Querier, partnerID string, now time.Time) (wire.ExposureCap, error) {
	c, ok, err := CapOf(ctx, q, partnerID)
	if err != nil {
		return wire.ExposureCap{}, err
	}
	if !ok {
		c.Refresh = wire.RefreshNone
	}
	start := PeriodStart(c.Refresh, now)
	spent, err := Exposure(ctx, q, partnerID, start, time.Time{})
	if err != nil {
		return wire.ExposureCap{}, err
	}
	out := wire.ExposureCap{PartnerID: partnerID, Refresh: c.Refresh, PeriodStart: start,
		EpsilonSpent: spent.Epsilon(), DeltaSpent: spent.Delta()}
	if ok {
		t := c.SetAt.UTC()
		out.SetAt = &t
	}
	if c.Refresh == wire.RefreshMonthly {
		t := start.AddDate(0, 1, 0)
		out.NextRefresh = &t
	}
	if c.Epsilon != nil {
		capped, left := wire.EpsilonOf(*c.Epsilon), wire.EpsilonOf(max(*c.Epsilon-spent.EpsilonUnits, 0))
		out.Epsilon, out.EpsilonRemaining = &capped, &left
	}
	if c.Delta != nil {
		capped, left := wire.DeltaOf(*c.Delta), wire.DeltaOf(max(*c.Delta-spent.DeltaUnits, 0))
		out.Delta, out.DeltaRemaining = &capped, &left
	}
	return out, nil
}
