package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/query"
	"github.com/cleanroom/cleanroom/wire"
)

// QueryResult is what `cleanroom bench query` prints.
type QueryResult struct {
	// Shape is the cohort's: "simple" (two rows per person, one region
	// each) or "general" (1 to 20 rows per person, skewed, over several
	// regions).
	Shape string `json:"shape"`
	Rows  int    `json:"rows"`
	Users int    `json:"users"`
	// MaxGroups is the rule max_groups_contributed of the query.
	MaxGroups int `json:"max_groups_contributed"`
	// DPMsP50 is the median time of the private query in the engine:
	// bounded SQL in DuckDB plus noise and partition selection.
	DPMsP50 float64 `json:"dp_ms_p50"`
	// FirstMs is the first private query's time, right after the build.
	FirstMs float64 `json:"first_ms"`
	// RawMsP50 is the median time of the same question without privacy
	// in raw DuckDB: COUNT(DISTINCT uid), SUM, AVG grouped alike.
	RawMsP50 float64 `json:"raw_ms_p50"`
	Ratio    float64 `json:"ratio"`
	// HTTPMsP50 is the median time of the query through the HTTP API:
	// parse, check, run, release, debit, cache and audit.
	HTTPMsP50 float64 `json:"http_ms_p50"`
	// LinkMs is the cost, once per cohort at build time, of linking the
	// rows to the person map (a real cohort's link is a join with the
	// upload; here a copy).
	LinkMs float64 `json:"link_ms"`
	Runs   int     `json:"runs"`
	// Questions are -shape events' questions, each timed against plain
	// DuckDB (the shape's rows are then both tables', users the people).
	Questions []QuestionResult `json:"questions,omitempty"`
}

// Cohort shapes of the query benchmark.
const (
	ShapeSimple  = "simple"
	ShapeGeneral = "general"
)

// The cohort's columns carry the brand's prefix, as a real cohort's do.
const benchQuery = `SELECT brand_region, COUNT(*) AS people, SUM(brand_spend) AS spend, AVG(brand_spend) AS avg_spend FROM cohort GROUP BY brand_region`

// Serve starts a cleanroom server on db and returns its base URL, the
// secret of the operator's admin key and a function that stops it. The
// command provides one built on the API package; the benchmarks speak to
// a server only over HTTP, through the client, and never link the API.
type Serve func(ctx context.Context, db *store.DB) (url, operatorKey string, stop func(), err error)

// QueryOptions configure `cleanroom bench query`.
type QueryOptions struct {
	Rows  int    // cohort rows; people for ShapeEvents
	Runs  int    // timed runs of each query
	Shape string // ShapeSimple (the default) or ShapeGeneral
	// Serve runs the server for the HTTP measurement; nil leaves it out.
	Serve Serve
}

// shapeSQL selects the cohort's rows (uid, _a_row, _b_row, brand_region,
// brand_spend) for a shape; %[1]d is the number of rows.
var shapeSQL = map[string]string{
	// Two rows per person, one region per person.
	ShapeSimple: `SELECT (i // 2)::BIGINT AS uid, i AS _a_row, (i // 2)::BIGINT AS _b_row,
		'r' || ((i // 2) %% 8) AS brand_region, (i %% 100)::DOUBLE AS brand_spend FROM range(%[1]d) t(i)`,
	// A retailer's purchases: 1 to 20 rows per person, most people with few
	// (1 + floor(20 u^3)), each row in the person's home region 60%% of the
	// time and in any region otherwise, in no order; one publisher row per
	// person.
	ShapeGeneral: `WITH p AS (SELECT i AS uid, (1 + floor(20 * pow(random(), 3)))::BIGINT AS k, (hash(i) %% 8)::BIGINT AS home FROM range(%[1]d // 4 + 1) t(i)),
		r AS (SELECT uid, home, unnest(range(k)) AS j FROM p),
		n AS (SELECT uid, home, row_number() OVER () AS rn FROM r)
		SELECT uid, rn AS _a_row, uid AS _b_row,
			'r' || (CASE WHEN random() < 0.6 THEN home ELSE floor(random() * 8)::BIGINT END) AS brand_region,
			round(random() * 100, 2)::DOUBLE AS brand_spend
		FROM n WHERE rn <= %[1]d ORDER BY random()`,
}

