package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/ipc"

	"github.com/cleanroom/cleanroom/wire"
)

// csvComments splits a CSV answer into its comment lines (key: value)
// and the CSV after them.
func csvComments(t *testing.T, body []byte) (map[string]string, []byte) {
	t.Helper()
	meta := map[string]string{}
	rest := body
	for bytes.HasPrefix(rest, []byte("#")) {
		line, after, _ := bytes.Cut(rest, []byte("\n"))
		if k, v, ok := strings.Cut(strings.TrimPrefix(string(line), "# "), ": "); ok {
			meta[k] = v
		}
		rest = after
	}
	return meta, rest
}

// TestAnswerFilesStateTheirCost: a CSV answer names its collaboration,
// its time, its epsilon, delta and noise in comment lines before the
// header (which a reader told of # comments skips), or leaves them out
// with comments=false; an Arrow answer carries them as schema metadata;
// a bad comments value is refused before anything is spent.
func TestAnswerFilesStateTheirCost(t *testing.T) {
	e := newQueryEnv(t)
	key := e.brand.analyst.Key
	before := time.Now().UTC().Truncate(time.Second)
	const q = `SELECT brand_co_label, COUNT(*) AS people FROM cohort GROUP BY brand_co_label`
	st, body, _ := e.ask(key, q, 0.3, "text/csv")
	if st != 200 {
		t.Fatalf("CSV: %d %s", st, body)
	}
	meta, rest := csvComments(t, body)
	if !bytes.HasPrefix(body, []byte("# cleanroom answer")) {
		t.Errorf("the CSV does not say what its comment lines are:\n%s", body)
	}
	at, err := time.Parse(time.RFC3339, meta["answered_at"])
	if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("answered_at %q (%v), want about now", meta["answered_at"], err)
	}
	for k, want := range map[string]string{"epsilon": "0.3", "noise": "laplace", "cached": "false", "collaboration_id": e.collab, "delta": "1e-07"} {
		if meta[k] != want {
			t.Errorf("# %s: %q, want %q\n%s", k, meta[k], want, body)
		}
	}
	if meta["collaboration"] == "" || meta["plan_hash"] == "" || meta["budget_remaining"] == "" {
		t.Errorf("comments lack the collaboration's name, plan hash or budget: %v", meta)
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil || strings.Join(recs[0], ",") != "brand_co_label,people,people_ci_lower,people_ci_upper" || len(recs) < 2 {
		t.Errorf("the CSV under the comments: %v %q", err, rest)
	}

	// The same answer without comments: the plain CSV, free (cached).
	st, plain := e.post(key, "/v1/collaborations/"+e.collab+"/queries?format=csv&comments=false", map[string]any{"sql": q, "epsilon": 0.3}, "POST")
	if st != 200 || !bytes.HasPrefix(plain, []byte("brand_co_label,people,")) || !bytes.Equal(plain, rest) {
		t.Errorf("comments=false: %d\n%s\nwant\n%s", st, plain, rest)
	}
	b0, _ := e.budget(key)
	st, bad := e.post(key, "/v1/collaborations/"+e.collab+"/queries?format=csv&comments=no", map[string]any{"sql": `SELECT COUNT(*) FROM cohort`, "epsilon": 0.2}, "POST")
	var eb wire.ErrorBody
	json.Unmarshal(bad, &eb)
	if st != 400 || eb.Error.Code != wire.CodeInvalid || !strings.Contains(eb.Error.Message, "comments: want true or false") {
		t.Errorf("comments=no: %d %s", st, bad)
	}
	if b1, _ := e.budget(key); b1.Budgets[0].Spent != b0.Budgets[0].Spent {
		t.Errorf("a refused format spent epsilon: %v then %v", b0.Budgets[0].Spent, b1.Budgets[0].Spent)
	}

	st, body, _ = e.ask(key, q, 0.3, "application/vnd.apache.arrow.stream")
	if st != 200 {
		t.Fatalf("Arrow: %d %s", st, body)
	}
	rd, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	md := rd.Schema().Metadata()
	get := func(k string) string {
		if i := md.FindKey(k); i >= 0 {
			return md.Values()[i]
		}
		return ""
	}
	if get("epsilon") != "0.3" || get("noise") != "laplace" || get("cached") != "true" || get("collaboration_id") != e.collab || get("collaboration") != meta["collaboration"] {
		t.Errorf("Arrow metadata %v", md)
	}
	if _, err := time.Parse(time.RFC3339, get("answered_at")); err != nil {
		t.Errorf("Arrow answered_at %q: %v", get("answered_at"), err)
	}
}

// getSchema reads GET .../schema with key.
func (e *env) getSchema(key string) wire.Schema {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/collaborations/"+e.collab+"/schema", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var s wire.Schema
	if err := json.Unmarshal(raw, &s); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("schema: %d %s", resp.StatusCode, raw)
	}
	return s
}

// schemaColumns flattens a schema to "partner/table.column=name type role bounds".
func schemaColumns(s wire.Schema) map[string]string {
	out := map[string]string{}
	for _, t := range s.Tables {
		for _, c := range t.Columns {
			v := c.Name + " " + c.Type + " " + c.Role
			if c.Bounds != nil {
				b, _ := json.Marshal(c.Bounds)
				v += " " + string(b)
			}
			out[t.PartnerName+"/"+t.Table+"."+c.Column] = v
		}
	}
	return out
}

