package query

import (
	"context"
	"testing"
)

// injectionCorpus are attempts to run something other than the subset.
// Each must be refused, or, if accepted, generate SQL made only of quoted
// allowed columns, placeholders and fixed keywords.
var injectionCorpus = []string{
	"SELECT COUNT(*) FROM cohort WHERE region = ''; DROP TABLE cohort; --'",
	"SELECT COUNT(*) FROM cohort WHERE region = 'x'; DROP TABLE cohort; --",
	"SELECT COUNT(*) FROM cohort WHERE region = '''; DROP TABLE cohort; --'",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' OR '1'='1'",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' OR 1=1",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' -- AND tier = 'b'",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' /* AND tier = 'b' */",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' /* unterminated",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a''; SELECT * FROM cohort; --'",
	"SELECT COUNT(*) FROM cohort; SELECT * FROM cohort",
	"SELECT COUNT(*) FROM cohort; ATTACH 'x.db'",
	"SELECT COUNT(*) FROM cohort; COPY cohort TO '/tmp/x.csv'",
	"SELECT COUNT(*) FROM cohort UNION SELECT COUNT(*) FROM audiences",
	"SELECT COUNT(*) FROM cohort UNION ALL SELECT uid FROM cohort",
	"SELECT COUNT(*) FROM cohort WHERE region IN (SELECT uid FROM cohort)",
	"SELECT COUNT(*) FROM cohort WHERE region = (SELECT MAX(uid) FROM cohort)",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a\\' OR 1=1 --'",
	"SELECT COUNT(*) FROM cohort WHERE region = E'a\\' OR 1=1 --'",
	"SELECT COUNT(*) FROM cohort WHERE region = $$a' OR 1=1 --$$",
	"SELECT COUNT(*) FROM cohort WHERE \"region\" = 'a' AND \"region\"\"; DROP TABLE x; --\" = 'b'",
	"SELECT COUNT(*) FROM cohort WHERE \"region\"\" OR 1=1 --\" = 'a'",
	"SELECT COUNT(*) FROM cohort WHERE region = ＇a＇",                    // fullwidth apostrophes
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' ；DROP TABLE cohort", // fullwidth semicolon
	"SELECT COUNT(*) FROM cohort WHERE regіon = 'a'",                    // Cyrillic і
	"SELECT COUNT(*) FROM cohort WHERE \"uіd\" = 'a'",                   // Cyrillic і in uid
	"SELECT COUNT(*) FROM cohort WHERE \"\u212Aind\" = 'a'",             // Kelvin sign
	"SELECT COUNT(*) FROM cohort WHERE region = 'a\u202E' --",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' \u00a0AND tier = 'b'",
	"SELECT COUNT(*) FROM cohort WHERE region = chr(39) || 'x'",
	"SELECT COUNT(*) FROM cohort WHERE region = getenv('HOME')",
	"SELECT COUNT(*) FROM cohort WHERE region IN (SELECT * FROM read_csv('/etc/passwd'))",
	"SELECT COUNT(*) FROM read_csv('/etc/passwd')",
	"SELECT COUNT(*) FROM 'https://example.com/x.parquet'",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' AND 1 = (SELECT COUNT(*) FROM duckdb_settings())",
	"SELECT SUM(spend) FROM cohort WHERE region = 'a' GROUP BY uid",
	"SELECT region, COUNT(*) FROM cohort GROUP BY region HAVING COUNT(*) = 1",
	"SELECT COUNT(*) FROM cohort WHERE uid = 'known-person'",
	"SELECT COUNT(*) FROM cohort WHERE _a_row = 1",
	"SELECT COUNT(*) FROM cohort AS uid",
	"SELECT COUNT(*) AS \"x\"\"; DROP TABLE cohort; --\" FROM cohort",
	"SELECT COUNT(*) AS x FROM cohort WHERE region = 'a'\x00; DROP TABLE cohort",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' \n;\n DROP TABLE cohort",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a'; PRAGMA enable_profiling",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a'; SET enable_external_access = true",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a'; INSTALL httpfs; LOAD httpfs",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a'; CALL dbgen(sf = 1)",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' /*! OR 1=1 */",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' OR region LIKE '%'",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' AND signup = DATE '2024-01-01'' OR 1=1 --'",
	"SELECT COUNT(*) FROM cohort WHERE region = 0x27",
	"SELECT COUNT(*) FROM cohort WHERE region = X'27'",
	"SELECT COUNT(*) FROM cohort WHERE region = B'1'",
	"select count(*) from cohort where region = 'a' union select 1",
	"SELECT COUNT(*) FROM cohort WHERE region IN ('a', 'b'); DELETE FROM cohort",
	"SELECT COUNT(*) FROM cohort WHERE region = U&'d\\0061t'",
	"SELECT COUNT(*) FROM cohort WHERE region = U&'\\0000'",
	"SELECT COUNT(*) FROM cohort WHERE U&\"\\0075id\" = 'a'",
	"SELECT COUNT(*) FROM cohort WHERE region = E'\\x00'",
	"SELECT COUNT(*) FROM cohort WHERE region = E'\\xff'",
	"SELECT COUNT(*) FROM cohort WHERE region = 'a' OR uid IS NOT NULL",
}

