package store

import (
	"context"
	"testing"
)

// TestLedgerUnitsMigration: a ledger written before the exact ledger gets
// its units from the float columns: float error is rounded away, a charge
// that is not a whole number of units is rounded up, never down.
func TestLedgerUnitsMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	all := migrations
	migrations = all[:4]
	db, err := Open(ctx, dir)
	migrations = all
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`INSERT INTO budget_ledger VALUES
		('c', 'p', now(), 'query', 'a', 0.1, 1e-6),
		('c', 'p', now(), 'query', 'b', 0.30000000000000004, 6.999999999999999e-06),
		('c', 'p', now(), 'query', 'c', 1e-10, 0),
		('c', 'p', now(), 'query', 'd', 1e-300, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL().Query(`SELECT ref, epsilon_units, delta_units FROM budget_ledger ORDER BY ref`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[string][2]int64{"a": {100000, 1000000}, "b": {300000, 7000000}, "c": {1, 0}, "d": {1, 0}}
	n := 0
	for rows.Next() {
		var ref string
		var e, d int64
		if err := rows.Scan(&ref, &e, &d); err != nil {
			t.Fatal(err)
		}
		if w := want[ref]; e != w[0] || d != w[1] {
			t.Errorf("%s: %d epsilon units, %d delta units; want %v", ref, e, d, w)
		}
		n++
	}
	if n != 4 {
		t.Errorf("%d rows", n)
	}
}
