package query

import (
	"context"
	"strings"
	"testing"
)

var refusedCases = []struct {
	text string
	code string
	// in is a fragment the message must contain.
	in string
}{
	// Joins, subqueries, CTEs, set operations.
	{"SELECT COUNT(*) FROM cohort JOIN audiences ON cohort.uid = audiences.uid", CodeUnsupported, "JOIN at position 28"},
	{"SELECT COUNT(*) FROM cohort LEFT JOIN audiences USING (uid)", CodeUnsupported, "JOIN"},
	{"SELECT COUNT(*) FROM cohort, audiences", CodeUnsupported, "JOIN (comma"},
	{"SELECT COUNT(*) FROM cohort CROSS JOIN audiences", CodeUnsupported, "JOIN"},
	{"SELECT COUNT(*) FROM cohort POSITIONAL JOIN audiences", CodeUnsupported, "JOIN"},
	{"SELECT COUNT(*) FROM (SELECT * FROM cohort)", CodeUnsupported, "subquery in FROM"},
	{"SELECT COUNT(*) FROM cohort WHERE region IN (SELECT region FROM cohort)", CodeUnsupported, "subquery"},
	{"SELECT COUNT(*) FROM cohort WHERE region = (SELECT 'a')", CodeUnsupported, "subquery"},
	{"SELECT COUNT(*) FROM cohort WHERE EXISTS (SELECT 1)", CodeUnsupported, "subquery"},
	{"SELECT (SELECT 1), COUNT(*) FROM cohort", CodeUnsupported, "subquery in SELECT"},
	{"SELECT SUM((SELECT 1)) FROM cohort", CodeUnsupported, "subquery inside SUM"},
	{"WITH c AS (SELECT * FROM cohort) SELECT COUNT(*) FROM c", CodeUnsupported, "WITH"},
	{"WITH c AS (SELECT 1) SELECT COUNT(*) FROM cohort", CodeUnsupported, "WITH"},
	{"WITH RECURSIVE c AS (SELECT 1 UNION ALL SELECT 1 FROM c) SELECT COUNT(*) FROM cohort", CodeUnsupported, "WITH"},
	{"SELECT COUNT(*) FROM cohort UNION SELECT COUNT(*) FROM cohort", CodeUnsupported, "UNION"},
	{"SELECT COUNT(*) FROM cohort UNION ALL SELECT 1", CodeUnsupported, "UNION"},
	{"SELECT COUNT(*) FROM cohort EXCEPT SELECT 1", CodeUnsupported, "EXCEPT"},
	{"SELECT COUNT(*) FROM cohort INTERSECT SELECT 1", CodeUnsupported, "INTERSECT"},
	// Windows and table functions.
	{"SELECT COUNT(*) OVER () FROM cohort", CodeUnsupported, "window function"},
	{"SELECT region, SUM(spend) OVER (PARTITION BY region) FROM cohort GROUP BY region", CodeUnsupported, "window function"},
	{"SELECT COUNT(*) FROM cohort QUALIFY row_number() OVER () = 1", CodeUnsupported, "QUALIFY"},
	{"SELECT COUNT(*) FROM read_csv('x')", CodeUnsupported, "table function read_csv()"},
	{"SELECT COUNT(*) FROM read_csv_auto('/etc/passwd')", CodeUnsupported, "table function"},
	{"SELECT COUNT(*) FROM read_parquet('s3://bucket/x.parquet')", CodeUnsupported, "table function read_parquet()"},
	{"SELECT COUNT(*) FROM 'data.csv'", CodeUnsupported, "table"},
	{"SELECT COUNT(*) FROM range(10)", CodeUnsupported, "table function range()"},
	// Other statements.
	{"COPY cohort TO 'out.csv'", CodeUnsupported, "COPY statement"},
	{"COPY (SELECT * FROM cohort) TO 'out.csv'", CodeUnsupported, "COPY"},
	{"ATTACH 'other.db' AS o", CodeUnsupported, "ATTACH statement"},
	{"DETACH o", CodeUnsupported, "DETACH"},
	{"PRAGMA database_list", CodeUnsupported, "PRAGMA statement"},
	{"SET threads = 1", CodeUnsupported, "SET statement"},
	{"INSERT INTO cohort VALUES (1)", CodeUnsupported, "INSERT statement"},
	{"UPDATE cohort SET region = 'a'", CodeUnsupported, "UPDATE"},
	{"DELETE FROM cohort", CodeUnsupported, "DELETE"},
	{"DROP TABLE cohort", CodeUnsupported, "DROP statement"},
	{"CREATE TABLE x AS SELECT * FROM cohort", CodeUnsupported, "CREATE"},
	{"INSTALL httpfs", CodeUnsupported, "INSTALL"},
	{"LOAD httpfs", CodeUnsupported, "LOAD"},
	{"CALL pragma_version()", CodeUnsupported, "CALL"},
	{"EXPLAIN SELECT COUNT(*) FROM cohort", CodeUnsupported, "EXPLAIN"},
	{"EXPORT DATABASE 'x'", CodeUnsupported, "EXPORT"},
	{"CHECKPOINT", CodeUnsupported, "CHECKPOINT"},
	{"VACUUM", CodeUnsupported, "VACUUM"},
	{"BEGIN", CodeUnsupported, "BEGIN"},
	{"PIVOT cohort ON region USING COUNT(*)", CodeUnsupported, "PIVOT"},
	{"DESCRIBE cohort", CodeUnsupported, ""},
	{"SUMMARIZE cohort", CodeUnsupported, ""},
	{"VALUES (1)", CodeUnsupported, "VALUES"},
	{"SELECT COUNT(*) FROM cohort; DROP TABLE x", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort; SELECT COUNT(*) FROM cohort", CodeUnsupported, "multiple statements"},
	// Grouping constructs.
	{"SELECT region, COUNT(*) FROM cohort GROUP BY ALL", CodeUnsupported, "GROUP BY ALL"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY ROLLUP (region)", CodeUnsupported, "ROLLUP"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY CUBE (region)", CodeUnsupported, "CUBE"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY GROUPING SETS ((region), ())", CodeUnsupported, "GROUPING SETS"},
	{"SELECT COUNT(*) FROM cohort GROUP BY ()", CodeUnsupported, "GROUP BY ()"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY 1", CodeUnsupported, "GROUP BY position"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY lower(region)", CodeUnsupported, "function lower() in GROUP BY"},
	{"SELECT region, COUNT(*) FROM cohort GROUP BY region HAVING COUNT(*) > 10", CodeUnsupported, "HAVING"},
	// Modifiers.
	{"SELECT region, COUNT(*) FROM cohort GROUP BY region ORDER BY region", CodeUnsupported, "ORDER BY"},
	{"SELECT COUNT(*) FROM cohort LIMIT 1", CodeUnsupported, "LIMIT"},
	{"SELECT COUNT(*) FROM cohort LIMIT 10%", CodeUnsupported, "LIMIT"},
	{"SELECT COUNT(*) FROM cohort OFFSET 1", CodeUnsupported, "OFFSET"},
	{"SELECT DISTINCT region, COUNT(*) FROM cohort GROUP BY region", CodeUnsupported, "DISTINCT"},
	{"SELECT DISTINCT ON (region) region, COUNT(*) FROM cohort GROUP BY region", CodeUnsupported, "DISTINCT"},
	{"SELECT COUNT(*) FROM cohort USING SAMPLE 10", CodeUnsupported, "SAMPLE"},
	{"SELECT COUNT(*) FROM cohort TABLESAMPLE 10%", CodeUnsupported, "TABLESAMPLE"},
	// Aggregates.
	{"SELECT COUNT(DISTINCT region) FROM cohort", CodeUnsupported, "COUNT(DISTINCT"},
	{"SELECT SUM(DISTINCT spend) FROM cohort", CodeUnsupported, "SUM(DISTINCT"},
	{"SELECT COUNT(region) FROM cohort", CodeUnsupported, "COUNT(column)"},
	{"SELECT MIN(spend) FROM cohort", CodeUnsupported, "function min()"},
	{"SELECT MAX(spend) FROM cohort", CodeUnsupported, "function max()"},
	{"SELECT median(spend) FROM cohort", CodeUnsupported, "function median()"},
	{"SELECT list(region) FROM cohort", CodeUnsupported, "function list()"},
	{"SELECT COUNT(*) FILTER (WHERE region = 'a') FROM cohort", CodeUnsupported, "FILTER"},
	{"SELECT SUM(spend ORDER BY spend) FROM cohort", CodeUnsupported, "ORDER BY inside SUM"},
	{"SELECT SUM(spend, visits) FROM cohort", CodeUnsupported, "2 arguments"},
	{"SELECT SUM(*) FROM cohort", CodeUnsupported, "0 arguments"},
	{"SELECT main.sum(spend) FROM cohort", CodeUnsupported, "qualified function"},
	{"SELECT region FROM cohort GROUP BY region", CodeUnsupported, "no aggregate"},
	{"SELECT COUNT(*) AS \"Bad Name\" FROM cohort", CodeUnsupported, "alias"},
	{"SELECT COUNT(*) AS _x FROM cohort", CodeUnsupported, "alias"},
	{"SELECT region AS r, COUNT(*) FROM cohort GROUP BY region", CodeUnsupported, "alias on the dimension"},
	{"SELECT SUM(spend), SUM(spend) FROM cohort", CodeUnsupported, "duplicate output column sum_spend"},
	{"SELECT region, COUNT(*) AS region FROM cohort GROUP BY region", CodeUnsupported, "duplicate output column"},
	{"SELECT region, region, COUNT(*) FROM cohort GROUP BY region", CodeUnsupported, "duplicate output column"},
	// Hidden columns.
	{"SELECT uid, COUNT(*) FROM cohort GROUP BY uid", CodeHidden, "column uid is hidden at position 7"},
	{"SELECT COUNT(*) FROM cohort WHERE uid = 'x'", CodeHidden, "uid"},
	{"SELECT COUNT(*) FROM cohort WHERE \"UID\" IS NULL", CodeHidden, "uid"},
	{"SELECT SUM(uid) FROM cohort", CodeHidden, "uid"},
	{"SELECT _a_row, COUNT(*) FROM cohort GROUP BY _a_row", CodeHidden, "_a_row"},
	{"SELECT SUM(_b_row) FROM cohort", CodeHidden, "_b_row"},
	{"SELECT COUNT(*) FROM cohort WHERE rowid < 10", CodeHidden, "rowid"},
	// Functions, arithmetic, casts.
	{"SELECT lower(region), COUNT(*) FROM cohort GROUP BY lower(region)", CodeUnsupported, "function lower()"},
	{"SELECT COUNT(*) FROM cohort WHERE lower(region) = 'a'", CodeUnsupported, "function lower()"},
	{"SELECT COUNT(*) FROM cohort WHERE signup < now()", CodeUnsupported, "function now()"},
	{"SELECT COUNT(*) FROM cohort WHERE age < random()", CodeUnsupported, "function random()"},
	{"SELECT random(), COUNT(*) FROM cohort", CodeUnsupported, "function random()"},
	{"SELECT spend * 2, COUNT(*) FROM cohort GROUP BY spend * 2", CodeUnsupported, "operator *"},
	{"SELECT SUM(spend + 1) FROM cohort", CodeUnsupported, "operator + inside SUM"},
	{"SELECT SUM(spend) * 2 FROM cohort", CodeUnsupported, "operator *"},
	{"SELECT COUNT(*) + 1 FROM cohort", CodeUnsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE age = 1 + 1", CodeUnsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE age = +1", CodeUnsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE age + 1 = 2", CodeUnsupported, "operator +"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a' || 'b'", CodeUnsupported, "operator ||"},
	{"SELECT COUNT(*) FROM cohort WHERE region LIKE 'a%'", CodeUnsupported, "LIKE"},
	{"SELECT COUNT(*) FROM cohort WHERE region ILIKE 'a%'", CodeUnsupported, "ILIKE"},
	{"SELECT COUNT(*) FROM cohort WHERE region SIMILAR TO 'a'", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE CAST(age AS VARCHAR) = '1'", CodeUnsupported, "cast to VARCHAR"},
	{"SELECT COUNT(*) FROM cohort WHERE age::VARCHAR = '1'", CodeUnsupported, "cast to VARCHAR"},
	{"SELECT COUNT(*) FROM cohort WHERE age = '1'::INTEGER", CodeUnsupported, "cast to INTEGER"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = '2024-01-01'::DATE", CodeUnsupported, "cast to DATE"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = CAST('2024-01-01' AS DATE)", CodeUnsupported, "cast to DATE"},
	{"SELECT COUNT(*) FROM cohort WHERE age = TRY_CAST('1' AS INTEGER)", CodeUnsupported, "cast"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = TIMESTAMP '2024-01-01 00:00:00'", CodeUnsupported, "TIMESTAMP literal"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = DATE '2024-02-30'", CodeUnsupported, "date literal"},
	{"SELECT COUNT(*) FROM cohort WHERE signup = DATE 'yesterday'", CodeUnsupported, "date literal"},
	{"SELECT COUNT(*) FROM cohort WHERE signup > DATE '2024-01-01' - INTERVAL 1 DAY", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE signup = INTERVAL 1 DAY", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a' COLLATE nocase", CodeUnsupported, "COLLATE"},
	{"SELECT COUNT(*) FROM cohort WHERE region = CASE WHEN age > 1 THEN 'a' END", CodeUnsupported, "CASE"},
	{"SELECT COUNT(*) FROM cohort WHERE age = ?", CodeUnsupported, "parameter"},
	{"SELECT COUNT(*) FROM cohort WHERE age = $1", CodeUnsupported, "parameter"},
	{"SELECT COUNT(*) FROM cohort WHERE age = $x", CodeUnsupported, "parameter"},
	{"SELECT COUNT(*) FROM cohort WHERE region = getenv('HOME')", CodeUnsupported, "function getenv()"},
	{"SELECT COUNT(*) FROM cohort WHERE region IN (lower('A'))", CodeUnsupported, "function lower()"},
	{"SELECT COUNT(*) FROM cohort WHERE age = [1, 2]", CodeUnsupported, "function list_value()"},
	{"SELECT COUNT(*) FROM cohort WHERE age = {'a': 1}", CodeUnsupported, "struct_pack"},
	{"SELECT COUNT(*) FROM cohort WHERE age = 99999999999999999999", CodeUnsupported, "out of range"},
	{"SELECT COUNT(*) FROM cohort WHERE age = 1e400", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE age = 1234567890.1234567890123", CodeUnsupported, "decimal literal"},
	// Predicates outside the subset.
	{"SELECT COUNT(*) FROM cohort WHERE region = NULL", CodeUnsupported, "NULL literal"},
	{"SELECT COUNT(*) FROM cohort WHERE region IN ('a', NULL)", CodeUnsupported, "NULL literal"},
	{"SELECT COUNT(*) FROM cohort WHERE region IS DISTINCT FROM 'a'", CodeUnsupported, "IS DISTINCT FROM"},
	{"SELECT COUNT(*) FROM cohort WHERE exposed IS TRUE", CodeUnsupported, "IS TRUE"},
	{"SELECT COUNT(*) FROM cohort WHERE exposed", CodeUnsupported, "used as a condition"},
	{"SELECT COUNT(*) FROM cohort WHERE TRUE", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE 1 = 1", CodeUnsupported, "constant"},
	{"SELECT COUNT(*) FROM cohort WHERE region = tier", CodeUnsupported, "two columns"},
	{"SELECT COUNT(*) FROM cohort WHERE 'a' IN (region)", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE age BETWEEN SYMMETRIC 1 AND 2", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE age BETWEEN 1 AND tier", CodeUnsupported, ""},
	{"SELECT COUNT(*) FROM cohort WHERE COUNT(*) > 1", CodeUnsupported, ""},
	// Select list.
	{"SELECT * FROM cohort", CodeUnsupported, "SELECT *"},
	{"SELECT *, COUNT(*) FROM cohort", CodeUnsupported, "SELECT *"},
	{"SELECT COLUMNS('.*'), COUNT(*) FROM cohort", CodeUnsupported, "SELECT *"},
	{"SELECT 1, COUNT(*) FROM cohort", CodeUnsupported, "constant in SELECT"},
	{"SELECT region, COUNT(*) FROM cohort", CodeUnsupported, "region is selected but not in GROUP BY"},
	{"SELECT region, tier, COUNT(*) FROM cohort GROUP BY region", CodeUnsupported, "tier is selected but not in GROUP BY"},
	{"SELECT COUNT(*) FROM cohort GROUP BY region", CodeUnsupported, "region is in GROUP BY but not selected"},
	{"SELECT cohort.region, COUNT(*) FROM cohort GROUP BY cohort.region", CodeUnsupported, "qualified column name cohort.region"},
	{"SELECT \"reg ion\", COUNT(*) FROM cohort GROUP BY \"reg ion\"", CodeUnsupported, "column name"},
	{"SELECT \"régión\", COUNT(*) FROM cohort GROUP BY \"régión\"", CodeUnsupported, "column name"},
	// Tables.
	{"SELECT COUNT(*) FROM audiences", CodeUnsupported, "table \"audiences\""},
	{"SELECT COUNT(*) FROM main.cohort", CodeUnsupported, "qualified table name"},
	{"SELECT COUNT(*) FROM db.main.cohort", CodeUnsupported, "qualified table name"},
	{"SELECT COUNT(*) FROM cohort c", CodeUnsupported, "table alias"},
	{"SELECT COUNT(*) FROM cohort AS c(x)", CodeUnsupported, "table alias"},
	{"SELECT COUNT(*)", CodeUnsupported, "without FROM"},
	// Syntax errors.
	{"SELECT COUNT(*) FROM", CodeSyntax, "position 20"},
	{"SELEC COUNT(*) FROM cohort", CodeSyntax, "position 0"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a", CodeSyntax, "unterminated"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'é' AND", CodeSyntax, "position 51"},
	{"", CodeSyntax, "empty"},
	{"   -- nothing", CodeSyntax, "empty"},
	{";", CodeSyntax, "empty"},
	{"SELECT COUNT(*) FROM cohort WHERE region = 'a\x00'", CodeSyntax, "NUL"},
	{"SELECT COUNT(*) FROM cohort WHERE region = '\xff'", CodeSyntax, "UTF-8"},
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
			if e.Code != tc.code || !strings.Contains(e.Message, tc.in) {
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
		if strings.Contains(tc.in, "than") && e.Code != CodeLimit {
			t.Errorf("case %d: code %s", i, e.Code)
		}
	}
}
