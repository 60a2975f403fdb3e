package dp

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/store"
)

func TestDebitNeverOverspendsAndRefreshesMonthly(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	jan := time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)
	debit := func(eps float64, now time.Time, refresh string) (float64, error) {
		var left Amount
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
	if !errors.As(err, &be) || !errors.Is(err, ErrBudgetExhausted) || be.Remaining != 0 || be.Budget != "epsilon" {
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
	if _, err := debit(0.1, jan.Add(2*time.Hour), "none"); !errors.Is(err, ErrBudgetExhausted) {
		t.Errorf("refresh none must not refresh: %v", err)
	}
	if _, err := debit(-1, jan, "none"); err == nil {
		t.Error("a negative charge was accepted")
	}
}

func TestReleaseGroupsThresholdsAndSelection(t *testing.T) {
	groups := []Group{
		{Key: []any{"big"}, Users: 100000, Sums: []float64{0, 500000}},
		{Key: []any{"tiny"}, Users: 1, Sums: []float64{0, 5}},
	}
	o := ReleaseOptions{Epsilon: 1, Delta: 1e-6, Grouped: true, MaxGroups: 1, MinGroupUsers: 50,
		Aggs: []Agg{{Func: "count"}, {Func: "avg", Lower: 0, Upper: 10}}}
	for _, gaussian := range []bool{false, true} {
		o.Gaussian = gaussian
		rel, err := ReleaseGroups(groups, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rel.Rows) != 1 || rel.Rows[0].Key[0] != "big" {
			t.Fatalf("gaussian=%v: released %v, want only the big group", gaussian, rel.Rows)
		}
		c, avg := rel.Rows[0].Values[0], rel.Rows[0].Values[1]
		if math.Abs(c.Value-100000) > 200 || !(c.Lower <= c.Value && c.Value <= c.Upper) {
			t.Errorf("count %+v", c)
		}
		if math.Abs(avg.Value-5) > 0.1 || avg.Lower > 5 || avg.Upper < 5 {
			t.Errorf("avg %+v, want about 5 with 5 inside its interval", avg)
		}
		if rel.Epsilon != 1 || math.Abs(rel.Split["selection"]+rel.Split["count"]+rel.Split["avg_1"]-1) > 1e-12 {
			t.Errorf("split %v does not add up to epsilon 1", rel.Split)
		}
	}
	// Ungrouped: one fixed row, released even when small (only the noisy
	// count decides), dropped when its noisy count is under the minimum.
	o = ReleaseOptions{Epsilon: 1, MaxGroups: 1, MinGroupUsers: -1000, Aggs: []Agg{{Func: "count"}}}
	rel, err := ReleaseGroups([]Group{{Users: 0, Sums: []float64{0}}}, o)
	if err != nil || len(rel.Rows) != 1 {
		t.Errorf("ungrouped zero users: %v %v", rel.Rows, err)
	}
	if _, err := ReleaseGroups(nil, ReleaseOptions{Epsilon: 0, MaxGroups: 1}); err == nil {
		t.Error("epsilon 0 accepted")
	}
}
