package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/query"
	"github.com/cleanroom/cleanroom/wire"
)

// QuestionResult is one question of `bench query -shape events`: the
// private answer's time in the engine (bounded SQL in DuckDB, then the DP
// release) against the same question in plain DuckDB on the same tables,
// without bounding or noise.
type QuestionResult struct {
	Name     string  `json:"name"`
	SQL      string  `json:"sql"`
	DPMsP50  float64 `json:"dp_ms_p50"`
	RawMsP50 float64 `json:"raw_ms_p50"`
	Ratio    float64 `json:"ratio"`
	FirstMs  float64 `json:"first_ms"`
}

// The events cohort's linked tables, as a match leaves them: every one of
// People people matched, a brand's purchases (about 12 a person, skewed,
// over 60 days) and a publisher's exposures (about 30 a person, five
// campaigns, over the same 60 days).
const (
	evPeople    = "ev_people"
	evPurchases = "ev_purchases"
	evExposures = "ev_exposures"
)

var evColumns = map[string]cohort.Column{
	"brand_purchase_date":     {Side: "a", Table: "purchases", Link: evPurchases, Source: "purchase_date"},
	"brand_amount":            {Side: "a", Table: "purchases", Link: evPurchases, Source: "amount"},
	"publisher_exposure_date": {Side: "b", Table: "exposures", Link: evExposures, Source: "exposure_date"},
	"publisher_campaign":      {Side: "b", Table: "exposures", Link: evExposures, Source: "campaign"},
}

// evQuestions are the questions: each private one with the plain DuckDB
// question it answers.
var evQuestions = []struct{ name, private, raw string }{
	{"conversions within 7 days by campaign",
		`SELECT publisher_campaign, COUNT(*) AS converters, COUNT(brand_purchase_date) AS purchases FROM cohort
		WHERE date_diff('day', publisher_exposure_date, brand_purchase_date) BETWEEN 0 AND 7 GROUP BY publisher_campaign`,
		`SELECT campaign, count(DISTINCT p.uid), count(DISTINCT p.rowid) FROM ` + evPurchases + ` p JOIN ` + evExposures + ` e ON e.uid = p.uid
		WHERE date_diff('day', e.exposure_date, p.purchase_date) BETWEEN 0 AND 7 GROUP BY campaign`},
	{"frequency distribution of exposures",
		`SELECT n, COUNT(*) AS people FROM (SELECT COUNT(publisher_exposure_date) AS n FROM cohort GROUP BY person) GROUP BY n`,
		`SELECT n, count(*) FROM (SELECT uid, count(*) AS n FROM ` + evExposures + ` GROUP BY uid) GROUP BY n`},
	{"median of spend",
		`SELECT MEDIAN(brand_amount) AS median_spend FROM cohort`,
		`SELECT median(s) FROM (SELECT uid, sum(amount) AS s FROM ` + evPurchases + ` GROUP BY uid)`},
}

// runEventsQuery builds the events cohort for o.Rows people and times
// each question, private and plain, interleaved, runs times.
func runEventsQuery(ctx context.Context, o QueryOptions) (QueryResult, error) {
	res := QueryResult{Shape: ShapeEvents, Runs: o.Runs, MaxGroups: 1}
	db, done, err := scratchDB(ctx)
	if err != nil {
		return res, err
	}
	defer done()
	t0 := time.Now()
	// Deterministic, skewed habits drawn by hash: a person has
	// 1 + floor(4m u^3) events (u uniform; about m + 1 on average, m 12
	// purchases and 30 exposures), each on one of 60 days.
	for _, q := range []string{
		fmt.Sprintf(`CREATE TABLE %s AS SELECT i::BIGINT AS uid FROM range(%d) t(i)`, evPeople, o.Rows),
		fmt.Sprintf(`CREATE TABLE %s AS SELECT uid, (DATE '2026-10-01' + (hash(uid, j, 1) %% 60)::INTEGER) AS purchase_date,
			round((hash(uid, j, 2) %% 20000) / 100.0, 2)::DOUBLE AS amount
			FROM (SELECT uid, unnest(range(1 + (48 * pow((hash(uid, 7) %% 1000) / 1000.0, 3))::BIGINT)) AS j FROM %s)`, evPurchases, evPeople),
		fmt.Sprintf(`CREATE TABLE %s AS SELECT uid, (DATE '2026-10-01' + (hash(uid, j, 3) %% 60)::INTEGER) AS exposure_date,
			'c' || (hash(uid, j, 4) %% 5) AS campaign
			FROM (SELECT uid, unnest(range(1 + (120 * pow((hash(uid, 8) %% 1000) / 1000.0, 3))::BIGINT)) AS j FROM %s)`, evExposures, evPeople),
	} {
		if _, err := db.SQL().ExecContext(ctx, q); err != nil {
			return res, fmt.Errorf("bench query: building the events cohort: %w", err)
		}
	}
	res.LinkMs = ms(t0)
	res.Users = o.Rows
	var purchases, exposures int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM `+evPurchases+`), (SELECT count(*) FROM `+evExposures+`)`).Scan(&purchases, &exposures); err != nil {
		return res, err
	}
	res.Rows = int(purchases + exposures)
	rules := wire.DefaultRules()
	src := query.Source{People: evPeople, Columns: evColumns}
	metrics := map[string][2]float64{"brand_amount": {0, 2000}}
	maxRows := map[string]float64{"brand_purchase_date": float64(rules.MaxRowsPerPerson), "publisher_exposure_date": float64(rules.MaxRowsPerPerson)}
	for _, q := range evQuestions {
		plan, err := query.Parse(ctx, db.SQL(), q.private)
		if err != nil {
			return res, fmt.Errorf("bench query: %s: %w", q.name, err)
		}
		if err := plan.Check([]string{"brand_purchase_date", "publisher_exposure_date", "publisher_campaign"}, metrics); err != nil {
			return res, fmt.Errorf("bench query: %s: %w", q.name, err)
		}
		public := plan.Step != nil
		ro := dp.ReleaseOptions{Epsilon: 1, Delta: 1e-7, Grouped: len(plan.Dimensions) > 0 && !public, Public: public, MaxGroups: 1, MinGroupUsers: 50}
		for _, a := range plan.Aggregates {
			switch a.Func {
			case query.Rows:
				ro.Aggs = append(ro.Aggs, dp.Agg{Func: "sum", Lower: 0, Upper: maxRows[a.Column]})
			case query.Median:
				ro.Aggs = append(ro.Aggs, dp.Agg{Func: "quantile", Lower: 0, Upper: 2000, Rank: 0.5})
			default:
				ro.Aggs = append(ro.Aggs, dp.Agg{Func: string(a.Func), Lower: 0, Upper: 2000})
			}
		}
		bo := query.BoundOptions{MaxGroups: 1, Bounds: metrics, MaxRows: maxRows}
		qr := QuestionResult{Name: q.name, SQL: q.private}
		if qr.FirstMs, qr.RawMsP50, qr.DPMsP50, err = timeAgainstRaw(ctx, db, q.raw, o.Runs, plan, src, bo, ro); err != nil {
			return res, fmt.Errorf("bench query: %s: %w", q.name, err)
		}
		qr.Ratio = qr.DPMsP50 / qr.RawMsP50
		res.Questions = append(res.Questions, qr)
	}
	return res, nil
}
