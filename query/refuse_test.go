package query

import (
	"context"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/internal/errs"
)

var refusedCases = []struct {
	text string
	code *errs.Kind
	// in is a fragment the message must contain.
	in string
}{
	// Joins, subqueries, CTEs, set operations.
	{"SELECT COUNT(*) FROM cohort JOIN audiences ON cohort.uid = audiences.uid", errs.Unsupported, "JOIN at position 28"},
	{"SELECT COUNT(*) FROM cohort LEFT JOIN audiences USING (uid)", errs.Unsupported, "JOIN"},
	{"SELECT COUNT(*) FROM cohort, audiences", errs.Unsupported, "JOIN (comma"},
	{"SELECT COUNT(*) FROM cohort CROSS JOIN audiences", errs.Unsupported, "JOIN"},
	{"SELECT COUNT(*) FROM cohort POSITIONAL JOIN audiences", errs.Unsupported, "JOIN"},
	{"SELECT COUNT(*) FROM (SELECT * FROM cohort)", errs.Unsupported, "a per-person step selecting other than one count"},
	{"SELECT COUNT(*) FROM cohort WHERE region IN (SELECT region FROM cohort)", errs.Unsupported, "subquery"},
	{"SELECT COUNT(*) FROM cohort WHERE region = (SELECT 'a')", errs.Unsupported, "subquery"},
	{"SELECT COUNT(*) FROM cohort WHERE EXISTS (SELECT 1)", errs.Unsupported, "subquery"},
	{"SELECT (SELECT 1), COUNT(*) FROM cohort", errs.Unsupported, "subquery in SELECT"},
	{"SELECT SUM((SELECT 1)) FROM cohort", errs.Unsupported, "subquery inside SUM"},
	{"WITH c AS (SELECT * FROM cohort) SELECT COUNT(*) FROM c", errs.Unsupported, "WITH"},
	{"WITH c AS (SELECT 1) SELECT COUNT(*) FROM cohort", errs.Unsupported, "WITH"},
	{"WITH RECURSIVE c AS (SELECT 1 UNION ALL SELECT 1 FROM c) SELECT COUNT(*) FROM cohort", errs.Unsupported, "WITH"},
	{"SELECT COUNT(*) FROM cohort UNION SELECT COUNT(*) FROM cohort", errs.Unsupported, "UNION"},
	{"SELECT COUNT(*) FROM cohort UNION ALL SELECT 1", errs.Unsupported, "UNION"},
	{"SELECT COUNT(*) FROM cohort EXCEPT SELECT 1", errs.Unsupported, "EXCEPT"},
	{"SELECT COUNT(*) FROM cohort INTERSECT SELECT 1", errs.Unsupported, "INTERSECT"},
	// Windows and table functions.
	{"SELECT COUNT(*) OVER () FROM cohort", errs.Unsupported, "window function"},
	{"SELECT region, SUM(spend) OVER (PARTITION BY region) FROM cohort GROUP BY region", errs.Unsupported, "window function"},
	{"SELECT COUNT(*) FROM cohort QUALIFY row_number() OVER () = 1", errs.Unsupported, "QUALIFY"},
	{"SELECT COUNT(*) FROM read_csv('x')", errs.Unsupported, "table function read_csv()"},
	{"SELECT COUNT(*) FROM read_csv_auto('/etc/passwd')", errs.Unsupported, "table function"},
	{"SELECT COUNT(*) FROM read_parquet('s3://bucket/x.parquet')", errs.Unsupported, "table function read_parquet()"},
	{"SELECT COUNT(*) FROM 'data.csv'", errs.Unsupported, "table"},
	{"SELECT COUNT(*) FROM range(10)", errs.Unsupported, "table function range()"},
	// Other statements.
	{"COPY cohort TO 'out.csv'", errs.Unsupported, "COPY statement"},
	{"COPY (SELECT * FROM cohort) TO 'out.csv'", errs.Unsupported, "COPY"},
	{"ATTACH 'other.db' AS o", errs.Unsupported, "ATTACH statement"},
	{"DETACH o", errs.Unsupported, "DETACH"},
	{"PRAGMA database_list", errs.Unsupported, "PRAGMA statement"},
	{"SET threads = 1", errs.Unsupported, "SET statement"},
	{"INSERT INTO cohort VALUES (1)", errs.Unsupported, "INSERT statement"},
	{"UPDATE cohort SET region = 'a'", errs.Unsupported, "UPDATE"},
	{"DELETE FROM cohort", errs.Unsupported, "DELETE"},
	{"DROP TABLE cohort", errs.Unsupported, "DROP statement"},
	{"CREATE TABLE x AS SELECT * FROM cohort", errs.Unsupported, "CREATE"},
	{"INSTALL httpfs", errs.Unsupported, "INSTALL"},
	{"LOAD httpfs", errs.Unsupported, "LOAD"},
	{"CALL pragma_version()", errs.Unsupported, "CALL"},
	{"EXPLAIN SELECT COUNT(*) FROM cohort", errs.Unsupported, "EXPLAIN"},
	{"EXPORT DATABASE 'x'", errs.Unsupported, "EXPORT"},
	{"CHECKPOINT", errs.Unsupported, "CHECKPOINT"},
	{"VACUUM", errs.Unsupported, "VACUUM"},
	{"BEGIN", errs.Unsupported, "BEGIN"},
	{"PIVOT cohort ON region USING COUNT(*)", errs.Unsupported, "PIVOT"},
	{"DESCRIBE cohort", errs.Unsupported, ""},
	{"SUMMARIZE cohort", errs.Unsupported, ""},
	{"VALUES (1)", errs.Unsupported, "VALUES"},
	{"SELECT COUNT(*) FROM cohort; DROP TABLE x", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort; SELECT COUNT(*) FROM cohort", errs.Unsupported, "multiple statements"},
	// Grouping constructs.
	{"SELECT region, COUNT(*) FROM cohort GROUP BY ALL", errs.Unsupported, "GROUP BY ALL"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY ROLLUP (region)", errs.Unsupported, "ROLLUP"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY CUBE (region)", errs.Unsupported, "CUBE"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY GROUPING SETS ((region), ())", errs.Unsupported, "GROUPING SETS"},
	{"SELECT COUNT(*) FROM cohort GROUP BY ()", errs.Unsupported, "GROUP BY ()"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY 1", errs.Unsupported, "GROUP BY position"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY lower(region)", errs.Unsupported, "function lower() in GROUP BY"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY region HAVING COUNT(*) > 10", errs.Unsupported, "HAVING"},
	// Modifiers.
	{"SELECT region, COUNT(*) FROM cohort GROUP BY region ORDER BY region", errs.Unsupported, "ORDER BY"},
	{"SELECT COUNT(*) FROM cohort LIMIT 1", errs.Unsupported, "LIMIT"},
	{"SELECT COUNT(*) FROM cohort LIMIT 10%", errs.Unsupported, "LIMIT"},
	{"SELECT COUNT(*) FROM cohort OFFSET 1", errs.Unsupported, "OFFSET"},
	{"SELECT DISTINCT region, COUNT(*) FROM cohort GROUP BY region", errs.Unsupported, "DISTINCT"},
	{"SELECT DISTINCT ON (region) region, COUNT(*) FROM cohort GROUP BY region", errs.Unsupported, "DISTINCT"},
	{"SELECT COUNT(*) FROM cohort USING SAMPLE 10", errs.Unsupported, "SAMPLE"},
	{"SELECT COUNT(*) FROM cohort TABLESAMPLE 10%", errs.Unsupported, "TABLESAMPLE"},
	// Aggregates.
	{"SELECT COUNT(DISTINCT region) FROM cohort", errs.Unsupported, "COUNT(DISTINCT"},
	{"SELECT SUM(DISTINCT spend) FROM cohort", errs.Unsupported, "SUM(DISTINCT"},
	{"SELECT COUNT(uid) FROM cohort", errs.HiddenColumn, "uid"},
	{"SELECT COUNT(region + 1) FROM cohort", errs.Unsupported, "inside COUNT()"},
	{"SELECT MIN(spend) FROM cohort", errs.Unsupported, "function min()"},
	{"SELECT MAX(spend) FROM cohort", errs.Unsupported, "function max()"},
	{"SELECT min(spend) FROM cohort", errs.Unsupported, "function min()"},
	{"SELECT n, COUNT(*) FROM (SELECT COUNT(region) AS n FROM cohort GROUP BY region) GROUP BY n", errs.Unsupported, "not grouped by person"},
	{"SELECT n, COUNT(*) FROM (SELECT SUM(spend) AS n FROM cohort GROUP BY person) GROUP BY n", errs.Unsupported, "per-person step of SUM"},
	{"SELECT n, SUM(spend) FROM (SELECT COUNT(region) AS n FROM cohort GROUP BY person) GROUP BY n", errs.Unsupported, "distribution with SUM"},
	{"SELECT n, COUNT(*) FROM (SELECT COUNT(region) AS n FROM cohort GROUP BY person) WHERE n > 1 GROUP BY n", errs.Unsupported, "WHERE over a per-person step"},
	{"SELECT COUNT(*) FROM cohort WHERE date_diff('month', signup, age) BETWEEN 0 AND 7", errs.Unsupported, "date_diff unit month"},
	{"SELECT COUNT(*) FROM cohort WHERE date_diff('day', signup, age) BETWEEN 0 AND 7.5", errs.Unsupported, "7.5 days"},
	{"SELECT COUNT(*) FROM cohort WHERE date_diff('day', signup, 3) BETWEEN 0 AND 7", errs.Unsupported, "in date_diff"},
	{"SELECT COUNT(*) FROM cohort WHERE upper(region) BETWEEN 'a' AND 'b'", errs.Unsupported, "before BETWEEN"},
	{"SELECT QUANTILE_CONT(spend, 1.5) FROM cohort", errs.Unsupported, "quantile rank 1.5"},
	{"SELECT QUANTILE_CONT(spend) FROM cohort", errs.Unsupported, "QUANTILE_CONT() with 1 arguments"},
	{"SELECT list(region) FROM cohort", errs.Unsupported, "function list()"},
	{"SELECT COUNT(*) FILTER (WHERE region = 'a') FROM cohort", errs.Unsupported, "FILTER"},
	{"SELECT SUM(spend ORDER BY spend) FROM cohort", errs.Unsupported, "ORDER BY inside SUM"},
	{"SELECT SUM(spend, visits) FROM cohort", errs.Unsupported, "2 arguments"},
	{"SELECT SUM(*) FROM cohort", errs.Unsupported, "0 arguments"},
	{"SELECT main.sum(spend) FROM cohort", errs.Unsupported, "qualified function"},
	{"SELECT region FROM cohort GROUP BY region", errs.Unsupported, "no aggregate"},
	{"SELECT COUNT(*) AS \"Bad Name\" FROM cohort", errs.Unsupported, "alias"},
	{"SELECT COUNT(*) AS _x FROM cohort", errs.Unsupported, "alias"},
	{"SELECT region AS r, COUNT(*) FROM cohort GROUP BY region", errs.Unsupported, "alias on the dimension"},
	{"SELECT SUM(spend), SUM(spend) FROM cohort", errs.Unsupported, "duplicate output column sum_spend"},
	{"SELECT region, COUNT(*) AS region FROM cohort GROUP BY region", errs.Unsupported, "duplicate output column"},
	{"SELECT region, region, COUNT(*) FROM cohort GROUP BY region", errs.Unsupported, "duplicate output column"},
	// Hidden columns.
	{"SELECT uid, COUNT(*) FROM cohort GROUP BY uid", errs.HiddenColumn, "column uid is hidden at position 7"},
	{"SELECT COUNT(*) FROM cohort WHERE uid = 'x'", errs.HiddenColumn, "uid"},
	{"SELECT COUNT(*) FROM cohort WHERE \"UID\" IS NULL", errs.HiddenColumn, "uid"},
	{"SELECT SUM(uid) FROM cohort", errs.HiddenColumn, "uid"},
	{"SELECT _a_row, COUNT(*) FROM cohort GROUP BY _a_row", errs.HiddenColumn, "_a_row"},
	{"SELECT SUM(_b_row) FROM cohort", errs.HiddenColumn, "_b_row"},
	{"SELECT COUNT(*) FROM cohort WHERE rowid < 10", errs.HiddenColumn, "rowid"},
	// Functions, arithmetic, casts.
	{"SELECT lower(region), COUNT(*) FROM cohort GROUP BY lower(region)", errs.Unsupported, "function lower()"},
	{"SELECT COUNT(*) FROM cohort WHERE lower(region) = 'a'", errs.Unsupported, "function lower()"},
	{"SELECT COUNT(*) FROM cohort WHERE signup < now()", errs.Unsupported, "function now()"},
	{"SELECT COUNT(*) FROM cohort WHERE age < random()", errs.Unsupported, "function random()"},
	{"SELECT random(), COUNT(*) FROM cohort", errs.Unsupported, "function random()"},
	{"SELECT spend * 2, COUNT(*) FROM cohort GROUP BY spend * 2", errs.Unsupported, "operator *"},
	{"SELECT SUM(spend + 1) FROM cohort", errs.Unsupported, "operator + inside SUM"},
	{"SELECT SUM(spend) * 2 FROM cohort", errs.Unsupported, "operator *"},
	{"SELECT COUNT(*) + 1 FROM cohort", errs.Unsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE age = 1 + 1", errs.Unsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE age = +1", errs.Unsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE age + 1 = 2", errs.Unsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a' || 'b'", errs.Unsupported, "operator ||"},
	{"SELECT COUNT(*) FROM cohort WHERE region LIKE 'a%'", errs.Unsupported, "LIKE"},
	{"SELECT COUNT(*) FROM cohort WHERE region ILIKE 'a%'", errs.Unsupported, "ILIKE"},
	{"SELECT COUNT(*) FROM cohort WHERE region SIMILAR TO 'a'", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE CAST(age AS VARCHAR) = '1'", errs.Unsupported, "cast to VARCHAR"},
	{"SELECT COUNT(*) FROM cohort WHERE age::VARCHAR = '1'", errs.Unsupported, "cast to VARCHAR"},
	{"SELECT COUNT(*) FROM cohort WHERE age = '1'::INTEGER", errs.Unsupported, "cast to INTEGER"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = '2024-01-01'::DATE", errs.Unsupported, "cast to DATE"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = CAST('2024-01-01' AS DATE)", errs.Unsupported, "cast to DATE"},
	{"SELECT COUNT(*) FROM cohort WHERE age = TRY_CAST('1' AS INTEGER)", errs.Unsupported, "cast"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = TIMESTAMP '2024-01-01 00:00:00'", errs.Unsupported, "TIMESTAMP literal"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = DATE '2024-02-30'", errs.Unsupported, "date literal"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = DATE 'yesterday'", errs.Unsupported, "date literal"},
	{"SELECT COUNT(*) FROM cohort WHERE signup > DATE '2024-01-01' - INTERVAL 1 DAY", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE signup = INTERVAL 1 DAY", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a' COLLATE nocase", errs.Unsupported, "COLLATE"},
	{"SELECT COUNT(*) FROM cohort WHERE region = CASE WHEN age > 1 THEN 'a' END", errs.Unsupported, "CASE"},
	{"SELECT COUNT(*) FROM cohort WHERE age = ?", errs.Unsupported, "parameter"},
	{"SELECT COUNT(*) FROM cohort WHERE age = $1", errs.Unsupported, "parameter"},
	{"SELECT COUNT(*) FROM cohort WHERE age = $x", errs.Unsupported, "parameter"},
	{"SELECT COUNT(*) FROM cohort WHERE region = getenv('HOME')", errs.Unsupported, "function getenv()"},
	{"SELECT COUNT(*) FROM cohort WHERE region IN (lower('A'))", errs.Unsupported, "function lower()"},
	{"SELECT COUNT(*) FROM cohort WHERE age = [1, 2]", errs.Unsupported, "function list_value()"},
	{"SELECT COUNT(*) FROM cohort WHERE age = {'a': 1}", errs.Unsupported, "struct_pack"},
	{"SELECT COUNT(*) FROM cohort WHERE age = 99999999999999999999", errs.Unsupported, "out of range"},
	{"SELECT COUNT(*) FROM cohort WHERE age = 1e400", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE age = 1234567890.1234567890123", errs.Unsupported, "decimal literal"},
	// Predicates outside the subset.
	{"SELECT COUNT(*) FROM cohort WHERE region = NULL", errs.Unsupported, "NULL literal"},
	{"SELECT COUNT(*) FROM cohort WHERE region IN ('a', NULL)", errs.Unsupported, "NULL literal"},
	{"SELECT COUNT(*) FROM cohort WHERE region IS DISTINCT FROM 'a'", errs.Unsupported, "IS DISTINCT FROM"},
	{"SELECT COUNT(*) FROM cohort WHERE exposed IS TRUE", errs.Unsupported, "IS TRUE"},
	{"SELECT COUNT(*) FROM cohort WHERE exposed", errs.Unsupported, "used as a condition"},
	{"SELECT COUNT(*) FROM cohort WHERE TRUE", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE 1 = 1", errs.Unsupported, "constant"},
	{"SELECT COUNT(*) FROM cohort WHERE region = tier", errs.Unsupported, "two columns"},
	{"SELECT COUNT(*) FROM cohort WHERE 'a' IN (region)", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE age BETWEEN SYMMETRIC 1 AND 2", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE age BETWEEN 1 AND tier", errs.Unsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE COUNT(*) > 1", errs.Unsupported, ""},
	// Select list.
	{"SELECT * FROM cohort", errs.Unsupported, "SELECT *"},
	{"SELECT *, COUNT(*) FROM cohort", errs.Unsupported, "SELECT *"},
	{"SELECT COLUMNS('.*'), COUNT(*) FROM cohort", errs.Unsupported, "SELECT *"},
	{"SELECT 1, COUNT(*) FROM cohort", errs.Unsupported, "constant in SELECT"},
	{"SELECT region, COUNT(*) FROM cohort", errs.Unsupported, "region is selected but not in GROUP BY"},
	{"SELECT region, tier, COUNT(*) FROM cohort GROUP BY region", errs.Unsupported, "tier is selected but not in GROUP BY"},
	{"SELECT COUNT(*) FROM cohort GROUP BY region", errs.Unsupported, "region is in GROUP BY but not selected"},
	{"SELECT cohort.region, COUNT(*) FROM cohort GROUP BY cohort.region", errs.Unsupported, "qualified column name cohort.region"},
	{"SELECT \"reg ion\", COUNT(*) FROM cohort GROUP BY \"reg ion\"", errs.Unsupported, "column name"},
	{"SELECT \"régión\", COUNT(*) FROM cohort GROUP BY \"régión\"", errs.Unsupported, "column name"},
	// Tables.
	{"SELECT COUNT(*) FROM audiences", errs.Unsupported, "table \"audiences\""},
	{"SELECT COUNT(*) FROM main.cohort", errs.Unsupported, "qualified table name"},
	{"SELECT COUNT(*) FROM db.main.cohort", errs.Unsupported, "qualified table name"},
	{"SELECT COUNT(*) FROM cohort c", errs.Unsupported, "table alias"},
	{"SELECT COUNT(*) FROM cohort AS c(x)", errs.Unsupported, "table alias"},
	{"SELECT COUNT(*)", errs.Unsupported, "without FROM"},
	// Syntax errors.
	{"SELECT COUNT(*) FROM", errs.Syntax, "position 20"},
	{"SELEC COUNT(*) FROM cohort", errs.Syntax, "position 0"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a", errs.Syntax, "unterminated"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'é' AND", errs.Syntax, "position 51"},
	{"", errs.Syntax, "empty"},
	{"   -- nothing", errs.Syntax, "empty"},
	{";", errs.Syntax, "empty"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a\x00'", errs.Syntax, "NUL"},
	{"SELECT COUNT(*) FROM cohort WHERE region = '\xff'", errs.Syntax, "UTF-8"},
}

func TestParseRefused(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()).SQL()
	for _, tc := range refusedCases {
		t.Run(tc.text, func(t *testing.T) {
			plan, err := Parse(ctx, db, tc.text)
			if err == nil {
				t.Fatalf("accepted: %s", plan.Canonical())
			}
			e, ok := asError(err)
			if !ok {
				t.Fatalf("not a refusal: %v", err)
			}
			if e.Kind != tc.code || !strings.Contains(e.Message, tc.in) {
				t.Fatalf("got %v (position %d), want code %s with %q", e, e.Position, tc.code, tc.in)
			}
			if e.Position < -1 || e.Position > len(tc.text) {
				t.Fatalf("position %d out of the text", e.Position)
			}
			if testing.Verbose() {
				t.Logf("%v", e)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()).SQL()
	cols := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ", ")
	}
	dims := func(n int) string { return cols(n, func(i int) string { return "dim_" + string(rune('a'+i)) }) }
	aggs := func(n int) string {
		return cols(n, func(i int) string { return "COUNT(*) AS c" + string(rune('a'+i)) })
	}
	in := func(n int) string { return cols(n, func(i int) string { return "1" }) }
	// nest is a predicate n levels deep: alternating OR and AND.
	nest := func(n int) string {
		s := "region = 'a'"
		for i := 1; i < n; i++ {
			op := " OR "
			if i%2 == 0 {
				op = " AND "
			}
			s = "(age = 1" + op + s + ")"
		}
		return s
	}
	cases := []struct {
		text string
		ok   bool
		in   string
	}{
		{"SELECT " + dims(20) + ", COUNT(*) FROM cohort GROUP BY " + dims(20), true, ""},
		{"SELECT " + dims(21) + ", COUNT(*) FROM cohort GROUP BY " + dims(21), false, "more than 20 dimensions"},
		{"SELECT " + aggs(20) + " FROM cohort", true, ""},
		{"SELECT " + aggs(21) + " FROM cohort", false, "more than 20 aggregates"},
		{"SELECT COUNT(*) FROM cohort WHERE age IN (" + in(1000) + ")", true, ""},
		{"SELECT COUNT(*) FROM cohort WHERE age IN (" + in(1001) + ")", false, "IN list of 1001 values"},
		{"SELECT COUNT(*) FROM cohort WHERE " + nest(20), true, ""},
		{"SELECT COUNT(*) FROM cohort WHERE " + nest(21), false, "nested deeper than 20"},
		{"SELECT COUNT(*) FROM cohort WHERE " + nest(500), false, "nested deeper than 20"},
		{"SELECT COUNT(*) FROM cohort WHERE " + strings.Repeat("NOT ", 2400) + "region = 'a'", false, "depth"},
		{"SELECT COUNT(*) FROM cohort WHERE " + strings.Repeat("NOT ", 2401) + "age BETWEEN 1 AND 2", false, ""},
		{"SELECT COUNT(*) FROM cohort WHERE " + strings.Repeat("(", 4000) + "region = 'a'" + strings.Repeat(")", 4000), true, ""},
		{"SELECT COUNT(*) FROM cohort WHERE region = '" + strings.Repeat("x", 9950) + "'", true, ""},
		{"SELECT COUNT(*) FROM cohort WHERE region = '" + strings.Repeat("x", 10000) + "'", false, "query text of 10045 bytes"},
	}
	for i, tc := range cases {
		plan, err := Parse(ctx, db, tc.text)
		if tc.ok {
			if err != nil {
				t.Errorf("case %d: %v", i, err)
			} else if err := plan.validate(); err != nil {
				t.Errorf("case %d: %v", i, err)
			}
			continue
		}
		e, ok := asError(err)
		if !ok || !strings.Contains(e.Message, tc.in) {
			t.Errorf("case %d: got %v, want a refusal with %q", i, err, tc.in)
			continue
		}
		if strings.Contains(tc.in, "than") && e.Kind != errs.Limit {
			t.Errorf("case %d: code %s", i, e.Kind)
		}
	}
}
