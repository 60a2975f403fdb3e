package bench

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// TestEventTables: everyone is in each table; customers once each, the
// event logs at about the mean rows a person, some far above it, dated
// over 60 days in date order; consent only where the table has it; the
// rows of a range of people counted.
func TestEventTables(t *testing.T) {
	const first, n, lo, hi = 100, 2000, 1500, 2100
	for _, tab := range eventTables(DefaultPurchases, 5) {
		var buf bytes.Buffer
		counts, err := writeTable(&buf, tab, first, n, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(recs[0], ","), tab.header(); got != want {
			t.Fatalf("%s: header %s, want %s", tab.name, got, want)
		}
		if int64(len(recs)-1) != counts.rows {
			t.Fatalf("%s: %d records, %d rows said", tab.name, len(recs)-1, counts.rows)
		}
		per := map[string]int{}
		var inRange int64
		last := ""
		for _, r := range recs[1:] {
			per[r[0]]++
			var k int
			if _, err := fmt.Sscanf(r[0], "customer%d@example.com", &k); err != nil {
				t.Fatal(err)
			}
			if k >= lo && k < hi {
				inRange++
			}
			if tab.consent != (r[len(r)-1] == "measurement") {
				t.Fatalf("%s: row %v, consent %v", tab.name, r, tab.consent)
			}
			if tab.mean == 0 {
				continue
			}
			if r[1] < last || r[1] < "2026-01-01" || r[1] > "2026-03-01" {
				t.Fatalf("%s: date %s after %s, or outside 60 days", tab.name, r[1], last)
			}
			last = r[1]
		}
		if inRange != counts.inRange {
			t.Errorf("%s: %d rows of people [%d, %d), %d said", tab.name, inRange, lo, hi, counts.inRange)
		}
		if len(per) != n {
			t.Errorf("%s: %d people, want %d", tab.name, len(per), n)
		}
		if tab.mean == 0 {
			if counts.rows != n {
				t.Errorf("%s: %d rows, want one a person", tab.name, counts.rows)
			}
			continue
		}
		most := 0
		for _, c := range per {
			most = max(most, c)
		}
		mean := float64(counts.rows) / n
		if mean < 0.85*tab.mean || mean > 1.15*tab.mean || most < 3*int(tab.mean) {
			t.Errorf("%s: %.1f rows a person (want about %v), at most %d", tab.name, mean, tab.mean, most)
		}
	}
	for day, want := range map[int]string{0: "2026-01-01", 31: "2026-02-01", 59: "2026-03-01"} {
		if got := eventDates[day]; got != want {
			t.Errorf("day %d is %s, want %s", day, got, want)
		}
	}
}

// The declared tables are valid rules: distinct columns per party, roles
// and bounds as the server checks them.
func TestEventRules(t *testing.T) {
	r := wire.DefaultRules()
	for _, tab := range eventTables(DefaultPurchases, DefaultExposures) {
		r.Tables = append(r.Tables, tab.rule())
		if len(tab.attrs()) != len(tab.columns) {
			t.Errorf("%s: %d attributes for %d columns", tab.name, len(tab.attrs()), len(tab.columns))
		}
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := len(r.TablesOf(wire.PartyProposer)); got != 2 {
		t.Errorf("the brand brings %d tables, want 2", got)
	}
}
