package ledger

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

func setCap(t *testing.T, db interface {
	Write(context.Context, func(*sql.Tx) error) error
}, partnerID string, c *Cap) {
	t.Helper()
	if err := db.Write(context.Background(), func(tx *sql.Tx) error { return SetCap(context.Background(), tx, partnerID, c) }); err != nil {
		t.Fatal(err)
	}
}

func units(n int64) *int64 { return &n }

// TestCapCountsEveryChargeOfEitherPartner: a's cap counts the charges of
// both partners of its collaborations (c with b, other with z), not its
// own only, and not those of collaborations it is not in; a charge past
// it is refused, naming a, and records nothing; a monthly cap starts
// over each month.
func TestCapCountsEveryChargeOfEitherPartner(t *testing.T) {
	db := openLedger(t)
	jan := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	b := Budget{Epsilon: 10, Delta: 1, Refresh: wire.RefreshNone}
	setCap(t, db, "a", &Cap{Epsilon: units(1_000_000), Refresh: wire.RefreshMonthly, SetAt: jan})
	for _, c := range []Charge{
		{CollabID: "c", PartnerID: "b", Kind: KindQuery, Epsilon: 0.5, Budget: b, Now: jan},
		{CollabID: "other", PartnerID: "z", Kind: KindQuery, Epsilon: 0.4, Budget: b, Now: jan},
	} {
		if _, err := charge(t, db, c); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := Exposure(context.Background(), db.SQL(), "a", time.Time{}, time.Time{}); got.EpsilonUnits != 900_000 {
		t.Errorf("a's exposure: %d units, want 900000", got.EpsilonUnits)
	}
	if got, _ := Exposure(context.Background(), db.SQL(), "b", time.Time{}, time.Time{}); got.EpsilonUnits != 500_000 {
		t.Errorf("b's exposure (not in other): %d units, want 500000", got.EpsilonUnits)
	}
	var ce *CapError
	_, err := charge(t, db, Charge{CollabID: "c", PartnerID: "b", Kind: KindQuery, Epsilon: 0.2, Budget: b, Now: jan})
	if !errors.As(err, &ce) || ce.PartnerID != "a" || ce.PartnerName != "Brand" || ce.Budget != EpsilonBudget || errs.KindOf(err) != errs.ExposureCapExceeded ||
		!strings.Contains(err.Error(), "in a calendar month (UTC)") {
		t.Fatalf("b's charge past a's cap: %v", err)
	}
	if got, _ := Exposure(context.Background(), db.SQL(), "a", time.Time{}, time.Time{}); got.EpsilonUnits != 900_000 {
		t.Errorf("the refused charge was recorded: %d units", got.EpsilonUnits)
	}
	if _, err := charge(t, db, Charge{CollabID: "c", PartnerID: "b", Kind: KindQuery, Epsilon: 0.2, Budget: b, Now: jan.AddDate(0, 1, 0)}); err != nil {
		t.Errorf("the same charge next month: %v", err)
	}
	// All time: February's charge counts with January's.
	setCap(t, db, "a", &Cap{Epsilon: units(1_000_000), Refresh: wire.RefreshNone, SetAt: jan})
	if _, err := charge(t, db, Charge{CollabID: "other", PartnerID: "a", Kind: KindQuery, Epsilon: 0.000001, Budget: b, Now: jan.AddDate(0, 1, 0)}); !errors.As(err, &ce) {
		t.Errorf("a charge past an all-time cap: %v", err)
	}
	setCap(t, db, "a", nil)
	if _, err := charge(t, db, Charge{CollabID: "other", PartnerID: "a", Kind: KindQuery, Epsilon: 1, Budget: b, Now: jan}); err != nil {
		t.Errorf("with the cap removed: %v", err)
	}
}

// TestCapNeverPassedConcurrently: debits in two collaborations at once
// never together pass a cap: each checks it in the Write that debits.
func TestCapNeverPassedConcurrently(t *testing.T) {
	db := openLedger(t)
	b := Budget{Epsilon: 100, Delta: 1, Refresh: wire.RefreshNone}
	setCap(t, db, "a", &Cap{Epsilon: units(1_000_000), Delta: units(3), Refresh: wire.RefreshNone, SetAt: time.Now()})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := Charge{CollabID: "c", PartnerID: "b", Kind: KindQuery, Epsilon: 0.1, Budget: b}
			if i%2 == 1 {
				c.CollabID, c.PartnerID = "other", "z"
			}
			if i%5 == 0 {
				c.Delta = 1e-12
			}
			_, err := charge(t, db, c)
			mu.Lock()
			defer mu.Unlock()
			var ce *CapError
			switch {
			case err == nil:
				ok++
			case !errors.As(err, &ce):
				t.Errorf("charge %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got, _ := Exposure(context.Background(), db.SQL(), "a", time.Time{}, time.Time{})
	if got.EpsilonUnits > 1_000_000 || got.DeltaUnits > 3 || ok != int(got.EpsilonUnits/100_000) || ok < 7 {
		t.Errorf("%d charges of 0.1 passed a cap of 1 (delta cap 3 units): exposure %+v", ok, got)
	}
}
