package query

import (
	"context"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/internal/errs"
)

func TestCheck(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()).SQL()
	cases := []struct {
		text string
		code *errs.Kind // nil when allowed
		in   []string
	}{
		{"SELECT region, COUNT(*), SUM(spend), AVG(visits) FROM cohort WHERE age > 3 GROUP BY region", nil, nil},
		{"SELECT COUNT(*) FROM cohort", nil, nil},
		{"SELECT city, COUNT(*) FROM cohort GROUP BY city", errs.NotAllowed,
			[]string{"column city in GROUP BY is not a dimension", "at position 7", "allowed dimensions: age, exposed, region, signup, tier"}},
		{"SELECT COUNT(*) FROM cohort WHERE city = 'x'", errs.NotAllowed,
			[]string{"column city in WHERE is not a dimension", "at position 34"}},
		{"SELECT COUNT(*) FROM cohort WHERE region = 'a' AND (tier = 'b' OR NOT city IN ('x'))", errs.NotAllowed,
			[]string{"column city"}},
		{"SELECT SUM(income) FROM cohort", errs.NotAllowed,
			[]string{"SUM(income): income is not a metric", "allowed metrics: spend, visits"}},
		{"SELECT AVG(region) FROM cohort", errs.NotAllowed,
			[]string{"AVG(region): region is a dimension, not a metric", "allowed metrics: spend, visits"}},
		{"SELECT SUM(region) FROM cohort", errs.NotAllowed, []string{"region is a dimension"}},
		{"SELECT spend, COUNT(*) FROM cohort GROUP BY spend", errs.NotAllowed,
			[]string{"column spend in GROUP BY is a metric"}},
		{"SELECT COUNT(*) FROM cohort WHERE spend > 10", errs.NotAllowed,
			[]string{"column spend in WHERE is a metric"}},
	}
	for _, tc := range cases {
		plan, err := Parse(ctx, db, tc.text)
		if err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		err = plan.Check(testDimensions, testMetrics)
		if tc.code == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.text, err)
			}
			continue
		}
		e, ok := asError(err)
		if !ok || e.Kind != tc.code {
			t.Errorf("%s: got %v, want code %s", tc.text, err, tc.code)
			continue
		}
		for _, frag := range tc.in {
			if !strings.Contains(e.Message, frag) {
				t.Errorf("%s: %q does not contain %q", tc.text, e.Message, frag)
			}
		}
	}

	// Empty rules allow nothing but COUNT(*).
	plan, err := Parse(ctx, db, "SELECT COUNT(*) FROM cohort")
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Check(nil, nil); err != nil {
		t.Fatal(err)
	}
	plan, err = Parse(ctx, db, "SELECT region, COUNT(*) FROM cohort GROUP BY region")
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Check(nil, nil); err == nil || !strings.Contains(err.Error(), "allowed dimensions: none") {
		t.Fatalf("got %v", err)
	}
	// Rules naming a hidden column do not make it visible.
	if err := plan.Check([]string{"uid", "region"}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestCheckHandBuilt: a plan built by hand gets the same guarantees as
// one from Parse.
func TestCheckHandBuilt(t *testing.T) {
	bad := []*Plan{
		{},
		{Aggregates: []Aggregate{{Func: "min", Column: "spend", Alias: "m"}}, Columns: []OutputColumn{{Name: "m"}}},
		{Aggregates: []Aggregate{{Func: Sum, Column: `spend"; DROP TABLE x; --`, Alias: "s"}}, Columns: []OutputColumn{{Name: "s"}}},
		{Dimensions: []string{"uid"}, Aggregates: []Aggregate{countAgg},
			Columns: []OutputColumn{{Name: "uid", Dimension: true}, {Name: "count"}}},
		{Aggregates: []Aggregate{countAgg}, Columns: []OutputColumn{{Name: "count"}},
			Where: &Expr{Op: OpEq, Column: `region" OR 1=1 --`, Values: []Literal{str("a")}}},
		{Aggregates: []Aggregate{countAgg}, Columns: []OutputColumn{{Name: "count"}},
			Where: &Expr{Op: "like", Column: "region", Values: []Literal{str("a")}}},
		{Aggregates: []Aggregate{countAgg}, Columns: []OutputColumn{{Name: "count"}},
			Where: &Expr{Op: OpEq, Column: "region", Values: []Literal{{Kind: KindDate, Value: "now()"}}}},
		{Aggregates: []Aggregate{countAgg}, Columns: []OutputColumn{{Name: "count"}},
			Where: &Expr{Op: OpAnd}},
	}
	for i, p := range bad {
		if err := p.Check([]string{"region", "uid"}, testMetrics); err == nil {
			t.Errorf("plan %d passed Check", i)
		}
		where, args := p.WhereSQL()
		if countPlaceholders(where) != len(args) {
			t.Errorf("plan %d: %q %v", i, where, args)
		}
	}
}
