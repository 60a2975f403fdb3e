package ledger

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

func openLedger(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The collaborations the tests charge: a debit checks both partners'
	// exposure caps, so it reads who they are.
	if _, err := db.SQL().Exec(`INSERT INTO partners VALUES ('a', 'Brand', now()), ('b', 'Publisher', now()), ('z', 'Retailer', now());
		INSERT INTO collaborations (id, name, proposer, partner, rules, rules_version, approved_by, state, created_at, updated_at) VALUES
		('c', 'c', 'a', 'b', '{}', 1, '[]', 'active', now(), now()), ('other', 'other', 'a', 'z', '{}', 1, '[]', 'active', now(), now())`); err != nil {
		t.Fatal(err)
	}
	return db
}

func charge(t *testing.T, db *store.DB, c Charge) (wire.Amount, error) {
	t.Helper()
	var left wire.Amount
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		var err error
		left, err = Debit(context.Background(), tx, c)
		return err
	})
	return left, err
}

func TestDebitExactNoSlack(t *testing.T) {
	db := openLedger(t)
	now := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	c := Charge{CollabID: "c", PartnerID: "p", Kind: "query", Ref: "x", Epsilon: 0.1, Budget: Budget{Epsilon: 1, Refresh: "none"}, Now: now}
	for i := 0; i < 10; i++ {
		left, err := charge(t, db, c)
		if err != nil {
			t.Fatalf("charge %d of 0.1 against 1: %v", i+1, err)
		}
		if want := int64(1000000 - 100000*(i+1)); left.EpsilonUnits != want {
			t.Errorf("after charge %d: %d units left, want %d", i+1, left.EpsilonUnits, want)
		}
	}
	var be *BudgetError
	if _, err := charge(t, db, c); !errors.As(err, &be) || be.Budget != "epsilon" || be.Remaining != 0 || be.Asked != 0.1 || be.Total != 1 {
		t.Fatalf("eleventh charge: %v", err)
	}
	c.Epsilon = wire.EpsilonUnit
	if _, err := charge(t, db, c); !errors.As(err, &be) || be.Remaining != 0 {
		t.Fatalf("one unit after the budget reached 0: %v", err)
	}
	for _, eps := range []float64{1e-10, 1e-17, 1e-300} {
		c.Epsilon = eps
		if _, err := charge(t, db, c); err == nil || errors.As(err, &be) {
			t.Errorf("epsilon %v: %v, want a units error", eps, err)
		}
	}
	spent, err := Spent(context.Background(), db.SQL(), "c", "p", time.Time{})
	if err != nil || spent != (wire.Amount{EpsilonUnits: 1000000}) || spent.Epsilon() != 1 {
		t.Errorf("spent %+v %v, want exactly 1", spent, err)
	}
	var rows int
	var floats float64
	db.SQL().QueryRow(`SELECT count(*), sum(epsilon) FROM budget_ledger`).Scan(&rows, &floats)
	if rows != 10 || math.Abs(floats-1) > 1e-12 {
		t.Errorf("ledger: %d rows, float column sum %v", rows, floats)
	}
}

