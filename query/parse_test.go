package query

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func lit(kind string, v any) Literal { return Literal{Kind: kind, Value: v} }

func str(s string) Literal  { return lit(KindString, s) }
func num(i int64) Literal   { return lit(KindInt, i) }
func flt(f float64) Literal { return lit(KindFloat, f) }

var countAgg = Aggregate{Func: Count, Alias: "count"}

func countOnly(where *Expr) *Plan {
	return &Plan{Aggregates: []Aggregate{countAgg}, Where: where,
		Columns: []OutputColumn{{Name: "count", Index: 0}}}
}

func cmp(op, col string, vals ...Literal) *Expr { return &Expr{Op: op, Column: col, Values: vals} }

func node(op string, children ...*Expr) *Expr { return &Expr{Op: op, Children: children} }

var acceptedCases = []struct {
	text string
	want *Plan
}{
	{"SELECT COUNT(*) FROM cohort", countOnly(nil)},
	{"select count(*) from cohort;", countOnly(nil)},
	{"SELECT COUNT(*) FROM cohort WHERE date_diff('day', signup, signup) BETWEEN 0 AND 7", countOnly(&Expr{Op: OpWithin, Column: "signup", Column2: "signup",
		Values: []Literal{{Kind: KindInt, Value: int64(0)}, {Kind: KindInt, Value: int64(7)}}})},
	{"SELECT COUNT(*) AS people FROM cohort", &Plan{
		Aggregates: []Aggregate{{Func: Count, Alias: "people"}},
		Columns:    []OutputColumn{{Name: "people", Index: 0}}}},
	{"SELECT region, COUNT(*), SUM(spend), AVG(spend) AS mean_spend FROM cohort GROUP BY region", &Plan{
		Dimensions: []string{"region"},
		Aggregates: []Aggregate{countAgg, {Func: Sum, Column: "spend", Alias: "sum_spend"}, {Func: Avg, Column: "spend", Alias: "mean_spend"}},
		Columns: []OutputColumn{{Name: "region", Dimension: true, Index: 0}, {Name: "count", Index: 0},
			{Name: "sum_spend", Index: 1}, {Name: "mean_spend", Index: 2}}}},
	{"SELECT SUM(visits), region, tier, AVG(spend) FROM cohort GROUP BY tier, region", &Plan{
		Dimensions: []string{"region", "tier"},
		Aggregates: []Aggregate{{Func: Sum, Column: "visits", Alias: "sum_visits"}, {Func: Avg, Column: "spend", Alias: "avg_spend"}},
		Columns: []OutputColumn{{Name: "sum_visits", Index: 0}, {Name: "region", Dimension: true, Index: 0},
			{Name: "tier", Dimension: true, Index: 1}, {Name: "avg_spend", Index: 1}}}},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'north'", countOnly(cmp(OpEq, "region", str("north")))},
	{"SELECT COUNT(*) FROM cohort WHERE region <> 'it''s'", countOnly(cmp(OpNe, "region", str("it's")))},
	{"SELECT COUNT(*) FROM cohort WHERE region != ''", countOnly(cmp(OpNe, "region", str("")))},
	{"SELECT COUNT(*) FROM cohort WHERE age < 30", countOnly(cmp(OpLt, "age", num(30)))},
	{"SELECT COUNT(*) FROM cohort WHERE age <= -3", countOnly(cmp(OpLe, "age", num(-3)))},
	{"SELECT COUNT(*) FROM cohort WHERE age > 2.5", countOnly(cmp(OpGt, "age", flt(2.5)))},
	{"SELECT COUNT(*) FROM cohort WHERE age >= 1e3", countOnly(cmp(OpGe, "age", flt(1000)))},
	{"SELECT COUNT(*) FROM cohort WHERE 30 > age", countOnly(cmp(OpLt, "age", num(30)))},
	{"SELECT COUNT(*) FROM cohort WHERE age = 9223372036854775807", countOnly(cmp(OpEq, "age", num(9223372036854775807)))},
	{"SELECT COUNT(*) FROM cohort WHERE age = -9223372036854775808", countOnly(cmp(OpEq, "age", num(-9223372036854775808)))},
	{"SELECT COUNT(*) FROM cohort WHERE region IN ('a', 'b')", countOnly(cmp(OpIn, "region", str("a"), str("b")))},
	{"SELECT COUNT(*) FROM cohort WHERE region NOT IN ('a')", countOnly(cmp(OpNotIn, "region", str("a")))},
	{"SELECT COUNT(*) FROM cohort WHERE NOT region IN ('a')", countOnly(cmp(OpNotIn, "region", str("a")))},
	{"SELECT COUNT(*) FROM cohort WHERE age BETWEEN 18 AND 34", countOnly(cmp(OpBetween, "age", num(18), num(34)))},
	{"SELECT COUNT(*) FROM cohort WHERE age NOT BETWEEN 18 AND 34", countOnly(node(OpNot, cmp(OpBetween, "age", num(18), num(34))))},
	{"SELECT COUNT(*) FROM cohort WHERE NOT (region = 'a')", countOnly(cmp(OpNe, "region", str("a")))},
	{"SELECT COUNT(*) FROM cohort WHERE NOT (age < 3)", countOnly(cmp(OpGe, "age", num(3)))},
	{"SELECT COUNT(*) FROM cohort WHERE NOT NOT tier IS NULL", countOnly(cmp(OpIsNull, "tier"))},
	{"SELECT COUNT(*) FROM cohort WHERE NOT (region = 'a' OR age > 3)",
		countOnly(node(OpNot, node(OpOr, cmp(OpEq, "region", str("a")), cmp(OpGt, "age", num(3)))))},
	{"SELECT COUNT(*) FROM cohort WHERE tier IS NULL", countOnly(cmp(OpIsNull, "tier"))},
	{"SELECT COUNT(*) FROM cohort WHERE tier IS NOT NULL", countOnly(cmp(OpIsNotNull, "tier"))},
	{"SELECT COUNT(*) FROM cohort WHERE signup >= DATE '2024-01-31'", countOnly(cmp(OpGe, "signup", lit(KindDate, "2024-01-31")))},
	{"SELECT COUNT(*) FROM cohort WHERE signup BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'",
		countOnly(cmp(OpBetween, "signup", lit(KindDate, "2024-01-01"), lit(KindDate, "2024-12-31")))},
	{"SELECT COUNT(*) FROM cohort WHERE exposed = true OR exposed = FALSE",
		countOnly(node(OpOr, cmp(OpEq, "exposed", lit(KindBool, true)), cmp(OpEq, "exposed", lit(KindBool, false))))},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a' AND (age > 1 AND (tier = 'x' OR tier = 'y'))",
		countOnly(node(OpAnd, cmp(OpEq, "region", str("a")), cmp(OpGt, "age", num(1)),
			node(OpOr, cmp(OpEq, "tier", str("x")), cmp(OpEq, "tier", str("y")))))},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'é€😀'", countOnly(cmp(OpEq, "region", str("é€😀")))},
	{"SELECT COUNT(*) FROM cohort WHERE region = '; DROP TABLE cohort; --'", countOnly(cmp(OpEq, "region", str("; DROP TABLE cohort; --")))},
	{`SELECT "Region", Count(*) FROM "COHORT" GROUP BY REGION`, &Plan{
		Dimensions: []string{"region"}, Aggregates: []Aggregate{countAgg},
		Columns: []OutputColumn{{Name: "region", Dimension: true, Index: 0}, {Name: "count", Index: 0}}}},
	{"FROM cohort SELECT COUNT(*)", countOnly(nil)},
}

