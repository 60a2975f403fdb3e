package query

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/store"
)

// cohortRow is one cohort row: a person, the source rows on each side,
// a brand-side region and spend, a publisher-side exposure flag.
type cohortRow struct {
	uid, aRow, bRow int
	region          string
	spend           float64
	exposed         bool
}

func makeCohort(t testing.TB, db *store.DB, table string, rows []cohortRow) {
	t.Helper()
	if _, err := db.SQL().Exec(`CREATE TABLE ` + table + ` (uid BIGINT, _a_row BIGINT, _b_row BIGINT, a_region VARCHAR, a_spend DOUBLE, b_exposed BOOLEAN)`); err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(rows); start += 500 {
		q := `INSERT INTO ` + table + ` VALUES `
		var args []any
		for i, r := range rows[start:min(start+500, len(rows))] {
			if i > 0 {
				q += ", "
			}
			q += "(?, ?, ?, ?, ?, ?)"
			args = append(args, r.uid, r.aRow, r.bRow, r.region, r.spend, r.exposed)
		}
		if _, err := db.SQL().Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
}

var testSource = func(table string) Source {
	return Source{Table: table, RowColumn: func(c string) string {
		switch c[:2] {
		case "a_":
			return "_a_row"
		case "b_":
			return "_b_row"
		}
		return ""
	}}
}

var execRules = struct {
	dims    []string
	metrics map[string][2]float64
}{[]string{"a_region", "b_exposed"}, map[string][2]float64{"a_spend": {0, 25}}}

func groupsOf(t testing.TB, db *store.DB, table, sql string, o BoundOptions) map[string]dp.Group {
	t.Helper()
	p, err := Parse(context.Background(), db.SQL(), sql)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(execRules.dims, execRules.metrics); err != nil {
		t.Fatal(err)
	}
	gs, err := p.Groups(context.Background(), db.SQL(), testSource(table), o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dp.Group{}
	for _, g := range gs {
		out[fmt.Sprint(g.Key...)] = g
	}
	return out
}

// TestBoundedSemantics checks the exact, noise-free statistics behind an
// answer against values computed by hand.
func TestBoundedSemantics(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := []cohortRow{
		// Person 1: two brand rows (10 + 20) joined with three publisher
		// rows: six cohort rows, yet one person spending 30.
		{1, 1, 1, "north", 10, true}, {1, 1, 2, "north", 10, true}, {1, 1, 3, "north", 10, true},
		{1, 2, 1, "north", 20, true}, {1, 2, 2, "north", 20, true}, {1, 2, 3, "north", 20, true},
		// Person 2: one row, spend 5.
		{2, 3, 4, "north", 5, false},
		// Person 3: in two regions (two brand rows), spend 8 and 9.
		{3, 4, 5, "south", 8, true}, {3, 5, 5, "east", 9, true},
		// Person 4: south, spend 100 (clamped to 25).
		{4, 6, 6, "south", 100, false},
	}
	makeCohort(t, db, "c1", rows)
	bo := BoundOptions{MaxGroups: 1, Bounds: execRules.metrics}

	// People are counted once, whatever their rows.
	g := groupsOf(t, db, "c1", `SELECT COUNT(*) FROM cohort`, bo)
	if g[""].Users != 4 {
		t.Errorf("COUNT(*) users %d, want 4", g[""].Users)
	}
	// Sums are per person over their own rows, not multiplied by the other
	// side's, then clamped: 25 (30 clamped) + 5 + (8 or 9) ... ungrouped, so
	// person 3 is one group: 17; person 4: 25.
	g = groupsOf(t, db, "c1", `SELECT SUM(a_spend) FROM cohort`, bo)
	if got := g[""].Sums[0]; got != 25+5+17+25 {
		t.Errorf("SUM %v, want %v", got, 25+5+17+25)
	}
	// WHERE on a dimension.
	g = groupsOf(t, db, "c1", `SELECT COUNT(*), SUM(a_spend) FROM cohort WHERE b_exposed = true`, bo)
	if g[""].Users != 2 || g[""].Sums[1] != 25+17 {
		t.Errorf("exposed: %d users, sum %v; want 2 and 42", g[""].Users, g[""].Sums[1])
	}
	// Group cap: person 3 is in south and east but adds to one only.
	for i := 0; i < 5; i++ {
		g = groupsOf(t, db, "c1", `SELECT a_region, COUNT(*), SUM(a_spend) FROM cohort GROUP BY a_region`, bo)
		total := int64(0)
		for _, x := range g {
			total += x.Users
		}
		if total != 4 {
			t.Fatalf("users over groups %d, want 4 (one group per person)", total)
		}
		if g["north"].Users != 2 || g["north"].Sums[1] != 30 {
			t.Errorf("north: %d users, sum %v; want 2, 30", g["north"].Users, g["north"].Sums[1])
		}
		south := g["south"]
		if south.Users == 2 && south.Sums[1] != 8+25 || south.Users == 1 && south.Sums[1] != 25 {
			t.Errorf("south: %+v", south)
		}
	}
	// With a cap of 2, person 3 is in both.
	g = groupsOf(t, db, "c1", `SELECT a_region, COUNT(*) FROM cohort GROUP BY a_region`, BoundOptions{MaxGroups: 2, Bounds: execRules.metrics})
	if g["south"].Users != 2 || g["east"].Users != 1 {
		t.Errorf("cap 2: %+v", g)
	}
	// AVG's statistics are the same sums; the mean comes from dp.
	g = groupsOf(t, db, "c1", `SELECT b_exposed, AVG(a_spend) AS m FROM cohort GROUP BY b_exposed`, bo)
	if g["false"].Users != 2 || g["false"].Sums[0] != 5+25 {
		t.Errorf("not exposed: %+v", g["false"])
	}
}

// TestStatisticalDP estimates, for neighbouring cohorts (one person
// added), delta' = sum over outputs of max(0, P_A(o) - e^eps P_B(o)) in
// both directions, from the server's own release path (bounded SQL in
// DuckDB, then dp.ReleaseGroups), and fails when it exceeds delta plus a
// sampling tolerance. Negative controls show the test has teeth: without
// noise, with twice the epsilon, or without bounding, it must fail.
func TestStatisticalDP(t *testing.T) {
	if testing.Short() {
		t.Skip("statistical test")
	}
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var base []cohortRow
	for u := 1; u <= 200; u++ {
		base = append(base, cohortRow{u, u, u, "north", float64(u % 20), u%2 == 0})
	}
	makeCohort(t, db, "ca", base)
	// The added person spends far above the bound, in several rows.
	makeCohort(t, db, "cb", append(append([]cohortRow{}, base...),
		cohortRow{999, 1001, 1001, "north", 400, true}, cohortRow{999, 1002, 1001, "north", 400, true}))

	const eps = 1.0
	const sql = `SELECT SUM(a_spend) FROM cohort`
	bounds := BoundOptions{MaxGroups: 1, Bounds: execRules.metrics}
	opts := dp.ReleaseOptions{Epsilon: eps, MaxGroups: 1, Aggs: []dp.Agg{{Func: "sum", Lower: 0, Upper: 25}}}

	// The sum uses half the epsilon (the user count takes the other
	// half), so the output's own epsilon is eps/2: test at that.
	testEps := eps / 2
	estimate := func(bo BoundOptions, release func(dp.Group) float64) float64 {
		ga := groupsOf(t, db, "ca", sql, bo)[""]
		gb := groupsOf(t, db, "cb", sql, bo)[""]
		const draws = 200000
		const bin = 25.0 / 2 // bins of half the sensitivity: post-processing
		ha, hb := map[int]float64{}, map[int]float64{}
		for i := 0; i < draws; i++ {
			ha[int(math.Floor(release(ga)/bin))]++
			hb[int(math.Floor(release(gb)/bin))]++
		}
		d := 0.0
		for _, pair := range [][2]map[int]float64{{ha, hb}, {hb, ha}} {
			s := 0.0
			for o, ca := range pair[0] {
				s += math.Max(0, ca/draws-math.Exp(testEps)*pair[1][o]/draws)
			}
			d = math.Max(d, s)
		}
		return d
	}
	noisy := func(o dp.ReleaseOptions) func(dp.Group) float64 {
		return func(g dp.Group) float64 {
			rel, err := dp.ReleaseGroups([]dp.Group{g}, o)
			if err != nil {
				t.Fatal(err)
			}
			return rel.Rows[0].Values[0].Value
		}
	}
	// Tolerance: with 200k draws per side, sampling noise in the sum of
	// positive parts stays well below 0.02.
	const tol = 0.02
	if d := estimate(bounds, noisy(opts)); d > tol {
		t.Errorf("delta' = %.4f > %v: the release is not %v-DP", d, tol, testEps)
	}
	doubled := opts
	doubled.Epsilon = 2 * eps // the sum's share becomes 2 x testEps
	if d := estimate(bounds, noisy(doubled)); d <= tol {
		t.Errorf("negative control (epsilon doubled): delta' = %.4f, the test cannot tell", d)
	}
	if d := estimate(bounds, func(g dp.Group) float64 { return g.Sums[0] }); d <= tol {
		t.Errorf("negative control (no noise): delta' = %.4f, the test cannot tell", d)
	}
	unbounded := bounds
	unbounded.unbounded = true
	if d := estimate(unbounded, noisy(opts)); d <= tol {
		t.Errorf("negative control (no bounding): delta' = %.4f, the test cannot tell", d)
	}
}

// finish computes a test cohort's facts as a build does: the rows of
// stage become table, with rank columns for the dimensions.
func finish(t testing.TB, db *store.DB, stage, table string) cohort.Facts {
	t.Helper()
	f, err := cohort.FinishTable(context.Background(), db.SQL(), stage, table,
		[]string{"a_region", "a_spend", "b_exposed"}, []string{"a_region", "b_exposed"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFactsSkipOnlyNoOps: the facts are right, and the SQL that skips
// de-duplication and the group cap gives the same statistics as the full
// SQL on a cohort where those steps change nothing.
func TestFactsSkipOnlyNoOps(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []cohortRow
	for u := 1; u <= 300; u++ {
		rows = append(rows, cohortRow{u, u, u, fmt.Sprint("r", u%3), float64(u % 40), u%2 == 0})
	}
	makeCohort(t, db, "s2", rows)
	f := finish(t, db, "s2", "c2")
	if !f.UniqueRows["_a_row"] || !f.UniqueRows["_b_row"] || !f.PerUser["a_region"] || !f.PerUser["b_exposed"] || len(f.GroupRank) != 0 {
		t.Fatalf("facts %+v, want all true and no rank", f)
	}
	const q = `SELECT a_region, b_exposed, COUNT(*), SUM(a_spend), AVG(a_spend) FROM cohort GROUP BY a_region, b_exposed`
	full := groupsOf(t, db, "c2", q, BoundOptions{MaxGroups: 1, Bounds: execRules.metrics})
	fast := groupsOf(t, db, "c2", q, BoundOptions{MaxGroups: 1, Bounds: execRules.metrics, Facts: f})
	if fmt.Sprint(full) != fmt.Sprint(fast) {
		t.Errorf("fast path differs:\n%v\n%v", fast, full)
	}
	// Repeated source rows, each person in one region: the fast path
	// (de-duplication, no group cap) gives the full SQL's statistics,
	// with and without a WHERE.
	rows = rows[:0]
	for u := 1; u <= 300; u++ {
		for k := 0; k < 1+u%3; k++ { // a's row u joined to 1 to 3 b rows
			rows = append(rows, cohortRow{u, u, 1000*u + k, fmt.Sprint("r", u%4), float64(u % 40), u%5 == 0})
		}
	}
	makeCohort(t, db, "s4", rows)
	f = finish(t, db, "s4", "c4")
	if f.UniqueRows["_a_row"] || !f.PerUser["a_region"] || !f.PerUser["b_exposed"] {
		t.Fatalf("facts %+v, want a rows repeated, region and exposure per user", f)
	}
	for _, q := range []string{q, `SELECT a_region, COUNT(*), SUM(a_spend) FROM cohort WHERE b_exposed = true GROUP BY a_region`} {
		full := groupsOf(t, db, "c4", q, BoundOptions{MaxGroups: 1, Bounds: execRules.metrics})
		fast := groupsOf(t, db, "c4", q, BoundOptions{MaxGroups: 1, Bounds: execRules.metrics, Facts: f})
		if fmt.Sprint(full) != fmt.Sprint(fast) {
			t.Errorf("%s: fast path differs:\n%v\n%v", q, fast, full)
		}
	}
	// The first cohort has repeated rows and a person in two regions.
	makeCohort(t, db, "s3", []cohortRow{{1, 1, 1, "n", 1, true}, {1, 1, 2, "n", 1, true}, {2, 2, 3, "n", 1, true}, {2, 3, 3, "s", 1, true}})
	f = finish(t, db, "s3", "c3")
	if f.UniqueRows["_a_row"] || f.UniqueRows["_b_row"] || f.PerUser["a_region"] || !f.PerUser["b_exposed"] ||
		f.GroupRank["a_region"] == "" || f.GroupRank["b_exposed"] != "" {
		t.Errorf("facts %+v: want a and b rows repeated, region varying and ranked, exposure per user", f)
	}
	// The stage is gone and the cohort has every row.
	var n int
	if err := db.SQL().QueryRow(`SELECT count(*) FROM c3`).Scan(&n); err != nil || n != 4 {
		t.Errorf("c3 has %d rows (%v), want 4", n, err)
	}
	if _, err := db.SQL().Exec(`SELECT * FROM s3`); err == nil {
		t.Error("the stage table is still there")
	}
}

// TestRankCap: the group cap by stored ranks keeps at most MaxGroups
// groups per user, chosen at random for each user, keeps every group of a
// user who has no more, and gives the same statistics as the sort when
// the cap does not bind.
func TestRankCap(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// 3000 users in all four regions, one row each of spend 1, and 1000
	// users in one region with two rows.
	var rows []cohortRow
	regions := []string{"n", "s", "e", "w"}
	row := 0
	for u := 1; u <= 3000; u++ {
		for _, r := range regions {
			row++
			rows = append(rows, cohortRow{u, row, u, r, 1, true})
		}
	}
	for u := 3001; u <= 4000; u++ {
		for k := 0; k < 2; k++ {
			row++
			rows = append(rows, cohortRow{u, row, u, regions[u%4], 3, true})
		}
	}
	makeCohort(t, db, "s4", rows)
	f := finish(t, db, "s4", "c4")
	if f.GroupRank["a_region"] == "" || !f.UniqueRows["_a_row"] {
		t.Fatalf("facts %+v: want a_region ranked, a rows unique", f)
	}
	const q = `SELECT a_region, COUNT(*), SUM(a_spend) FROM cohort GROUP BY a_region`
	p, err := Parse(context.Background(), db.SQL(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{1, 2, 4} {
		o := BoundOptions{MaxGroups: k, Bounds: execRules.metrics, Facts: f}
		text, _, err := p.BoundedSQL(testSource("c4"), o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, `"_rank_a_region" < `) || strings.Contains(text, "QUALIFY") {
			t.Fatalf("k=%d: the plan does not cap by rank:\n%s", k, text)
		}
		gs := groupsOf(t, db, "c4", q, o)
		var users int64
		for _, r := range regions {
			g := gs[r]
			users += g.Users
			// The four-region users each give spend 1 to a group they are
			// kept in; the one-region users 6 to theirs.
			multi := g.Users - 250
			if g.Sums[1] != float64(multi)+6*250 {
				t.Errorf("k=%d region %s: %d users, sum %v: not each user's own spend", k, r, g.Users, g.Sums[1])
			}
			// At random: each region gets about k/4 of the 3000.
			if want := float64(3000*k) / 4; math.Abs(float64(multi)-want) > 5*math.Sqrt(want) {
				t.Errorf("k=%d region %s: %d four-region users, want about %v", k, r, multi, want)
			}
		}
		if users != 3000*k+1000 {
			t.Errorf("k=%d: %d user-groups, want %d (each four-region user in k groups, the others in one)", k, users, 3000*k+1000)
		}
	}
	// Grouped also by a column with one value per user, the groups are
	// still the regions: the rank caps them.
	const q2 = `SELECT a_region, b_exposed, COUNT(*) FROM cohort GROUP BY a_region, b_exposed`
	p2, err := Parse(context.Background(), db.SQL(), q2)
	if err != nil {
		t.Fatal(err)
	}
	o1 := BoundOptions{MaxGroups: 1, Bounds: execRules.metrics, Facts: f}
	if text, _, err := p2.BoundedSQL(testSource("c4"), o1); err != nil || !strings.Contains(text, `"_rank_a_region" < 1`) {
		t.Fatalf("grouped by region and a per-user column, the plan does not cap by rank (%v):\n%s", err, text)
	}
	var users int64
	for _, g := range groupsOf(t, db, "c4", q2, o1) {
		users += g.Users
	}
	if users != 4000 {
		t.Errorf("k=1 by region and exposure: %d user-groups, want 4000", users)
	}
	// With a WHERE the plan sorts, and keeps k of the groups left.
	const qw = `SELECT a_region, COUNT(*) FROM cohort WHERE a_region IN ('n', 's') GROUP BY a_region`
	pw, err := Parse(context.Background(), db.SQL(), qw)
	if err != nil {
		t.Fatal(err)
	}
	o := BoundOptions{MaxGroups: 2, Bounds: execRules.metrics, Facts: f}
	text, _, err := pw.BoundedSQL(testSource("c4"), o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "_rank_") || !strings.Contains(text, "QUALIFY") {
		t.Fatalf("a filtered query must sort, not use ranks:\n%s", text)
	}
	gs := groupsOf(t, db, "c4", qw, o)
	if gs["n"].Users != 3000+250 || gs["s"].Users != 3000+250 {
		t.Errorf("filtered to two regions with k=2: %v, want every user in both", gs)
	}
	// Where the cap does not bind, rank and sort agree exactly.
	o = BoundOptions{MaxGroups: 4, Bounds: execRules.metrics, Facts: f}
	sorted := o
	sorted.Facts.GroupRank = nil
	if a, b := fmt.Sprint(groupsOf(t, db, "c4", q, o)), fmt.Sprint(groupsOf(t, db, "c4", q, sorted)); a != b {
		t.Errorf("rank and sort differ with k=4:\n%s\n%s", a, b)
	}
}
