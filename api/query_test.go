package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/ipc"
)

const queryRules = `{"purpose": "measurement", "min_upload_users": 1000, "dimensions": ["brand_co_label", "publisher_label"],
	"metrics": {"brand_co_value": [0, 50]}, "epsilon_budget": 10.2, "max_query_epsilon": 1, "min_group_users": 10}`

// ask posts a query with an analyst's key and returns status and body.
func (e *env) ask(key, sqlText string, eps float64, accept string) (int, []byte, http.Header) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"sql": sqlText, "epsilon": eps})
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/collaborations/"+e.collab+"/queries", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func newQueryEnv(t *testing.T) *env {
	e := newEnv(t, queryRules)
	e.uploadBoth()
	e.matchBoth()
	return e
}

func TestQueryAnswersAndCache(t *testing.T) {
	e := newQueryEnv(t)
	key := e.brand.analyst.Key
	st, body, _ := e.ask(key, `SELECT brand_co_label, COUNT(*) AS people, AVG(brand_co_value) FROM cohort GROUP BY brand_co_label`, 0.5, "")
	if st != 200 {
		t.Fatalf("status %d: %s", st, body)
	}
	var a struct {
		Columns         []struct{ Name, Kind string }
		Rows            [][]any
		Intervals       [][]*struct{ Lower, Upper float64 }
		Epsilon         float64
		BudgetRemaining float64 `json:"budget_remaining"`
		Cached          bool
	}
	json.Unmarshal(body, &a)
	if len(a.Columns) != 3 || a.Columns[1].Name != "people" || a.Columns[2].Kind != "avg" {
		t.Errorf("columns %+v", a.Columns)
	}
	if len(a.Rows) == 0 || a.Epsilon != 0.5 || a.Cached {
		t.Fatalf("answer %s", body)
	}
	// 10.2 budget - 0.1 for the match - 0.5.
	if d := a.BudgetRemaining - 9.6; d > 1e-9 || d < -1e-9 {
		t.Errorf("remaining %v, want 9.6", a.BudgetRemaining)
	}
	for i, r := range a.Rows {
		iv := a.Intervals[i][1]
		if iv == nil || !(iv.Lower <= r[1].(float64) && r[1].(float64) <= iv.Upper) || a.Intervals[i][0] != nil {
			t.Errorf("row %v intervals %+v", r, a.Intervals[i])
		}
	}
	// The same question, written differently: the stored answer, free.
	st, body2, _ := e.ask(key, `select   brand_co_label, count(*) as people, avg(brand_co_value)
		from cohort group by brand_co_label`, 0.5, "")
	var b struct {
		Cached          bool
		Rows            [][]any
		BudgetRemaining float64 `json:"budget_remaining"`
	}
	json.Unmarshal(body2, &b)
	if st != 200 || !b.Cached || fmt.Sprint(b.Rows) != fmt.Sprint(a.Rows) || b.BudgetRemaining != a.BudgetRemaining {
		t.Errorf("repeat: %d cached=%v rows equal=%v remaining %v", st, b.Cached, fmt.Sprint(b.Rows) == fmt.Sprint(a.Rows), b.BudgetRemaining)
	}
	// CSV.
	st, csvBody, hdr := e.ask(key, `SELECT COUNT(*) FROM cohort`, 0.2, "text/csv")
	cr := csv.NewReader(bytes.NewReader(csvBody))
	cr.Comment = '#' // the lines stating the answer's cost
	recs, err := cr.ReadAll()
	if st != 200 || err != nil || strings.Join(recs[0], ",") != "count,count_ci_lower,count_ci_upper" || len(recs) != 2 {
		t.Errorf("csv: %d %v %q", st, err, csvBody)
	}
	if hdr.Get("Cleanroom-Epsilon") != "0.2" {
		t.Errorf("csv epsilon header %q", hdr.Get("Cleanroom-Epsilon"))
	}
	// Arrow: readable by Go's reader, and by a reader written by others.
	st, arrowBody, _ := e.ask(key, `SELECT publisher_label, SUM(brand_co_value) FROM cohort GROUP BY publisher_label`, 0.2, "application/vnd.apache.arrow.stream")
	r, err := ipc.NewReader(bytes.NewReader(arrowBody))
	if st != 200 || err != nil {
		t.Fatalf("arrow: %d %v", st, err)
	}
	if got := r.Schema().Field(1).Name; got != "sum_brand_co_value" {
		t.Errorf("arrow column %s", got)
	}
	r.Release()
	checkForeignArrowReader(t, arrowBody)
}