// RunQuery builds a cohort of o.Rows rows of the shape, linked as a match links it,
// and times a grouped private query against its raw DuckDB equivalent in
// the same process, then the same query through the API.
func RunQuery(ctx context.Context, o QueryOptions) (QueryResult, error) {
	n, runs := o.Rows, o.Runs
	if o.Shape == "" {
		o.Shape = ShapeSimple
	}
	if o.Shape == ShapeEvents {
		if n <= 0 || runs <= 0 {
			return QueryResult{}, fmt.Errorf("bench.RunQuery: people (%d) and runs (%d) must be positive", n, runs)
		}
		return runEventsQuery(ctx, o)
	}
	res := QueryResult{Shape: o.Shape, Rows: n, Runs: runs, MaxGroups: 1}
	if o.Shape == ShapeGeneral {
		res.MaxGroups = 2 // binds for people in three regions or more
	}
	shape, ok := shapeSQL[o.Shape]
	if !ok {
		return res, fmt.Errorf("bench.RunQuery: shape %q: want %s or %s", o.Shape, ShapeSimple, ShapeGeneral)
	}
	if n <= 0 || runs <= 0 {
		return res, fmt.Errorf("bench.RunQuery: rows (%d) and runs (%d) must be positive", n, runs)
	}
	db, done, err := scratchDB(ctx)
	if err != nil {
		return res, err
	}
	defer done()
	// The raw baseline reads the rows as one table; the private query
	// reads them as a cohort does: the brand's table linked to the person
	// map, the publisher's side (one row a person) not read.
	table := "bench_rows"
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE `+table+` AS `+fmt.Sprintf(shape, n)); err != nil {
		return res, err
	}
	t0 := time.Now()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE `+benchLink+` AS SELECT uid, brand_region AS region, brand_spend AS spend FROM `+table); err != nil {
		return res, err
	}
	res.LinkMs = ms(t0)
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE `+benchPeople+` AS SELECT DISTINCT uid, NULL::BLOB AS pid_a, NULL::BLOB AS pid_b FROM `+table); err != nil {
		return res, err
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM `+benchPeople).Scan(&res.Users); err != nil {
		return res, err
	}
	raw := fmt.Sprintf(`SELECT brand_region, COUNT(DISTINCT uid), SUM(brand_spend), AVG(brand_spend) FROM %s GROUP BY brand_region`, table)
	metrics := map[string][2]float64{"brand_spend": {0, 200}}
	plan, err := query.Parse(ctx, db.SQL(), benchQuery)
	if err != nil {
		return res, err
	}
	if err := plan.Check([]string{"brand_region"}, metrics); err != nil {
		return res, err
	}
	src := query.Source{People: benchPeople, Columns: benchColumns}
	bo := query.BoundOptions{MaxGroups: int64(res.MaxGroups), Bounds: metrics}
	ro := dp.ReleaseOptions{Epsilon: 1, Delta: 1e-6, Grouped: true, MaxGroups: int64(res.MaxGroups), MinGroupUsers: 50}
	for _, a := range plan.Aggregates {
		ro.Aggs = append(ro.Aggs, dp.Agg{Func: string(a.Func), Lower: 0, Upper: 200})
	}
	if res.FirstMs, res.RawMsP50, res.DPMsP50, err = timeAgainstRaw(ctx, db, raw, runs, plan, src, bo, ro); err != nil {
		return res, err
	}
	res.Ratio = res.DPMsP50 / res.RawMsP50

	if o.Serve == nil {
		return res, nil
	}
	httpT, err := httpQueries(ctx, db, o.Serve, res.MaxGroups, runs)
	if err != nil {
		return res, err
	}
	res.HTTPMsP50 = median(httpT)
	return res, nil
}

// The bench cohort's tables and columns: match m_bench over audiences
// a_bench0 (the brand's) and a_bench1. Their names are not those of a
// real match's, which the server's start-up cleanup would drop before
// the bench records them.
const (
	benchPeople = "bench_people"
	benchLink   = "bench_link_brand"
)

var benchColumns = map[string]cohort.Column{
	"brand_region": {Side: "a", Table: wire.DefaultTable, Link: benchLink, Source: "region"},
	"brand_spend":  {Side: "a", Table: wire.DefaultTable, Link: benchLink, Source: "spend"},
}