func exported(p *Plan) *Plan {
	if p == nil {
		return nil
	}
	c := *p
	c.positions = nil
	return &c
}

func TestParseAccepted(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()).SQL()
	for _, tc := range acceptedCases {
		t.Run(tc.text, func(t *testing.T) {
			plan, err := Parse(ctx, db, tc.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := exported(plan); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("plan\n got %s\nwant %s", dump(got), dump(tc.want))
			}
			if err := plan.Check(testDimensions, testMetrics); err != nil {
				t.Fatalf("Check: %v", err)
			}
			where, args := plan.WhereSQL()
			if !strictWhere.MatchString(where) || countPlaceholders(where) != len(args) {
				t.Fatalf("WhereSQL %q %v", where, args)
			}
			// The canonical text is a query of the subset with the same plan.
			again, err := Parse(ctx, db, plan.Canonical())
			if err != nil {
				t.Fatalf("Parse(Canonical %q): %v", plan.Canonical(), err)
			}
			if !reflect.DeepEqual(exported(again), tc.want) {
				t.Fatalf("canonical %q parses to %s", plan.Canonical(), dump(again))
			}
		})
	}
}

func dump(p *Plan) string {
	if p == nil {
		return "<nil>"
	}
	var where strings.Builder
	if p.Where != nil {
		writeExpr(&where, p.Where, func(l Literal) { fmt.Fprintf(&where, "%s:%#v", l.Kind, l.Value) })
	}
	return fmt.Sprintf("dims=%q aggs=%+v cols=%+v where=%s", p.Dimensions, p.Aggregates, p.Columns, where.String())
}