// checkForeignArrowReader reads the stream with the npm apache-arrow
// package when node and the package are available (make test installs it).
func checkForeignArrowReader(t *testing.T, stream []byte) {
	dir := os.Getenv("CLEANROOM_ARROW_JS")
	if dir == "" {
		t.Log("CLEANROOM_ARROW_JS not set: skipping the apache-arrow (JS) reader check")
		return
	}
	f := filepath.Join(t.TempDir(), "a.arrow")
	os.WriteFile(f, stream, 0o600)
	script := `const {tableFromIPC} = require('apache-arrow'); const t = tableFromIPC(require('fs').readFileSync(process.argv[1]));
console.log(t.schema.fields.map(f => f.name).join(',') + ' ' + t.numRows);`
	cmd := exec.Command("node", "-e", script, f)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("apache-arrow (JS) could not read the answer: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "publisher_label,sum_brand_co_value,sum_brand_co_value_ci_lower,sum_brand_co_value_ci_upper ") {
		t.Errorf("apache-arrow (JS) read: %s", out)
	}
}

func TestQueryRefusals(t *testing.T) {
	e := newQueryEnv(t)
	key := e.brand.analyst.Key
	for _, c := range []struct {
		sql    string
		eps    float64
		status int
		code   string
	}{
		{`SELECT COUNT(*) FROM cohort WHERE`, 0.1, 400, "syntax"},
		{`SELECT uid, COUNT(*) FROM cohort GROUP BY uid`, 0.1, 403, "hidden_column"},
		{`SELECT publisher_value, COUNT(*) FROM cohort GROUP BY publisher_value`, 0.1, 403, "not_allowed"},
		{`SELECT COUNT(*) FROM cohort ORDER BY 1`, 0.1, 400, "unsupported"},
		{`SELECT COUNT(*) FROM cohort`, 1.5, 400, "epsilon_not_allowed"},
	} {
		st, body, _ := e.ask(key, c.sql, c.eps, "")
		if st != c.status || !strings.Contains(string(body), `"code":"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", c.sql, st, body, c.status, c.code)
		}
	}
	// Comparing a text column with a date would fail or not depending on
	// the data; it is refused from the schema alone, and says nothing of the data.
	st, body, _ := e.ask(key, `SELECT COUNT(*) FROM cohort WHERE brand_co_label > DATE '2020-01-01'`, 0.1, "")
	if st != 400 || !strings.Contains(string(body), "cannot be compared with a date literal") || strings.Contains(string(body), "region") {
		t.Errorf("type mismatch: %d %s", st, body)
	}
	// Engineers do not query.
	if st, _, _ := e.ask(e.brand.eng.Key, `SELECT COUNT(*) FROM cohort`, 0.1, ""); st != 403 {
		t.Errorf("engineer query: %d", st)
	}
	// Refusals are logged with their reason, and cost nothing.
	raw, _ := e.brand.audit.AuditLog(context.Background(), nil)
	if n := strings.Count(string(raw), `"query.refused"`); n != 6 {
		t.Errorf("%d refusals logged, want 6", n)
	}
	var bud struct {
		Budgets []struct {
			PartnerID string  `json:"partner_id"`
			Spent     float64 `json:"epsilon_spent"`
		}
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/collaborations/"+e.collab+"/budget", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&bud)
	resp.Body.Close()
	if len(bud.Budgets) != 1 || bud.Budgets[0].Spent > 0.1+1e-9 {
		t.Errorf("budget after refusals: %+v (only the match's 0.1 is spent)", bud)
	}
}

// TestQueryBudgetRace: 200 concurrent queries against a budget that allows
// exactly 10: never more than 10 answers (the rest refused for the budget,
// or for too many at once from one key), and asked again one at a time,
// exactly 10 in all; the ledger holds their sum.
func TestQueryBudgetRace(t *testing.T) {
	e := newQueryEnv(t)
	key := e.pub.analyst.Key
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Different questions, so none is served from the cache.
			st, body, _ := e.ask(key, fmt.Sprintf(`SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'x%d'`, i), 1, "")
			mu.Lock()
			statuses[st]++
			mu.Unlock()
			if st != 200 && !strings.Contains(string(body), "budget_exhausted") && !strings.Contains(string(body), "too_many_queries") {
				t.Errorf("status %d: %s", st, body)
			}
		}()
	}
	wg.Wait()
	// Budget 10.2, minus 0.1 for the match: room for ten queries of 1.
	if statuses[200] > 10 || statuses[200]+statuses[429] != 200 {
		t.Fatalf("statuses %v, want at most 10 answers and the rest refused", statuses)
	}
	for i := 0; statuses[200] < 10 && i < 10; i++ {
		if st, body, _ := e.ask(key, fmt.Sprintf(`SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'y%d'`, i), 1, ""); st == 200 {
			statuses[200]++
		} else {
			t.Fatalf("asked alone after the burst, with %d answered: %d %s", statuses[200], st, body)
		}
	}
	if st, body, _ := e.ask(key, `SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'z'`, 1, ""); st != 429 || !strings.Contains(string(body), "budget_exhausted") {
		t.Errorf("the eleventh answer: %d %s", st, body)
	}
	var spent float64
	if err := e.db.SQL().QueryRow(`SELECT sum(epsilon) FROM budget_ledger WHERE partner_id = ? AND kind = 'query'`, e.pub.id).Scan(&spent); err != nil {
		t.Fatal(err)
	}
	if spent != 10 {
		t.Errorf("ledger holds %v, want 10", spent)
	}
	st, body, _ := e.ask(key, `SELECT COUNT(*) FROM cohort WHERE brand_co_label = 'y'`, 0.5, "")
	if st != 429 || !strings.Contains(string(body), "is left") {
		t.Errorf("exhausted: %d %s", st, body)
	}
}

// TestReleasesNeverFailOnTheData: a failure that depends on the data is
// a free membership test. With bounds at the limit, people whose rows
// sum past float64 (to +Inf or -Inf), and NaN, infinities and dates
// stored before uploads refused them (a data directory of an older
// version),
// every question is answered and charged as any other, a NaN group key
// and a date past the year 9999 included. Rules stored before the bounds' limit (a bound of 7e307,
// whose SUM was +Inf, an uncharged 500, only when two people holding it
// were in the cohort) are refused before any row is read, for nothing.
func TestReleasesNeverFailOnTheData(t *testing.T) {
	e := newEnv(t, `{"purpose": "measurement", "min_upload_users": 1000, "min_group_users": 0, "epsilon_budget": 1000, "max_query_epsilon": 100,
		"dimensions": ["publisher_value", "publisher_day"], "metrics": {"brand_co_value": [0, 1e15]}}`)
	var brand, pub []row
	for k := 0; k < 1200; k++ {
		brand = append(brand, row{person: k, value: 1, label: "x", consent: []string{"measurement"}})
		pub = append(pub, row{person: k, value: float64(k % 3), label: "y", consent: []string{"measurement"}, day: k % 2})
		switch {
		case k < 10: // their sum is +Inf
			brand = append(brand, row{person: k, value: math.MaxFloat64, label: "x", consent: []string{"measurement"}},
				row{person: k, value: math.MaxFloat64, label: "x", consent: []string{"measurement"}})
		case k < 20: // -Inf
			brand = append(brand, row{person: k, value: -math.MaxFloat64, label: "x", consent: []string{"measurement"}},
				row{person: k, value: -math.MaxFloat64, label: "x", consent: []string{"measurement"}})
		}
	}
	ctx := context.Background()
	for _, x := range []struct {
		p    party
		rows []row
		day  string
	}{{e.brand, brand, ""}, {e.pub, pub, "day"}} {
		if _, err := x.p.eng.Upload(ctx, e.collab, bytes.NewReader(encodeDated(t, x.p.key, x.rows, "value", "label", x.day, true))); err != nil {
			t.Fatal(err)
		}
	}
	// What an older version stored: NaN and infinities among the values,
	// and a date past the year 9999.
	for _, x := range []struct {
		partner, set string
	}{{e.brand.id, `value = CASE rowid % 3 WHEN 0 THEN 'nan' WHEN 1 THEN 'inf' ELSE '-inf' END::DOUBLE WHERE rowid % 11 = 0`},
		{e.pub.id, `value = 'nan'::DOUBLE WHERE rowid % 5 = 0`},
		{e.pub.id, `day = '20000-01-01'::DATE WHERE rowid % 4 = 1`}} {
		var table string
		if err := e.db.SQL().QueryRow(`SELECT table_name FROM audiences WHERE partner_id = ? AND deleted_at IS NULL`, x.partner).Scan(&table); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.SQL().Exec(`UPDATE ` + table + ` SET ` + x.set); err != nil {
			t.Fatal(err)
		}
	}
	e.matchBoth()
	key := e.brand.analyst.Key
	for _, q := range []string{
		`SELECT SUM(brand_co_value) AS s, AVG(brand_co_value) AS m FROM cohort`,
		`SELECT VARIANCE(brand_co_value), STDDEV(brand_co_value), MEDIAN(brand_co_value) FROM cohort`,
		`SELECT publisher_value, COUNT(*) AS n, SUM(brand_co_value) AS s FROM cohort GROUP BY publisher_value`,
		`SELECT publisher_day, COUNT(*) AS n FROM cohort GROUP BY publisher_day`,
	} {
		before, _ := e.ledger(e.brand.id)
		st, body, _ := e.ask(key, q, 50, "")
		if st != 200 {
			t.Fatalf("%s: %d %s", q, st, body)
		}
		if after, _ := e.ledger(e.brand.id); after-before != 50_000_000 {
			t.Errorf("%s: charged %d units, want 50000000 (epsilon 50)", q, after-before)
		}
		if strings.Contains(q, "GROUP BY publisher_value") && !strings.Contains(string(body), `["NaN",`) ||
			strings.Contains(q, "GROUP BY publisher_day") && !strings.Contains(string(body), `["20000-01-01T00:00:00Z",`) {
			t.Errorf("%s: no group of the value an older version stored in %s", q, body)
		}
		// Every aggregate is a number within what the bounds allow: a sum
		// of 1,200 people's 1e15 at most, a variance (1e15)^2 / 4.
		for _, r := range parseAnswer(t, body).Rows {
			for _, v := range r {
				if f, ok := v.(float64); ok && math.Abs(f) > 1e30 {
					t.Errorf("%s: %v is past what people bounded at 1e15 can give", q, f)
				}
			}
		}
	}

	var raw string
	if err := e.db.SQL().QueryRow(`SELECT CAST(rules AS VARCHAR) FROM collaborations WHERE id = ?`, e.collab).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(raw, `"brand_co_value":[0,1000000000000000]`, `"brand_co_value":[0,7e307]`, 1)
	if old == raw {
		t.Fatalf("bounds not found in the stored rules %s", raw)
	}
	if _, err := e.db.SQL().Exec(`UPDATE collaborations SET rules = ? WHERE id = ?`, old, e.collab); err != nil {
		t.Fatal(err)
	}
	before, _ := e.ledger(e.brand.id)
	st, body, _ := e.ask(key, `SELECT SUM(brand_co_value) FROM cohort`, 50, "")
	a := parseAnswer(t, body)
	if st != 409 || a.Error.Code != "rules_invalid" || !strings.Contains(a.Error.Message, `rules: metrics: "brand_co_value": bounds [0, 7e+307] must lie within [-1e+15, 1e+15]`) {
		t.Errorf("rules stored with a bound of 7e307: %d %s", st, body)
	}
	if after, _ := e.ledger(e.brand.id); after != before {
		t.Errorf("the refusal charged %d units", after-before)
	}
}
