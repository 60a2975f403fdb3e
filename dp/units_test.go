package dp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/store"
)

func TestUnitsAreExactAndRefuseFractions(t *testing.T) {
	for _, c := range []struct {
		eps  float64
		want int64
	}{{0, 0}, {1e-6, 1}, {0.1, 100000}, {0.3, 300000}, {1, 1000000}, {10.2, 10200000}, {0.000123, 123}, {1234567.891011, 1234567891011}} {
		u, err := EpsilonUnits(c.eps)
		if err != nil || u != c.want {
			t.Errorf("EpsilonUnits(%v) = %d, %v; want %d", c.eps, u, err, c.want)
		}
		if back := EpsilonOf(u); back != c.eps {
			t.Errorf("EpsilonOf(%d) = %v, want %v", u, back, c.eps)
		}
	}
	tenth := 0.1 // a variable: 0.1 + 0.2 between constants is exact
	for _, eps := range []float64{1e-10, 1e-17, 1e-300, 1.5e-6, tenth + 0.2, -0.1, math.NaN(), math.Inf(1), 1e30} {
		if u, err := EpsilonUnits(eps); err == nil {
			t.Errorf("EpsilonUnits(%v) = %d, want an error", eps, u)
		}
	}
	for _, c := range []struct {
		delta float64
		want  int64
	}{{0, 0}, {1e-12, 1}, {1e-6, 1000000}, {1e-5, 10000000}, {5e-4, 500000000}, {1, 1000000000000}} {
		u, err := DeltaUnits(c.delta)
		if err != nil || u != c.want || DeltaOf(u) != c.delta {
			t.Errorf("DeltaUnits(%v) = %d, %v; want %d", c.delta, u, err, c.want)
		}
	}
	for _, d := range []float64{5e-13, 1e-15, 1e-5 / 3, -1e-6} {
		if _, err := DeltaUnits(d); err == nil {
			t.Errorf("DeltaUnits(%v) accepted", d)
		}
	}
	// Sums of units print without float noise: 0.1 + 0.2 + 0.9 is 1.2.
	var sum int64
	for _, e := range []float64{0.1, 0.2, 0.9} {
		u, _ := EpsilonUnits(e)
		sum += u
	}
	if s := fmt.Sprint(EpsilonOf(sum)); s != "1.2" {
		t.Errorf("0.1 + 0.2 + 0.9 in units prints %s", s)
	}
}

func openLedger(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func charge(t *testing.T, db *store.DB, c Charge) (Amount, error) {
	t.Helper()
	var left Amount
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		var err error
		left, err = Debit(context.Background(), tx, c)
		return err
	})
	return left, err
}

// TestDebitExactNoSlack: ten charges of 0.1 fill a budget of 1 exactly; at
// 0 nothing more fits, not even one unit (the old 1e-9 slack let nine
// charges of 1e-10 through a spent budget), and a charge that is not a
// whole number of units is an error, not a silent rounding.
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
	c.Epsilon = EpsilonUnit
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
	if err != nil || spent != (Amount{EpsilonUnits: 1000000}) || spent.Epsilon() != 1 {
		t.Errorf("spent %+v %v, want exactly 1", spent, err)
	}
	var rows int
	var floats float64
	db.SQL().QueryRow(`SELECT count(*), sum(epsilon) FROM budget_ledger`).Scan(&rows, &floats)
	if rows != 10 || math.Abs(floats-1) > 1e-12 {
		t.Errorf("ledger: %d rows, float column sum %v", rows, floats)
	}
}

// TestDebitDeltaBudget: delta is budgeted like epsilon; a charge that the
// delta budget cannot cover is refused, naming delta, while charges of
// delta 0 still fit.
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

// TestCollaborationSpent: the total over both partners, matches included,
// and over every budget period (a refresh restores budgets, not privacy).
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
	left, err := Remaining(context.Background(), db.SQL(), "c", "a", b, feb)
	if err != nil || left.Epsilon() != 0.8 || left.Delta() != 0 {
		t.Errorf("february: %+v %v", left, err)
	}
}

// TestReleaseDeltaIsTheCharge: the delta a release reports is exactly the
// rule delta when it is grouped or Gaussian, else 0 (the old sum of the
// parts' shares gave 6.999999999999999e-06 for 7e-06).
func TestReleaseDeltaIsTheCharge(t *testing.T) {
	groups := []Group{{Key: []any{"a"}, Users: 1000, Sums: []float64{0, 5000}}}
	for _, grouped := range []bool{false, true} {
		for _, gaussian := range []bool{false, true} {
			o := ReleaseOptions{Epsilon: 1, Delta: 7e-6, Grouped: grouped, Gaussian: gaussian, MaxGroups: 1,
				Aggs: []Agg{{Func: "count"}, {Func: "sum", Lower: 0, Upper: 10}}}
			rel, err := ReleaseGroups(groups, o)
			if err != nil {
				t.Fatal(err)
			}
			want := 0.0
			if grouped || gaussian {
				want = 7e-6
			}
			if rel.Delta != want || o.DeltaCost() != want || rel.Epsilon != 1 {
				t.Errorf("grouped=%v gaussian=%v: released delta %v, cost %v, want %v", grouped, gaussian, rel.Delta, o.DeltaCost(), want)
			}
		}
	}
}

// TestReleaseRefusesParametersWithoutData: parameters the noise library
// rejects are refused whether or not any group exists, so a refusal says
// nothing about the data.
func TestReleaseRefusesParametersWithoutData(t *testing.T) {
	for _, eps := range []float64{1e-17, 1e-300} {
		o := ReleaseOptions{Epsilon: eps, Delta: 1e-5, Grouped: true, MaxGroups: 1, Aggs: []Agg{{Func: "count"}}}
		for _, groups := range [][]Group{nil, {{Key: []any{"a"}, Users: 3}}} {
			if _, err := ReleaseGroups(groups, o); err == nil {
				t.Errorf("epsilon %v with %d groups: released", eps, len(groups))
			}
		}
	}
}
