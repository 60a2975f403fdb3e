package query

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
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

// makeCohort stores rows as a cohort is stored: the person map
// (table_people), the brand's rows linked to it (table_a: one row per
// distinct _a_row, with region and spend) and the publisher's
// (table_b: one per _b_row, with exposed). The rows are the product a
// join of the two on the person gives, as tests write them by hand.
func makeCohort(t testing.TB, db *store.DB, table string, rows []cohortRow) {
	t.Helper()
	stage := table + "_stage"
	if _, err := db.SQL().Exec(`CREATE TABLE ` + stage + ` (uid BIGINT, _a_row BIGINT, _b_row BIGINT, a_region VARCHAR, a_spend DOUBLE, b_exposed BOOLEAN)`); err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(rows); start += 500 {
		q := `INSERT INTO ` + stage + ` VALUES `
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
	for _, q := range []string{
		`CREATE TABLE ` + table + `_people AS SELECT DISTINCT uid FROM ` + stage,
		`CREATE TABLE ` + table + `_a AS SELECT uid, region, spend FROM (SELECT DISTINCT uid, _a_row, a_region AS region, a_spend AS spend FROM ` + stage + `) ORDER BY random()`,
		`CREATE TABLE ` + table + `_b AS SELECT uid, exposed FROM (SELECT DISTINCT uid, _b_row, b_exposed AS exposed FROM ` + stage + `) ORDER BY random()`,
		`DROP TABLE ` + stage,
	} {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

var testSource = func(table string) Source {
	return Source{People: table + "_people", Columns: map[string]cohort.Column{
		"a_region":  {Side: "a", Table: "purchases", Link: table + "_a", Source: "region"},
		"a_spend":   {Side: "a", Table: "purchases", Link: table + "_a", Source: "spend"},
		"b_exposed": {Side: "b", Table: "exposures", Link: table + "_b", Source: "exposed"},
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

	// The sum's output has its own share of the epsilon (the user count,
	// needed only for the threshold, takes the rest): test at that share,
	// as the release states it.
	probe, err := dp.ReleaseGroups([]dp.Group{{Key: []any{}, Users: 1000, Sums: []float64{0}}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	testEps := probe.Split["sum_0"]
	if !(testEps > 0 && testEps < eps) {
		t.Fatalf("the sum's share %v of epsilon %v", testEps, eps)
	}
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

// TestCapAtRandom: the group cap keeps at most MaxGroups groups per
// user, chosen at random for each user, keeps every group of a user who
// has no more, and sums each user's own rows in the groups kept.
func TestCapAtRandom(t *testing.T) {
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
	makeCohort(t, db, "c4", rows)
	const q = `SELECT a_region, COUNT(*), SUM(a_spend) FROM cohort GROUP BY a_region`
	for _, k := range []int64{1, 2, 4} {
		o := BoundOptions{MaxGroups: k, Bounds: execRules.metrics}
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
			if want := float64(3000*k) / 4; k < 4 && math.Abs(float64(multi)-want) > 5*math.Sqrt(want) {
				t.Errorf("k=%d region %s: %d four-region users, want about %v", k, r, multi, want)
			}
		}
		if users != 3000*k+1000 {
			t.Errorf("k=%d: %d user-groups, want %d (each four-region user in k groups, the others in one)", k, users, 3000*k+1000)
		}
	}
	// With a WHERE, the cap keeps k of the groups left.
	gs := groupsOf(t, db, "c4", `SELECT a_region, COUNT(*) FROM cohort WHERE a_region IN ('n', 's') GROUP BY a_region`,
		BoundOptions{MaxGroups: 2, Bounds: execRules.metrics})
	if gs["n"].Users != 3000+250 || gs["s"].Users != 3000+250 {
		t.Errorf("filtered to two regions with k=2: %v, want every user in both", gs)
	}
}

// TestTablesJoinedPerPerson: a plan reads each table on its own, reduced
// per person before the join, so a person's rows in one table are never
// multiplied by their rows in another; only a WHERE term across two
// tables joins their rows, and then each source row counts once.
func TestTablesJoinedPerPerson(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Person 1: brand rows north 10 and south 20, three publisher rows
	// (two exposed). Person 2: brand row north 5, one publisher row, not
	// exposed. Person 3: brand row south 7, exposed.
	var rows []cohortRow
	for _, b := range []struct {
		row     int
		exposed bool
	}{{1, true}, {2, true}, {3, false}} {
		rows = append(rows, cohortRow{1, 1, b.row, "north", 10, b.exposed}, cohortRow{1, 2, b.row, "south", 20, b.exposed})
	}
	rows = append(rows, cohortRow{2, 3, 4, "north", 5, false}, cohortRow{3, 4, 5, "south", 7, true})
	makeCohort(t, db, "j", rows)
	bo := BoundOptions{MaxGroups: 4, Bounds: map[string][2]float64{"a_spend": {0, 100}}}
	conj := `SELECT b_exposed, COUNT(*), SUM(a_spend) FROM cohort WHERE a_region = 'north' GROUP BY b_exposed`
	p, err := Parse(context.Background(), db.SQL(), conj)
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := p.BoundedSQL(testSource("j"), bo)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "_row_") || !strings.Contains(text, "USING (uid)") {
		t.Fatalf("a WHERE on one table's columns must reduce each table per person, then join:\n%s", text)
	}
	g := groupsOf(t, db, "j", conj, bo)
	// Exposed: person 1 (north spend 10, once however many exposures).
	// Not exposed: persons 1 (10) and 2 (5).
	if g["true"].Users != 1 || g["true"].Sums[1] != 10 || g["false"].Users != 2 || g["false"].Sums[1] != 15 {
		t.Errorf("per table, then joined: %+v", g)
	}
	// An OR across the tables: a pair of rows passes when either side
	// does. Person 1: every brand row pairs with an exposure (10 + 20);
	// person 2: north (5); person 3: exposed (7).
	across := `SELECT COUNT(*), SUM(a_spend) FROM cohort WHERE a_region = 'north' OR b_exposed = true`
	if p, err = Parse(context.Background(), db.SQL(), across); err != nil {
		t.Fatal(err)
	}
	if text, _, err = p.BoundedSQL(testSource("j"), bo); err != nil || !strings.Contains(text, "_row_") {
		t.Fatalf("an OR across tables must keep source rows (%v):\n%s", err, text)
	}
	g = groupsOf(t, db, "j", across, bo)
	if g[""].Users != 3 || g[""].Sums[1] != 30+5+7 {
		t.Errorf("across tables: %d users, sum %v; want 3 and 42", g[""].Users, g[""].Sums[1])
	}
	// Rows counted per person, each person's count clamped: person 1
	// has three publisher rows, persons 2 and 3 one each.
	ro := BoundOptions{MaxGroups: 4, Bounds: bo.Bounds, MaxRows: map[string]float64{"b_exposed": 10, "a_region": 1}}
	if g = groupsOf(t, db, "j", `SELECT COUNT(b_exposed) FROM cohort`, ro); g[""].Sums[0] != 5 {
		t.Errorf("COUNT(b_exposed): %v, want 5 rows", g[""].Sums[0])
	}
	ro.MaxRows["b_exposed"] = 2
	if g = groupsOf(t, db, "j", `SELECT COUNT(b_exposed), SUM(a_spend) FROM cohort`, ro); g[""].Sums[0] != 2+1+1 || g[""].Sums[1] != 30+5+7 {
		t.Errorf("COUNT(b_exposed) clamped at 2 a person, with SUM: %v, want 4 and 42", g[""].Sums)
	}
	// Grouped by exposure, brand rows counted at most one a person.
	if g = groupsOf(t, db, "j", `SELECT b_exposed, COUNT(a_region) FROM cohort GROUP BY b_exposed`, ro); g["true"].Sums[0] != 2 || g["false"].Sums[0] != 2 {
		t.Errorf("COUNT(a_region) by exposure, one a person: %+v", g)
	}
	// A per-person step: people by their number of publisher rows
	// (3, 1 and 1), clamped at 2.
	const freq = `SELECT n, COUNT(*) AS people FROM (SELECT COUNT(b_exposed) AS n FROM cohort GROUP BY person) GROUP BY n`
	fp, err := Parse(context.Background(), db.SQL(), freq)
	if err != nil {
		t.Fatal(err)
	}
	if c := fp.Canonical(); c != `SELECT "n", COUNT(*) AS "people" FROM (SELECT COUNT("b_exposed") AS "n" FROM cohort GROUP BY person) GROUP BY "n"` {
		t.Errorf("canonical %s", c)
	}
	if again, err := Parse(context.Background(), db.SQL(), fp.Canonical()); err != nil || again.Hash() != fp.Hash() {
		t.Errorf("the canonical text parses to another plan: %v", err)
	}
	g = groupsOf(t, db, "j", freq, BoundOptions{MaxGroups: 1, MaxRows: map[string]float64{"b_exposed": 2}})
	if len(g) != 2 || g["1"].Users != 2 || g["2"].Users != 1 {
		t.Errorf("people by rows, clamped at 2: %+v", g)
	}
	// No column at all: the person map.
	if g = groupsOf(t, db, "j", `SELECT COUNT(*) FROM cohort`, bo); g[""].Users != 3 {
		t.Errorf("COUNT(*) of the person map: %d, want 3", g[""].Users)
	}
}

// TestDistributionsCentreOnTheTruth: MEDIAN, QUANTILE_CONT, VARIANCE and
// STDDEV are of people's values (each person's own sum), and at a high
// epsilon the released numbers sit on the truth computed from the rows.
func TestDistributionsCentreOnTheTruth(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// 2000 people, each with two brand rows whose sum is u/80 (distinct
	// values within the bounds [0, 25]).
	var rows []cohortRow
	var vals []float64
	for u := 1; u <= 2000; u++ {
		v := float64(u) / 80
		vals = append(vals, v)
		rows = append(rows, cohortRow{u, 2 * u, u, "north", v / 2, true}, cohortRow{u, 2*u + 1, u, "north", v / 2, true})
	}
	makeCohort(t, db, "dist", rows)
	const q = `SELECT MEDIAN(a_spend), QUANTILE_CONT(a_spend, 0.9) AS p90, VARIANCE(a_spend), STDDEV(a_spend) FROM cohort`
	p, err := Parse(context.Background(), db.SQL(), q)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Canonical(); c != `SELECT MEDIAN("a_spend"), QUANTILE_CONT("a_spend", 0.9) AS "p90", VARIANCE("a_spend"), STDDEV("a_spend") FROM cohort` {
		t.Errorf("canonical %s", c)
	}
	g := groupsOf(t, db, "dist", q, BoundOptions{MaxGroups: 1, Bounds: execRules.metrics})[""]
	if g.Users != 2000 || len(g.Spreads) != 4 || g.Spreads[0] == nil || g.Spreads[2] == nil {
		t.Fatalf("group %d users, spreads %v", g.Users, g.Spreads)
	}
	// The database placed each person's value in the quantile tree's
	// leaf the library would, and summed the variance's terms.
	leaves, mid, sum := map[int]int64{}, dp.Midpoint(0, 25), 0.0
	for _, v := range vals {
		leaves[dp.QuantileLeaf(min(v, 25), 0, 25)]++
		sum += min(v, 25) - mid
	}
	if !maps.Equal(g.Spreads[0].Leaves, leaves) || !maps.Equal(g.Spreads[1].Leaves, leaves) {
		t.Errorf("quantile leaves differ from the library's placement")
	}
	// Quantiles of several columns count their leaves one by one: the
	// same leaves.
	h := groupsOf(t, db, "dist", q, BoundOptions{MaxGroups: 1, Bounds: execRules.metrics, perAggregate: true})[""]
	if h.Users != 2000 || !maps.Equal(h.Spreads[0].Leaves, leaves) || !maps.Equal(h.Spreads[1].Leaves, leaves) {
		t.Errorf("quantile leaves counted per aggregate differ from the library's placement")
	}
	if s := g.Spreads[2]; s.N != 2000 || math.Abs(s.Sum-sum) > 1e-6 {
		t.Errorf("variance's spread: %d people, centred sum %v, want 2000, %v", s.N, s.Sum, sum)
	}
	o := dp.ReleaseOptions{Epsilon: 2000, MaxGroups: 1, Aggs: []dp.Agg{
		{Func: "quantile", Lower: 0, Upper: 25, Rank: 0.5}, {Func: "quantile", Lower: 0, Upper: 25, Rank: 0.9},
		{Func: "variance", Lower: 0, Upper: 25}, {Func: "stddev", Lower: 0, Upper: 25}}}
	rel, err := dp.ReleaseGroups([]dp.Group{g}, o)
	if err != nil || len(rel.Rows) != 1 {
		t.Fatal(rel, err)
	}
	// The values were clamped to the bounds [0, 25] before release.
	clamped := make([]float64, len(vals))
	for i, v := range vals {
		clamped[i] = min(v, 25)
	}
	slices.Sort(clamped)
	cm, cv := 0.0, 0.0
	for _, v := range clamped {
		cm += v
	}
	cm /= float64(len(clamped))
	for _, v := range clamped {
		cv += (v - cm) * (v - cm)
	}
	cv /= float64(len(clamped))
	want := []float64{clamped[len(clamped)/2], clamped[len(clamped)*9/10], cv, math.Sqrt(cv)}
	for i, w := range want {
		if got := rel.Rows[0].Values[i].Value; math.Abs(got-w) > 0.6 {
			t.Errorf("aggregate %d: released %v, truth %v", i, got, w)
		}
		if !rel.Rows[0].Values[i].NoInterval {
			t.Errorf("aggregate %d states an interval the library does not give", i)
		}
	}
}

// TestTimeWindow: date_diff('day', exposure, purchase) BETWEEN 0 AND 7
// pairs each person's exposures with their purchases inside the query
// only, and counts each purchase once however many exposures it follows.
func TestTimeWindow(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE w_people AS SELECT * FROM (VALUES (1), (2), (3)) t(uid)`,
		// Person 1: exposed to c1 on the 1st and the 3rd; purchases on the
		// 5th (10) and the 20th (20). Person 2: exposed to c2 on the 10th,
		// purchase on the 9th (before: no). Person 3: c1 on the 1st, a
		// purchase the same day (5).
		`CREATE TABLE w_b AS SELECT uid, exposure_date::DATE AS exposure_date, campaign FROM (VALUES
			(1, '2026-01-01', 'c1'), (1, '2026-01-03', 'c1'), (2, '2026-01-10', 'c2'), (3, '2026-01-01', 'c1')) t(uid, exposure_date, campaign)`,
		`CREATE TABLE w_a AS SELECT uid, purchase_date::DATE AS purchase_date, amount FROM (VALUES
			(1, '2026-01-05', 10.0), (1, '2026-01-20', 20.0), (2, '2026-01-09', 7.0), (3, '2026-01-01', 5.0)) t(uid, purchase_date, amount)`,
	} {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	src := Source{People: "w_people", Columns: map[string]cohort.Column{
		"b_campaign":      {Side: "b", Table: "exposures", Link: "w_b", Source: "campaign"},
		"b_exposure_date": {Side: "b", Table: "exposures", Link: "w_b", Source: "exposure_date"},
		"a_purchase_date": {Side: "a", Table: "purchases", Link: "w_a", Source: "purchase_date"},
		"a_amount":        {Side: "a", Table: "purchases", Link: "w_a", Source: "amount"},
	}}
	const q = `SELECT b_campaign, COUNT(*) AS converters, COUNT(a_purchase_date) AS purchases, SUM(a_amount) AS sales FROM cohort
		WHERE date_diff('day', b_exposure_date, a_purchase_date) BETWEEN 0 AND 7 GROUP BY b_campaign`
	p, err := Parse(ctx, db.SQL(), q)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check([]string{"b_campaign", "b_exposure_date", "a_purchase_date"}, map[string][2]float64{"a_amount": {0, 100}}); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckTypes(ctx, db.SQL(), src); err != nil {
		t.Fatal(err)
	}
	again, err := Parse(ctx, db.SQL(), p.Canonical())
	if err != nil || again.Canonical() != p.Canonical() {
		t.Fatalf("canonical %s: %v", p.Canonical(), err)
	}
	gs, err := p.Groups(ctx, db.SQL(), src, BoundOptions{MaxGroups: 2, Bounds: map[string][2]float64{"a_amount": {0, 100}}, MaxRows: map[string]float64{"a_purchase_date": 10}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]dp.Group{}
	for _, g := range gs {
		got[fmt.Sprint(g.Key...)] = g
	}
	// c1: persons 1 (the 5th's purchase, once, though it follows two
	// exposures; the 20th is too late) and 3 (same day); c2: none.
	if c1 := got["c1"]; c1.Users != 2 || c1.Sums[1] != 2 || c1.Sums[2] != 15 {
		t.Errorf("c1: %+v, want 2 converters, 2 purchases, sales 15", c1)
	}
	if _, ok := got["c2"]; ok {
		t.Errorf("c2 converted: %+v", got["c2"])
	}
	// The window's columns must be dates.
	bad, err := Parse(ctx, db.SQL(), `SELECT COUNT(*) FROM cohort WHERE date_diff('day', b_campaign, a_purchase_date) BETWEEN 0 AND 7`)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.CheckTypes(ctx, db.SQL(), src); err == nil || !strings.Contains(err.Error(), "not a date") {
		t.Errorf("a window over a text column: %v", err)
	}
}