func TestDebitDeltaBudget(t *testing.T) {
	db := openLedger(t)
	b := Budget{Epsilon: 10, Delta: 2e-5, Refresh: "monthly"}
	grouped := Charge{CollabID: "c", PartnerID: "p", Kind: "query", Ref: "g", Epsilon: 0.01, Delta: 1e-5, Budget: b}
	for i := 0; i < 2; i++ {
		left, err := charge(t, db, grouped)
		if err != nil {
			t.Fatalf("grouped charge %d: %v", i+1, err)
		}
		if want := int64(10000000 * (1 - i)); left.DeltaUnits != want {
			t.Errorf("delta left %d units, want %d", left.DeltaUnits, want)
		}
	}
	_, err := charge(t, db, grouped)
	var be *BudgetError
	if !errors.As(err, &be) || be.Budget != "delta" || be.Asked != 1e-5 || be.Remaining != 0 || be.Total != 2e-5 {
		t.Fatalf("third grouped charge: %v", err)
	}
	for _, want := range []string{"delta 1e-05", "0 is left of the rule delta_budget (2e-05)", "refreshes at the start of next month"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
	ungrouped := grouped
	ungrouped.Delta = 0
	if _, err := charge(t, db, ungrouped); err != nil {
		t.Errorf("a charge of delta 0: %v", err)
	}
	spent, _ := Spent(context.Background(), db.SQL(), "c", "p", time.Time{})
	if spent.DeltaUnits != 20000000 || spent.EpsilonUnits != 30000 {
		t.Errorf("spent %+v", spent)
	}
}

func TestCollaborationSpent(t *testing.T) {
	db := openLedger(t)
	b := Budget{Epsilon: 1, Delta: 1e-5, Refresh: "monthly"}
	jan := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	feb := time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC)
	for _, c := range []Charge{
		{CollabID: "c", PartnerID: "a", Kind: "match", Ref: "m", Epsilon: 0.1, Budget: b, Now: jan},
		{CollabID: "c", PartnerID: "b", Kind: "match", Ref: "m", Epsilon: 0.1, Budget: b, Now: jan},
		{CollabID: "c", PartnerID: "a", Kind: "query", Ref: "q", Epsilon: 0.9, Delta: 1e-5, Budget: b, Now: jan},
		{CollabID: "c", PartnerID: "a", Kind: "query", Ref: "q", Epsilon: 0.2, Delta: 1e-5, Budget: b, Now: feb},
		{CollabID: "other", PartnerID: "a", Kind: "query", Ref: "q", Epsilon: 1, Budget: b, Now: feb},
	} {
		if _, err := charge(t, db, c); err != nil {
			t.Fatal(err)
		}
	}
	tot, err := CollaborationSpent(context.Background(), db.SQL(), "c")
	if err != nil || tot.Epsilon() != 1.3 || tot.Delta() != 2e-5 {
		t.Errorf("collaboration spent %+v (epsilon %v, delta %v), %v; want 1.3 and 2e-05", tot, tot.Epsilon(), tot.Delta(), err)
	}
	// As it stood at the end of January (a privacy report's period).
	jan31 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if tot, err := CollaborationSpentBefore(context.Background(), db.SQL(), "c", jan31); err != nil || tot.Epsilon() != 1.1 || tot.Delta() != 1e-5 {
		t.Errorf("spent before February: epsilon %v, delta %v, %v; want 1.1 and 1e-05", tot.Epsilon(), tot.Delta(), err)
	}
	left, err := Remaining(context.Background(), db.SQL(), "c", "a", b, feb)
	if err != nil || left.Epsilon() != 0.8 || left.Delta() != 0 {
		t.Errorf("february: %+v %v", left, err)
	}
}

func TestDebitNeverOverspendsAndRefreshesMonthly(t *testing.T) {
	ctx := context.Background()
	db := openLedger(t)
	var err error
	jan := time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)
	debit := func(eps float64, now time.Time, refresh wire.BudgetRefresh) (float64, error) {
		var left wire.Amount
		err := db.Write(ctx, func(tx *sql.Tx) error {
			var err error
			left, err = Debit(ctx, tx, Charge{CollabID: "c", PartnerID: "p", Kind: "query", Ref: "x", Epsilon: eps, Budget: Budget{Epsilon: 1, Refresh: refresh}, Now: now})
			return err
		})
		return left.Epsilon(), err
	}
	for i := 0; i < 10; i++ {
		if _, err := debit(0.1, jan, "monthly"); err != nil {
			t.Fatalf("charge %d of 0.1 against 1: %v", i+1, err)
		}
	}
	_, err = debit(0.1, jan, "monthly")
	var be *BudgetError
	if !errors.As(err, &be) || !errors.Is(err, errs.BudgetExhausted) || be.Remaining != 0 || be.Budget != "epsilon" {
		t.Fatalf("eleventh charge: %v", err)
	}
	var n int
	db.SQL().QueryRow(`SELECT count(*) FROM budget_ledger`).Scan(&n)
	if n != 10 {
		t.Errorf("ledger has %d rows, want 10 (a refused charge writes nothing)", n)
	}
	// February: a fresh monthly budget; with refresh none, still spent.
	if left, err := debit(0.5, jan.Add(2*time.Hour), "monthly"); err != nil || left != 0.5 {
		t.Errorf("february: left %v, %v", left, err)
	}
	if _, err := debit(0.1, jan.Add(2*time.Hour), "none"); !errors.Is(err, errs.BudgetExhausted) {
		t.Errorf("refresh none must not refresh: %v", err)
	}
	if _, err := debit(-1, jan, "none"); err == nil {
		t.Error("a negative charge was accepted")
	}
}
