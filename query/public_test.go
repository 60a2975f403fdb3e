package query

import (
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/wire"
)

// TestPublicDomainDates: a date range's groups are every step, typed as
// the column's dates, the data's statistics where it has the group and
// none elsewhere; a plan with a dimension not public is not public.
func TestPublicDomainDates(t *testing.T) {
	r := wire.DefaultRules()
	r.PublicGroups = map[string]wire.PublicValues{"day": {Dates: &wire.DateRange{From: "2026-01-01", To: "2026-01-15", StepDays: 7}}}
	p := &Plan{Dimensions: []string{"day"}, Aggregates: []Aggregate{{Func: Count, Alias: "count"}}}
	domain, ok := publicDomain(p, r)
	if !ok || len(domain) != 1 || len(domain[0]) != 3 {
		t.Fatalf("domain %v %v, want three dates", domain, ok)
	}
	types := map[string]string{"day": "DATE"}
	q, err := restrictToPublic(p, domain, types)
	if err != nil {
		t.Fatal(err)
	}
	if sql, args := q.WhereSQL(); sql != `"day" IN (CAST(? AS DATE), CAST(? AS DATE), CAST(? AS DATE))` || len(args) != 3 {
		t.Errorf("restriction %s %v", sql, args)
	}
	jan8 := time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)
	got, err := fillPublic(p, domain, types, []dp.Group{{Key: []any{jan8}, Users: 7, Sums: []float64{0}}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Users != 7 || got[0].Users != 0 || got[2].Users != 0 || !got[0].Key[0].(time.Time).Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("filled groups %+v", got)
	}
	if _, err := restrictToPublic(p, [][]any{{"not a date"}}, types); err == nil {
		t.Error("a public value that is not a date was accepted for a DATE column")
	}
	p.Dimensions = []string{"day", "region"}
	if _, ok := publicDomain(p, r); ok {
		t.Error("a plan also grouped by a dimension that is not public was taken as public")
	}
}