func TestInjectionCorpus(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir()).SQL()
	accepted := 0
	for _, text := range injectionCorpus {
		plan, err := Parse(ctx, db, text)
		if err != nil {
			if _, ok := asError(err); !ok {
				t.Errorf("%q: not a refusal: %v", text, err)
			}
			continue
		}
		accepted++
		if testing.Verbose() {
			where, args := plan.WhereSQL()
			t.Logf("accepted %q as %s (%s %q)", text, plan.Canonical(), where, args)
		}
		if err := plan.Check(testDimensions, testMetrics); err != nil {
			continue
		}
		assertSafe(t, text, plan)
	}
	if testing.Verbose() {
		t.Logf("%d of %d accepted (as plain predicates on literals)", accepted, len(injectionCorpus))
	}
	if len(injectionCorpus) < 30 {
		t.Fatal("corpus too small")
	}
}

// assertSafe checks an accepted, rule-checked plan: the generated WHERE is
// only quoted allowed columns, placeholders and fixed keywords; every
// column is allowed; the canonical text round-trips.
func assertSafe(t testing.TB, text string, plan *Plan) {
	t.Helper()
	where, args := plan.WhereSQL()
	if !strictWhere.MatchString(where) {
		t.Fatalf("%q: generated WHERE %q", text, where)
	}
	if n := countPlaceholders(where); n != len(args) {
		t.Fatalf("%q: %d placeholders, %d args", text, n, len(args))
	}
	for _, a := range args {
		switch a.(type) {
		case string, int64, float64, bool:
		default:
			t.Fatalf("%q: argument %T", text, a)
		}
	}
	allowed := map[string]bool{}
	for _, d := range testDimensions {
		allowed[d] = true
	}
	for _, d := range plan.Dimensions {
		if !allowed[d] {
			t.Fatalf("%q: dimension %q", text, d)
		}
	}
	for _, a := range plan.Aggregates {
		// COUNT(column) may count a dimension's rows; SUM and AVG only
		// metrics.
		if _, ok := testMetrics[a.Column]; a.Column != "" && !ok && !(a.Func == Rows && allowed[a.Column]) {
			t.Fatalf("%q: aggregate over %q", text, a.Column)
		}
	}
	for _, c := range plan.ReadColumns() {
		if _, ok := testMetrics[c]; !allowed[c] && !ok {
			t.Fatalf("%q: reads %q", text, c)
		}
	}
	if g := plan.GroupSQL(); g != "" && !strictWhere.MatchString(g) {
		t.Fatalf("%q: GROUP BY %q", text, g)
	}
}