// TestWhereSQLRuns runs every accepted query's generated predicate against
// a table of the cohort's shape: the generated SQL is valid DuckDB.
func TestWhereSQLRuns(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()).SQL()
	if _, err := db.ExecContext(ctx, `CREATE TEMP TABLE shape (uid VARCHAR, region VARCHAR, age BIGINT,
		signup DATE, exposed BOOLEAN, tier VARCHAR, spend DOUBLE, visits BIGINT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO shape VALUES
		('u1', 'north', 30, DATE '2024-02-01', true, NULL, 10, 1),
		('u2', 'a', 20, DATE '2023-02-01', false, 'x', 5, 2)`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range acceptedCases {
		plan, err := Parse(ctx, db, tc.text)
		if err != nil {
			t.Fatal(err)
		}
		where, args := plan.WhereSQL()
		q := "SELECT COUNT(*) FROM shape WHERE " + where
		if g := plan.GroupSQL(); g != "" {
			q = "SELECT " + g + ", COUNT(*) FROM shape WHERE " + where + " GROUP BY " + g
		}
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			t.Errorf("%s: %s %v: %v", tc.text, q, args, err)
			continue
		}
		rows.Close()
	}
	plan, err := Parse(ctx, db, "SELECT COUNT(*) FROM cohort WHERE signup >= DATE '2024-01-01' AND region IN ('north', 'south')")
	if err != nil {
		t.Fatal(err)
	}
	where, args := plan.WhereSQL()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM shape WHERE "+where, args...).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%s %v: n=%d err=%v", where, args, n, err)
	}
}

func TestCanonical(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()).SQL()
	same := [][]string{
		{
			"SELECT region, COUNT(*) FROM cohort WHERE age > 30 GROUP BY region",
			"select   region ,count( * )\n\tfrom COHORT where AGE>30 group  by Region",
			"SELECT region, COUNT(*) AS count FROM cohort WHERE 30 < age GROUP BY region -- comment",
			"/* c */ SELECT \"region\", count(*) FROM cohort WHERE (age > 30) GROUP BY region;",
			"FROM cohort SELECT region, COUNT(*) WHERE age > 30 GROUP BY region",
		},
		{
			"SELECT SUM(spend) FROM cohort WHERE region IN ('a','b') AND NOT tier IS NULL",
			"select sum(spend) as sum_spend from cohort where region in ( 'a' , 'b' ) and tier is not null",
		},
		{
			"SELECT COUNT(*) FROM cohort WHERE signup = DATE '2024-01-01'",
			"SELECT COUNT(*) FROM cohort WHERE signup = date '2024-01-01'",
		},
	}
	for _, group := range same {
		var first *Plan
		for _, q := range group {
			plan, err := Parse(ctx, db, q)
			if err != nil {
				t.Fatalf("%q: %v", q, err)
			}
			if first == nil {
				first = plan
				continue
			}
			if plan.Canonical() != first.Canonical() || plan.Hash() != first.Hash() {
				t.Errorf("%q\n canonical %q\n want      %q", q, plan.Canonical(), first.Canonical())
			}
		}
	}
	different := []string{
		"SELECT COUNT(*) FROM cohort",
		"SELECT COUNT(*) AS n FROM cohort",
		"SELECT SUM(spend) FROM cohort",
		"SELECT AVG(spend) FROM cohort",
		"SELECT region, COUNT(*) FROM cohort GROUP BY region",
		"SELECT COUNT(*), region FROM cohort GROUP BY region",
		"SELECT COUNT(*) FROM cohort WHERE age > 30",
		"SELECT COUNT(*) FROM cohort WHERE age >= 30",
		"SELECT COUNT(*) FROM cohort WHERE age > 30.0",
		"SELECT COUNT(*) FROM cohort WHERE age > '30'",
		"SELECT COUNT(*) FROM cohort WHERE region = 'a' AND tier = 'b'",
		"SELECT COUNT(*) FROM cohort WHERE tier = 'b' AND region = 'a'",
		"SELECT COUNT(*) FROM cohort WHERE region = 'a' OR tier = 'b'",
		"SELECT COUNT(*) FROM cohort WHERE region = 'A'",
		"SELECT COUNT(*) FROM cohort WHERE region = 'a'''",
		"SELECT COUNT(*) FROM cohort WHERE region IN ('a', 'b')",
		"SELECT COUNT(*) FROM cohort WHERE region IN ('a, b')",
		"SELECT COUNT(*) FROM cohort WHERE signup = DATE '2024-01-01'",
		"SELECT COUNT(*) FROM cohort WHERE signup = '2024-01-01'",
		"SELECT COUNT(*) FROM cohort WHERE exposed = true",
		"SELECT COUNT(*) FROM cohort WHERE exposed = 't'",
	}
	seen := map[string]string{}
	for _, q := range different {
		plan, err := Parse(ctx, db, q)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		c := plan.Canonical()
		if prev, ok := seen[c]; ok {
			t.Errorf("%q and %q share the canonical text %q", q, prev, c)
		}
		seen[c] = q
		if len(plan.Hash()) != 64 {
			t.Errorf("hash %q", plan.Hash())
		}
	}
}