// httpQueries registers the tables as a collaboration's cohort and times
// the query through the API; each run asks with another epsilon so none
// is served from the cache.
func httpQueries(ctx context.Context, db *store.DB, serve Serve, maxGroups, runs int) ([]float64, error) {
	url, secret, stop, err := serve(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("bench query: starting the server: %w", err)
	}
	defer stop()
	op := client.New(url, secret)
	var admins []*client.Client
	var ids []string
	for _, name := range []string{"Brand", "Publisher"} {
		cp, err := op.CreatePartner(ctx, name)
		if err != nil {
			return nil, err
		}
		admins = append(admins, client.New(url, cp.Secret))
		ids = append(ids, cp.Partner.ID)
	}
	rules, _ := json.Marshal(map[string]any{"dimensions": []string{"brand_region"}, "metrics": map[string][2]float64{"brand_spend": {0, 200}},
		"epsilon_budget": 1000, "delta_budget": 1e-3, "min_upload_users": 1, "max_groups_contributed": maxGroups})
	co, err := admins[0].Propose(ctx, "bench", ids[1], rules)
	if err != nil {
		return nil, err
	}
	if _, err := admins[1].Approve(ctx, co.ID, 0); err != nil {
		return nil, err
	}
	ak, err := admins[0].CreateKey(ctx, ids[0], "analyst", "bench")
	if err != nil {
		return nil, err
	}
	cj, err := json.Marshal(benchColumns)
	if err != nil {
		return nil, err
	}
	err = db.Write(ctx, func(tx *sql.Tx) error {
		now := time.Now().UTC()
		for i, p := range ids {
			t := fmt.Sprintf("aud_bench_%d", i)
			if _, err := tx.ExecContext(ctx, `CREATE TABLE `+t+` (pid BLOB)`); err != nil {
				return err
			}
			aid := fmt.Sprintf("a_bench%d", i)
			if _, err := tx.ExecContext(ctx, `INSERT INTO audiences (id, collab_id, partner_id, table_name, rows, people, content_sha256, columns, created_at, people_matchable, name)
				VALUES (?, ?, ?, ?, 0, 0, '', '[]', ?, 0, ?)`,
				aid, co.ID, p, t, now, wire.DefaultTable); err != nil {
				return err
			}
			link := any(nil)
			if i == 0 {
				link = benchLink
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO match_tables VALUES ('m_bench', ?, ?, ?, ?, NULL)`, string(rune('a'+i)), aid, wire.DefaultTable, link); err != nil {
				return err
			}
		}
		var users int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+benchPeople).Scan(&users); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO matches (id, collab_id, audience_a, audience_b, state, points_a, points_b, cohort_table, cohort_size, noisy_size, epsilon, created_at, updated_at, cohort_columns)
			VALUES ('m_bench', ?, 'a_bench0', 'a_bench1', ?, 0, 0, ?, ?, ?, 0.1, ?, ?, ?)`,
			co.ID, wire.MatchDone, benchPeople, users, users, now, now, string(cj))
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []float64
	for i := 0; i < runs; i++ {
		body, _ := json.Marshal(map[string]any{"sql": benchQuery, "epsilon": 0.5 + float64(i)/1000})
		req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/collaborations/"+co.ID+"/queries", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ak.Secret)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("bench query over HTTP: %d %s", resp.StatusCode, buf.String())
		}
		out = append(out, ms(t0))
	}
	return out, nil
}

// scratchDB opens a store in a new temporary directory; done closes it
// and removes the directory.
func scratchDB(ctx context.Context) (db *store.DB, done func(), err error) {
	dir, err := os.MkdirTemp("", "cleanroom-bench-query-")
	if err != nil {
		return nil, nil, err
	}
	if db, err = store.Open(ctx, dir); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }, nil
}

// timeAgainstRaw times a private question (the plan's bounded SQL, then
// its DP release) against raw, the same question in plain DuckDB: once
// alone (first), then runs times interleaved; medians in milliseconds.
func timeAgainstRaw(ctx context.Context, db *store.DB, raw string, runs int, plan *query.Plan, src query.Source,
	bo query.BoundOptions, ro dp.ReleaseOptions) (first, rawP50, dpP50 float64, err error) {
	private := func() (float64, error) {
		t0 := time.Now()
		groups, err := plan.Groups(ctx, db.SQL(), src, bo)
		if err != nil {
			return 0, err
		}
		if _, err := dp.ReleaseGroups(groups, ro); err != nil {
			return 0, err
		}
		return ms(t0), nil
	}
	if first, err = private(); err != nil {
		return 0, 0, 0, err
	}
	var rawT, dpT []float64
	for range runs {
		t0 := time.Now()
		if err := drain(ctx, db.SQL(), raw); err != nil {
			return 0, 0, 0, fmt.Errorf("the plain question: %w", err)
		}
		rawT = append(rawT, ms(t0))
		d, err := private()
		if err != nil {
			return 0, 0, 0, err
		}
		dpT = append(dpT, d)
	}
	return first, median(rawT), median(dpT), nil
}

func drain(ctx context.Context, db *sql.DB, q string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

func ms(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
