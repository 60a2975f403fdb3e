package bench

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// TestEventLogs: everyone is in each log, at about the mean rows a
// person, some far above it, dated over 60 days in date order.
func TestEventLogs(t *testing.T) {
	for party, tab := range eventTables {
		var buf bytes.Buffer
		rows, err := writeEvents(&buf, tab, party, 100, 2000)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(recs)-1) != rows {
			t.Fatalf("%s: %d records, %d rows said", tab.name, len(recs)-1, rows)
		}
		per := map[string]int{}
		last := ""
		for _, r := range recs[1:] {
			per[r[0]]++
			if r[1] < last || r[1] < "2026-01-01" || r[1] > "2026-03-01" {
				t.Fatalf("%s: date %s after %s, or outside 60 days", tab.name, r[1], last)
			}
			last = r[1]
		}
		most := 0
		for _, n := range per {
			most = max(most, n)
		}
		mean := float64(rows) / 2000
		if len(per) != 2000 || mean < 0.85*tab.mean || mean > 1.15*tab.mean || most < 3*int(tab.mean) {
			t.Errorf("%s: %d people, %.1f rows a person (want about %v), at most %d", tab.name, len(per), mean, tab.mean, most)
		}
	}
	for day, want := range map[int]string{0: "2026-01-01", 31: "2026-02-01", 59: "2026-03-01"} {
		if got := eventDates[day]; got != want {
			t.Errorf("day %d is %s, want %s", day, got, want)
		}
	}
}