// TestQuerySchemaNamesColumnsAsQueriesDo: the schema lists each party's
// declared tables before they are uploaded (no types, no cohort), then
// with their uploaded types, every column named as queries name it, with
// its role and bounds; the other party's analyst reads the same.
func TestQuerySchemaNamesColumnsAsQueriesDo(t *testing.T) {
	e := newEnv(t, tablesRules)
	s := e.getSchema(e.brand.analyst.Key)
	if s.Cohort || len(s.Tables) != 3 {
		t.Fatalf("before any upload: %+v", s)
	}
	cols := schemaColumns(s)
	if cols["Brand Co/purchases.amount"] != "brand_co_amount  metric [0,100]" || cols["Publisher/exposures.exposure_date"] != "publisher_exposure_date  time" {
		t.Errorf("declared columns before upload: %v", cols)
	}
	for _, x := range []struct {
		p     party
		table string
	}{{e.brand, "customers"}, {e.brand, "purchases"}, {e.pub, "exposures"}} {
		e.mustUploadTable(x.p, x.table, tablesCSV(x.table, nil), "")
	}
	if s := e.getSchema(e.brand.analyst.Key); s.Cohort {
		t.Error("a cohort before the match")
	}
	e.matchBoth()
	s = e.getSchema(e.pub.analyst.Key)
	if !s.Cohort {
		t.Error("no cohort after the match")
	}
	cols = schemaColumns(s)
	for k, want := range map[string]string{
		"Brand Co/customers.region":         "brand_co_region utf8 dimension",
		"Brand Co/purchases.purchase_date":  "brand_co_purchase_date date32 time",
		"Publisher/exposures.campaign":      "publisher_campaign utf8 dimension",
		"Publisher/exposures.exposure_date": "publisher_exposure_date date32 time",
	} {
		if cols[k] != want {
			t.Errorf("%s: %q, want %q", k, cols[k], want)
		}
	}
	if got := cols["Brand Co/purchases.amount"]; !strings.HasPrefix(got, "brand_co_amount ") || !strings.HasSuffix(got, " metric [0,100]") || strings.Contains(got, "  ") {
		t.Errorf("amount: %q", got)
	}
	for k := range cols {
		if strings.HasSuffix(k, ".email") || strings.HasSuffix(k, ".pid") || strings.HasSuffix(k, ".consent") {
			t.Errorf("the schema lists %s", k)
		}
	}
	// The rules' own columns, where no table is declared: roles from
	// dimensions and metrics, and a column they do not name has none.
	e2 := newQueryEnv(t)
	cols = schemaColumns(e2.getSchema(e2.brand.analyst.Key))
	if !strings.HasSuffix(cols["Brand Co/audience.value"], " metric [0,50]") || !strings.HasSuffix(cols["Publisher/audience.label"], " dimension") ||
		!strings.HasSuffix(cols["Publisher/audience.value"], " ") {
		t.Errorf("undeclared tables: %v", cols)
	}
}

// TestQueryCachedOnlyNeverCharges: cached_only returns the stored answer
// of the same question and epsilon, free; without one (another epsilon,
// or a cohort changed by a deletion) it is a conflict that spends and
// logs nothing. The workbench reopens past answers this way.
func TestQueryCachedOnlyNeverCharges(t *testing.T) {
	e := newQueryEnv(t)
	key := e.brand.analyst.Key
	path := "/v1/collaborations/" + e.collab + "/queries"
	const q = `SELECT brand_co_label, COUNT(*) FROM cohort GROUP BY brand_co_label`
	if st, body, _ := e.ask(key, q, 0.3, ""); st != 200 {
		t.Fatalf("asking: %d %s", st, body)
	}
	b0, _ := e.budget(key)
	st, body := e.post(key, path, map[string]any{"sql": q, "epsilon": 0.3, "cached_only": true}, "POST")
	var a struct {
		Cached  bool
		Epsilon float64
		Rows    [][]any
	}
	json.Unmarshal(body, &a)
	if st != 200 || !a.Cached || a.Epsilon != 0.3 || len(a.Rows) == 0 {
		t.Errorf("cached_only for a stored answer: %d %s", st, body)
	}
	miss := func(what string, eps float64) {
		t.Helper()
		entries := e.auditCount()
		st, body := e.post(key, path, map[string]any{"sql": q, "epsilon": eps, "cached_only": true}, "POST")
		var eb wire.ErrorBody
		json.Unmarshal(body, &eb)
		if st != 409 || eb.Error.Code != wire.CodeNotStored || !strings.Contains(eb.Error.Message, "no stored answer") {
			t.Errorf("%s: %d %s", what, st, body)
		}
		if b, _ := e.budget(key); b.Budgets[0].Spent != b0.Budgets[0].Spent {
			t.Errorf("%s spent epsilon: %v, was %v", what, b.Budgets[0].Spent, b0.Budgets[0].Spent)
		}
		if n := e.auditCount(); n != entries {
			t.Errorf("%s logged %d entries", what, n-entries)
		}
	}
	miss("another epsilon", 0.4)
	if _, err := e.brand.eng.DeleteIDs(context.Background(), e.collab, e.brand.key, blindPeople(t, e.brand.key, 11), false); err != nil {
		t.Fatal(err)
	}
	miss("after a deletion", 0.3)
}
