package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/ipc"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// The neighbouring-dataset tests: two clean rooms whose data differ in one
// person of one party, the same scripted session driven as every role of
// the other party (and the operator) against both. Whatever a role
// receives must be the same bytes in both, once three things are masked:
//
//   - random identifiers, timestamps and the durations between them (how
//     long a deletion took to honour, in whole seconds), API secrets, and
//     the hashes and signatures that cover them (both worlds mint their
//     own);
//   - DP outputs, named by path: query answers' rows and intervals, noisy
//     cohort sizes, and the audit's record of a released answer;
//   - what the PSI protocol inherently hands over: the other party's
//     blinded points (pseudorandom without its key; only their count is
//     compared) and the hash of the observer's own re-blinding of them.
//
// The person swapped is in the observer's data in both worlds: in one the
// other party holds them too (they are in the intersection), in the other
// it holds a stranger with the same attributes instead. So every set size
// is the same and no difference may remain.

// swapped is the person the other party holds in the second world instead
// of person 1003, who both parties hold in the first.
const (
	sharedPerson = 1003
	strangerID   = 9003
)

// neighbourRules leave no refusal near any threshold, so that the only
// randomness is DP noise.
const neighbourRules = `{"purpose": "measurement", "min_upload_users": 1000, "min_cohort_users": 100,
	"dimensions": ["brand_co_label", "publisher_label"], "metrics": {"brand_co_value": [0, 50], "publisher_value": [0, 5]},
	"epsilon_budget": 10, "max_query_epsilon": 1, "min_group_users": 10, "delta": 1e-6,
	"public_groups": {"brand_co_label": {"values": ["region0", "region1", "region2", "region3", "region9"]}}}`

// neighbourTablesRules declare two tables a party: the brand's customers
// (where its consent lives) and purchases, the publisher's exposures
// (consent on each row) and clicks.
const neighbourTablesRules = `{"purpose": "measurement", "min_upload_users": 1000, "min_cohort_users": 100,
	"epsilon_budget": 10, "max_query_epsilon": 1, "min_group_users": 10, "delta": 1e-6,
	"public_groups": {"brand_co_category": {"values": ["k0", "k1", "k2", "k9"]}},
	"tables": [
		{"party": "proposer", "name": "customers", "columns": [{"name": "tier", "role": "metric", "bounds": [0, 50]}, {"name": "region", "role": "dimension"}]},
		{"party": "proposer", "name": "purchases", "columns": [{"name": "amount", "role": "metric", "bounds": [0, 50]}, {"name": "category", "role": "dimension"}, {"name": "purchase_date", "role": "time"}]},
		{"party": "partner", "name": "exposures", "columns": [{"name": "freq", "role": "metric", "bounds": [0, 5]}, {"name": "campaign", "role": "dimension"}, {"name": "exposure_date", "role": "time"}]},
		{"party": "partner", "name": "clicks", "columns": [{"name": "clicks", "role": "metric", "bounds": [0, 5]}, {"name": "site", "role": "dimension"}]}]}`

// tableUpload is one table a party sends: its name ("" for the default)
// and body.
type tableUpload struct {
	name string
	body []byte
}

// neighbourUploads returns a party's uploads. With tables, the person
// swapped has rows in each: the brand's customers (one row a person, its
// consent) and purchases (two rows for each of its rows, no consent
// column); the publisher's exposures (its rows, with consent) and clicks
// (one for each row, no consent column).
func neighbourUploads(t *testing.T, key *psi.Key, rows []row, brand, tables bool) []tableUpload {
	if !tables {
		return []tableUpload{{"", encode(t, key, rows)}}
	}
	var second []row
	for i, r := range rows {
		second = append(second, row{person: r.person, value: float64(i % 5), label: fmt.Sprint("k", i%3), day: i % 20})
		if brand {
			second = append(second, row{person: r.person, value: 1, label: "k0", day: (i + 9) % 20})
		}
	}
	if !brand {
		dated := slices.Clone(rows)
		for i := range dated {
			dated[i].day = (i * 7) % 20
		}
		return []tableUpload{{"exposures", encodeDated(t, key, dated, "freq", "campaign", "exposure_date", true)},
			{"clicks", encodeTable(t, key, second, "clicks", "site", false)}}
	}
	var people []row
	seen := map[int]bool{}
	for _, r := range rows {
		if !seen[r.person] {
			seen[r.person] = true
			people = append(people, r)
		}
	}
	return []tableUpload{{"customers", encodeTable(t, key, people, "tier", "region", true)},
		{"purchases", encodeDated(t, key, second, "amount", "category", "purchase_date", false)}}
}

// recorder keeps what one role receives, masked.
type recorder struct {
	t     *testing.T
	e     *env
	ids   map[string]string // random id -> placeholder, in order of appearance
	lines map[string][]string
	// operator masks the upload content hashes too: the operator is S,
	// which holds every blinded point anyway.
	operator bool
}

var (
	idRe   = regexp.MustCompile(`\b(?:crk_[a-z2-7]+|[pkcamr]_[a-z2-7]{16})`)
	idRe2  = regexp.MustCompile(`[pkcamr]_[a-z2-7]{16}`) // inside names such as cohort_m_...
	timeRe = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	// Keys whose values are random in every world: secrets, and hashes or
	// signatures over content that holds ids and times.
	randomKeys = map[string]bool{"secret": true, "hash": true, "prev_hash": true, "signature": true, "audit_hash": true,
		"private_sha256": true, "nonce": true, "public_key": true, "content_hash": true}
	// timingKeys are durations measured by the clock, timestamps' kin.
	timingKeys = map[string]bool{"seconds": true, "median_seconds_to_honour": true}
	// ownFacts are facts about one party's own data (its audience's sizes,
	// consent mix and content, what its deletions removed of it). The
	// operator is S, which holds that data, and reads them; a partner reads
	// only its own. None of them depends on the other party's data, so
	// for a partner they stay unmasked and must match.
	ownFacts = map[string]bool{"content_sha256": true, "rows": true, "rows_sent": true, "people": true, "people_matchable": true,
		"consent_rows_by_purpose": true, "audience_rows": true, "table_rows": true, "tokens": true, "private": true}
)

func (r *recorder) maskIDs(s string) string {
	f := func(id string) string {
		if _, ok := r.ids[id]; !ok {
			r.ids[id] = fmt.Sprintf("<id%d>", len(r.ids)+1)
		}
		return r.ids[id]
	}
	s = idRe.ReplaceAllStringFunc(s, f)
	return idRe2.ReplaceAllStringFunc(s, f)
}

// mask normalises one JSON value; path names where it sits.
func (r *recorder) mask(v any, path string) any {
	switch x := v.(type) {
	case map[string]any:
		// Times that could time work on the other party's data (an audit
		// entry's, a match's) are whole seconds for every reader.
		_, entry := x["action"]
		_, match := x["half_a_received"]
		if entry || match {
			for _, k := range []string{"at", "created_at", "updated_at"} {
				if ts, ok := x[k].(string); ok && strings.Contains(ts, ".") {
					r.t.Errorf("%s: %s %q is finer than a second", path, k, ts)
				}
			}
		}
		out := map[string]any{}
		for k, val := range x {
			mk := r.maskIDs(k)
			switch {
			case randomKeys[k]:
				out[mk] = "<random>"
			case k == "cohort_size_noisy":
				out[mk] = "<dp>"
			case timingKeys[k]:
				out[mk] = "<timing>"
			case r.operator && ownFacts[k]:
				out[mk] = "<held by S>"
			default:
				out[mk] = r.mask(val, path+"."+k)
			}
		}
		// A released answer: its numbers are DP outputs.
		if _, ok := x["epsilon_split"]; ok {
			out["rows"], out["intervals"] = "<dp>", "<dp>"
		}
		// An analyst's history: how many rows an answer released.
		if x["outcome"] == "answered" {
			out["rows"] = "<dp>"
		}
		// The audit's record of a released answer, and the observer's own
		// re-blinding of the other party's points (inherent to PSI).
		if d, ok := out["details"].(map[string]any); ok {
			switch x["action"] {
			case "query.run":
				d["answer_sha256"], d["rows"] = "<dp>", "<dp>"
			case "match.points":
				d["content_sha256"] = "<inherent>"
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = r.mask(x[i], path+"[]")
		}
		return out
	case string:
		return timeRe.ReplaceAllString(r.maskIDs(x), "<time>")
	}
	return v
}

// add records a response: status and masked body (JSON, or NDJSON lines).
func (r *recorder) add(role, step string, status int, body []byte) {
	r.t.Helper()
	var parts []string
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		// Ids take their placeholders in the order the server wrote them,
		// before Go's maps lose that order.
		line = []byte(r.maskIDs(string(line)))
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			parts = append(parts, "<not json: "+string(line)+">")
			continue
		}
		v = r.mask(v, "")
		if strings.HasSuffix(step, "report") {
			sortSections(v)
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		parts = append(parts, strings.TrimSpace(b.String()))
	}
	r.lines[role] = append(r.lines[role], fmt.Sprintf("%s -> %d %s", step, status, strings.Join(parts, "\n\t")))
}

// sortSections orders the report's tables by content: the server orders
// them by random ids.
func sortSections(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, sec := range []string{"deletions", "budget_spent_by_day", "queries_by_analyst", "refusals_by_reason"} {
		rows, ok := m[sec].([]any)
		if !ok {
			continue
		}
		sort.Slice(rows, func(i, j int) bool {
			a, _ := json.Marshal(rows[i])
			b, _ := json.Marshal(rows[j])
			return string(a) < string(b)
		})
	}
}

// call makes one request with key and records the answer under role.
func (r *recorder) call(role, key, method, path string, body any) []byte {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	r.add(role, method+" "+r.maskIDs(path), resp.StatusCode, out)
	return out
}

// world builds one clean room and runs the session. The other party holds
// sharedPerson when shared, else strangerID in the same row. The
// observer's side is the brand when observerBrand.
func world(t *testing.T, observerBrand, shared, tables bool, brandKey, pubKey *psi.Key) map[string][]string {
	rules := neighbourRules
	if tables {
		rules = neighbourTablesRules
	}
	e := newEnv(t, rules)
	e.brand.key, e.pub.key = brandKey, pubKey
	ctx := context.Background()
	brandRows, pubRows, _ := audiences()
	swap := func(rows []row) {
		for i := range rows {
			if rows[i].person == sharedPerson {
				rows[i].person = strangerID
			}
		}
	}
	obs, other := e.brand, e.pub
	if !shared {
		if observerBrand {
			swap(pubRows)
		} else {
			swap(brandRows)
		}
	}
	if !observerBrand {
		obs, other = e.pub, e.brand
	}
	obsRows, otherRows := brandRows, pubRows
	if !observerBrand {
		obsRows, otherRows = pubRows, brandRows
	}
	r := &recorder{t: t, e: e, ids: map[string]string{}, lines: map[string][]string{}}
	// Ids the observer met at set-up, in a fixed order.
	r.maskIDs(obs.id + " " + other.id + " " + e.collab)
	op := &recorder{t: t, e: e, ids: map[string]string{}, lines: map[string][]string{}, operator: true}
	op.maskIDs(e.brand.id + " " + e.pub.id + " " + e.collab)
	cp := "/v1/collaborations/" + e.collab

	// Uploads: the other party first, then the observer.
	// Both state their keys' fingerprints.
	otherUploads := neighbourUploads(t, other.key, otherRows, !observerBrand, tables)
	for _, u := range otherUploads {
		if _, err := other.eng.UploadTable(ctx, e.collab, bytes.NewReader(u.body), client.UploadOptions{Table: u.name, Key: other.key}); err != nil {
			t.Fatal(err)
		}
	}
	upload := func(step, query, contentType string, body []byte) {
		req, _ := http.NewRequest("POST", e.srv.URL+cp+"/audiences?"+query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+obs.eng.Key)
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.add("engineer", step, resp.StatusCode, b)
	}
	// A key that is neither party's, the same in both worlds.
	wrong, _ := psi.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	obsUploads := neighbourUploads(t, obs.key, obsRows, observerBrand, tables)
	for i, u := range obsUploads {
		arrow := "application/vnd.apache.arrow.stream"
		q := "table=" + u.name + "&key_fingerprint="
		if i > 0 {
			// Refused: blinded with another key than the first table.
			upload("upload "+u.name+" with another key", q+wrong.Fingerprint(), arrow, u.body)
		}
		upload("upload "+u.name, q+obs.key.Fingerprint(), arrow, u.body)
		// Refused without replace; checked, not stored, as a dry run.
		upload("upload "+u.name+" again", q+obs.key.Fingerprint(), arrow, u.body)
		upload("dry run "+u.name, q+obs.key.Fingerprint()+"&replace=true&dry_run=true", arrow, u.body)
	}
	upload("not Parquet", "table="+obsUploads[0].name+"&replace=true", "application/vnd.apache.parquet", bytes.Repeat([]byte{0}, 1<<16))

	// The match, one half after the other so the log's order is fixed.
	var m struct {
		ID string `json:"id"`
	}
	r.call("engineer", obs.eng.Key, "POST", cp+"/matches?key_fingerprint="+wrong.Fingerprint(), nil) // refused: another key
	json.Unmarshal(r.call("engineer", obs.eng.Key, "POST", cp+"/matches?key_fingerprint="+obs.key.Fingerprint(), nil), &m)
	r.call("engineer", obs.eng.Key, "PUT", cp+"/matches/"+m.ID+"/points?key_fingerprint="+wrong.Fingerprint(), nil) // refused: another key
	var pts bytes.Buffer
	if err := obs.eng.Points(ctx, e.collab, m.ID, &pts); err != nil {
		t.Fatal(err)
	}
	rd, err := ipc.NewReader(&pts)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for rd.Next() {
		n += rd.Record().NumRows()
	}
	r.lines["engineer"] = append(r.lines["engineer"], fmt.Sprintf("points: %d of schema %s", n, rd.Schema()))
	rd.Release()
	if err := obs.eng.ReblindPoints(ctx, e.collab, m.ID, obs.key, client.MatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.eng.DoMatch(ctx, e.collab, other.key, client.MatchOptions{Poll: 20e6}); err != nil {
		t.Fatal(err)
	}
	r.call("engineer", obs.eng.Key, "GET", cp+"/matches/"+m.ID, nil)

	// Every route each role may call, before and after deletions.
	session := func(phase string) {
		for _, role := range []struct {
			name string
			c    *client.Client
		}{{"engineer", obs.eng}, {"analyst", obs.analyst}, {"auditor", obs.audit}, {"admin", obs.admin}} {
			r.call(role.name, role.c.Key, "GET", "/v1/me", nil)
		}
		r.call("engineer", obs.eng.Key, "GET", cp, nil)
		r.call("engineer", obs.eng.Key, "GET", cp+"/audiences", nil)
		for _, person := range []int{sharedPerson, strangerID, 1005} {
			r.call("engineer", obs.eng.Key, "POST", cp+"/access-requests", map[string]string{"pid": blinded(t, obs.key, person)})
		}
		r.call("engineer", obs.eng.Key, "GET", cp+"/receipts", nil)
		r.call("engineer", obs.eng.Key, "GET", cp+"/access-requests", nil)
		queries := []struct {
			sql string
			eps float64
		}{
			{`SELECT COUNT(*) FROM cohort`, 0.3},
			{`SELECT brand_co_label, COUNT(*), SUM(brand_co_value) FROM cohort GROUP BY brand_co_label`, 0.3},
			{`SELECT publisher_label, AVG(publisher_value) FROM cohort WHERE brand_co_label = 'region3' GROUP BY publisher_label`, 0.2},
		}
		if tables {
			queries = append(queries[:1], []struct {
				sql string
				eps float64
			}{
				{`SELECT brand_co_region, COUNT(*), SUM(brand_co_amount) FROM cohort GROUP BY brand_co_region`, 0.2},
				{`SELECT publisher_campaign, AVG(publisher_clicks) FROM cohort WHERE brand_co_region = 'region3' GROUP BY publisher_campaign`, 0.1},
				{`SELECT COUNT(*), SUM(brand_co_tier) FROM cohort WHERE brand_co_category = 'k1' OR publisher_site = 'k2'`, 0.1},
				{`SELECT brand_co_category, COUNT(*) FROM cohort GROUP BY brand_co_category`, 0.1}, // public groups
				{`SELECT MEDIAN(brand_co_amount), STDDEV(publisher_clicks), COUNT(publisher_site) FROM cohort`, 0.1},
				{`SELECT n, COUNT(*) FROM (SELECT COUNT(publisher_site) AS n FROM cohort GROUP BY person) GROUP BY n`, 0.1},
				{`SELECT publisher_campaign, COUNT(*), COUNT(brand_co_purchase_date), SUM(brand_co_amount) FROM cohort
					WHERE date_diff('day', publisher_exposure_date, brand_co_purchase_date) BETWEEN 0 AND 7 GROUP BY publisher_campaign`, 0.1},
			}...)
		}
		queries = append(queries, []struct {
			sql string
			eps float64
		}{
			{`SELECT COUNT(*) FROM cohort`, 0.3},  // the cache
			{`SELECT uid FROM cohort`, 0.1},       // refused: hidden column
			{`SELECT COUNT(*) FROM cohort`, 5},    // refused: over max_query_epsilon
			{`SELECT COUNT(*) FROM cohort`, 1e-9}, // refused: under min_query_epsilon
		}...)
		// Previews first (they read no data: the same bytes in both worlds).
		for _, q := range queries[:2] {
			r.call("analyst", obs.analyst.Key, "POST", cp+"/queries/preview", map[string]any{"sql": q.sql, "epsilon": q.eps})
		}
		r.call("analyst", obs.analyst.Key, "POST", cp+"/queries/preview", map[string]any{"sql": `SELECT uid FROM cohort`, "epsilon": 0.1})
		for _, q := range queries {
			r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", map[string]any{"sql": q.sql, "epsilon": q.eps})
		}
		// A past answer reopened (cached_only): the stored one, and a miss.
		r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", map[string]any{"sql": `SELECT COUNT(*) FROM cohort`, "epsilon": 0.3, "cached_only": true})
		r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", map[string]any{"sql": `SELECT COUNT(*) FROM cohort`, "epsilon": 0.25, "cached_only": true})
		// A built-in template, and one refused for a parameter out of
		// bounds.
		tplParams := map[string]string{"by": "brand_co_label", "events": "brand_co_value"}
		if tables {
			tplParams = map[string]string{"by": "publisher_campaign", "events": "brand_co_purchase_date"}
		}
		r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", map[string]any{"template": "reach_frequency", "params": tplParams, "epsilon": 0.1})
		r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", map[string]any{"template": "conversion_lift", "epsilon": 0.1,
			"params": map[string]string{"exposed": "x", "since_date": "x", "conversion_date": "x", "window": "400"}})
		r.call("analyst", obs.analyst.Key, "GET", cp+"/queries", nil)
		for _, role := range []struct {
			name string
			c    *client.Client
		}{{"analyst", obs.analyst}, {"auditor", obs.audit}, {"admin", obs.admin}} {
			r.call(role.name, role.c.Key, "GET", cp+"/budget", nil)
			r.call(role.name, role.c.Key, "GET", cp+"/schema", nil)
			r.call(role.name, role.c.Key, "GET", cp+"/report", nil)
			r.call(role.name, role.c.Key, "GET", cp+"/receipts", nil)
			r.call(role.name, role.c.Key, "GET", "/v1/collaborations", nil)
		}
		for _, role := range []struct {
			name string
			c    *client.Client
		}{{"auditor", obs.audit}, {"admin", obs.admin}} {
			r.call(role.name, role.c.Key, "GET", "/v1/audit?collab="+e.collab, nil)
			r.call(role.name, role.c.Key, "GET", "/v1/audit/export", nil)
			r.call(role.name, role.c.Key, "GET", "/v1/audit/head", nil)
			r.call(role.name, role.c.Key, "GET", "/v1/audit?collab="+e.collab+"&order=desc&limit=5", nil)
			r.call(role.name, role.c.Key, "GET", "/v1/partners/"+obs.id+"/privacy-report", nil)
			r.call(role.name, role.c.Key, "GET", cp+"/access-requests", nil)
		}
		op.call("operator", e.op.Key, "GET", "/v1/me", nil)
		op.call("operator", e.op.Key, "GET", "/v1/partners/"+e.brand.id+"/privacy-report", nil)
		op.call("operator", e.op.Key, "GET", "/v1/partners/"+e.pub.id+"/privacy-report", nil)
		op.call("operator", e.op.Key, "GET", cp+"/report", nil)
		op.call("operator", e.op.Key, "GET", cp+"/receipts", nil)
		op.call("operator", e.op.Key, "GET", cp+"/access-requests", nil)
		op.call("operator", e.op.Key, "GET", "/v1/audit/export", nil)
		op.call("operator", e.op.Key, "GET", cp+"/budget", nil)
		op.call("operator", e.op.Key, "GET", cp+"/schema", nil)
	}
	session("matched")

	// The other party deletes the swapped person (whom it holds only in
	// the first world) and opts out another; then the observer deletes
	// them from its own data and runs match again.
	for _, x := range []struct {
		path   string
		person int
	}{{"/deletions", sharedPerson}, {"/optouts", 1007}} {
		if st, body := e.post(other.eng.Key, cp+x.path, map[string]any{"pids": []string{blinded(t, other.key, x.person)}}, "POST"); st != 200 {
			t.Fatalf("other party's deletion: %d %s", st, body)
		}
	}
	r.call("engineer", obs.eng.Key, "POST", cp+"/deletions", map[string]any{"pids": []string{blinded(t, obs.key, sharedPerson)}})
	r.call("engineer", obs.eng.Key, "POST", cp+"/optouts", map[string]any{"pids": []string{blinded(t, obs.key, 1009)}})
	// The other party uploads (one of its tables) again, so a new match
	// starts; its half goes first and the observer's completes it: the
	// observer's own request builds the cohort (out of the write lock)
	// and answers.
	if _, err := other.eng.UploadTable(ctx, e.collab, bytes.NewReader(otherUploads[0].body), client.UploadOptions{Table: otherUploads[0].name, Key: other.key, Replace: true}); err != nil {
		t.Fatal(err)
	}
	var m2 struct {
		ID string `json:"id"`
	}
	json.Unmarshal(r.call("engineer", obs.eng.Key, "POST", cp+"/matches", nil), &m2)
	if _, err := other.eng.DoMatch(ctx, e.collab, other.key, client.MatchOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
	if err := obs.eng.ReblindPoints(ctx, e.collab, m2.ID, obs.key, client.MatchOptions{}); err != nil {
		t.Fatalf("the observer's completing half: %v", err)
	}
	r.call("engineer", obs.eng.Key, "GET", cp+"/matches/"+m2.ID, nil)
	session("after deletions")

	// Exposure caps. The observer's admin caps its people's exposure under
	// what its collaboration has spent already: each of its roles reads
	// the cap and the total; its analyst's new question (and its preview)
	// is refused naming the observer, and a cached one is still answered,
	// free. Then the other partner caps its own: the observer's question,
	// and a match after the other's new upload, are refused naming the
	// other partner. Charges depend on the requests alone, so every byte
	// must be the same in both worlds.
	capPath := "/v1/partners/" + obs.id + "/exposure-cap"
	r.call("admin", obs.admin.Key, "PUT", capPath, map[string]any{"epsilon": 1, "delta": 1e-4})
	for _, role := range []struct {
		name string
		c    *client.Client
	}{{"engineer", obs.eng}, {"analyst", obs.analyst}, {"auditor", obs.audit}, {"admin", obs.admin}} {
		r.call(role.name, role.c.Key, "GET", capPath, nil)
	}
	op.call("operator", e.op.Key, "GET", capPath, nil)
	capped := map[string]any{"sql": `SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'capped'`, "epsilon": 0.1}
	if tables {
		capped["sql"] = `SELECT COUNT(*) FROM cohort WHERE brand_co_region <> 'capped'`
	}
	r.call("analyst", obs.analyst.Key, "POST", cp+"/queries/preview", capped)
	r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", capped)
	r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", map[string]any{"sql": `SELECT COUNT(*) FROM cohort`, "epsilon": 0.3}) // cached
	r.call("admin", obs.admin.Key, "PUT", capPath, map[string]any{})
	otherCap := 1.0
	if _, err := other.admin.SetExposureCap(ctx, other.id, wireCap(&otherCap)); err != nil {
		t.Fatal(err)
	}
	r.call("analyst", obs.analyst.Key, "POST", cp+"/queries", capped)
	if _, err := other.eng.UploadTable(ctx, e.collab, bytes.NewReader(otherUploads[0].body), client.UploadOptions{Table: otherUploads[0].name, Key: other.key, Replace: true}); err != nil {
		t.Fatal(err)
	}
	r.call("engineer", obs.eng.Key, "POST", cp+"/matches", nil)
	if _, err := other.admin.SetExposureCap(ctx, other.id, wireCap(nil)); err != nil {
		t.Fatal(err)
	}
	r.call("auditor", obs.audit.Key, "GET", "/v1/audit?collab="+e.collab+"&order=desc&limit=4", nil)
	r.call("admin", obs.admin.Key, "GET", "/v1/partners/"+obs.id+"/privacy-report", nil)

	// The other party's admin proposes new rules; the observer's admin
	// reads them beside the rules both approved, and rejects them.
	changed := strings.Replace(rules, `"epsilon_budget": 10`, `"epsilon_budget": 9`, 1)
	co, err := other.admin.ChangeRules(ctx, e.collab, json.RawMessage(changed))
	if err != nil || changed == rules {
		t.Fatalf("changing the rules: %v", err)
	}
	r.call("admin", obs.admin.Key, "GET", cp, nil)
	op.call("operator", e.op.Key, "GET", cp, nil)
	r.call("admin", obs.admin.Key, "POST", cp+"/reject", map[string]int{"rules_version": co.RulesVersion})

	// The observer deletes its (first) table; the other party's admin
	// deletes the collaboration.
	var auds struct {
		Tables map[string][]struct {
			ID string `json:"id"`
		} `json:"tables"`
	}
	json.Unmarshal(r.call("engineer", obs.eng.Key, "GET", cp+"/audiences", nil), &auds)
	r.call("engineer", obs.eng.Key, "DELETE", cp+"/audiences/"+auds.Tables[obs.id][0].ID, nil)
	if st, body := e.post(other.admin.Key, cp, nil, "DELETE"); st != 200 {
		t.Fatalf("deleting the collaboration: %d %s", st, body)
	}
	session("deleted")

	for role, lines := range op.lines {
		r.lines[role] = lines
	}
	return r.lines
}

func TestNeighbouringDatasetsLookTheSameToEveryRole(t *testing.T) {
	brandKey, _ := psi.GenerateKey(nil)
	pubKey, _ := psi.GenerateKey(nil)
	for _, c := range []struct{ observerBrand, tables bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		observerBrand := c.observerBrand
		name := "publisher's data differs, brand observes"
		if !observerBrand {
			name = "brand's data differs, publisher observes"
		}
		if c.tables {
			name += ", two tables a party"
		}
		t.Run(name, func(t *testing.T) {
			a := world(t, observerBrand, true, c.tables, brandKey, pubKey)
			b := world(t, observerBrand, false, c.tables, brandKey, pubKey)
			// The session did the work it stands for: every upload stored,
			// and questions answered (not all refused alike).
			uploads, answered := 0, 0
			for _, l := range a["engineer"] {
				if strings.HasPrefix(l, "upload") && strings.Contains(l, " -> 201 ") {
					uploads++
				}
			}
			for _, l := range a["analyst"] {
				if strings.HasPrefix(l, "POST ") && strings.Contains(l, "/queries -> 200 ") {
					answered++
				}
			}
			// Every question of the two sessions before the deletion is
			// answered (the cached one included), the refusals apart.
			wantUploads := map[bool]int{false: 1, true: 2}[c.tables]
			wantAnswered := map[bool]int{false: 13, true: 23}[c.tables] // the cached answer past a cap and the reopened ones (cached_only) included
			if uploads != wantUploads || answered != wantAnswered {
				t.Errorf("the session stored %d uploads (want %d) and answered %d questions (want %d)", uploads, wantUploads, answered, wantAnswered)
			}
			// The refusals of another key, of an upload that would replace
			// without saying so, and of a body that is not Parquet were met;
			// the observer reads its own key's fingerprint, and no role of
			// it ever the other party's.
			obsKey, otherKey := brandKey, pubKey
			if !observerBrand {
				obsKey, otherKey = pubKey, brandKey
			}
			all := strings.Join(slices.Concat(a["engineer"], a["analyst"], a["auditor"], a["admin"]), "\n")
			for _, want := range []string{`"key_mismatch"`, `"replace_required"`, `"dry_run":true`, "does not start with PAR1", obsKey.Fingerprint()} {
				if !strings.Contains(all, want) {
					t.Errorf("the observer never received %s", want)
				}
			}
			// Another key's start and half, and with two tables its upload.
			if n, want := strings.Count(all, `"key_mismatch"`), map[bool]int{false: 2, true: 3}[c.tables]; n != want {
				t.Errorf("the observer met key_mismatch %d times, want %d", n, want)
			}
			if strings.Contains(all, psi.ShortFingerprint(otherKey.Fingerprint())) {
				t.Errorf("the observer received the other party's key fingerprint")
			}
			// The caps refused a preview, two questions and a match.
			capped := 0
			for _, role := range []string{"analyst", "engineer"} {
				for _, l := range a[role] {
					if strings.HasPrefix(l, "POST ") && strings.Contains(l, `"code":"exposure_cap_exceeded"`) {
						capped++
					}
				}
			}
			if capped != 4 {
				t.Errorf("%d responses refused for an exposure cap, want 4 (a preview, two questions, a match)", capped)
			}
			roles := []string{"engineer", "analyst", "auditor", "admin", "operator"}
			for _, role := range roles {
				la, lb := a[role], b[role]
				if len(la) == 0 {
					t.Errorf("%s: nothing recorded", role)
				}
				if len(la) != len(lb) {
					t.Errorf("%s: %d responses in one world, %d in the other", role, len(la), len(lb))
					continue
				}
				for i := range la {
					if la[i] != lb[i] {
						t.Errorf("%s, response %d differs between neighbouring datasets:\nshared:   %s\nstranger: %s", role, i, around(la[i], lb[i]), around(lb[i], la[i]))
						break
					}
				}
			}
		})
	}
}

// wireCap is a cap request for epsilon (nil: remove the cap).
func wireCap(eps *float64) wire.ExposureCapRequest { return wire.ExposureCapRequest{Epsilon: eps} }

// around shows a's text near where it first differs from b.
func around(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start, end := max(i-300, 0), min(i+200, len(a))
	cut := strings.SplitN(a, " ", 4)
	head := strings.Join(cut[:min(3, len(cut))], " ")
	return head + " ... " + a[start:end]
}

// TestNeighbourMaskingKeepsDifferences checks the masking itself: what it
// leaves unmasked still tells two different answers apart, and a leak of
// the kind the test exists for would be caught.
func TestNeighbourMaskingKeepsDifferences(t *testing.T) {
	r := &recorder{t: t, ids: map[string]string{}, lines: map[string][]string{}}
	r.add("x", "a", 200, []byte(`{"in_cohorts": ["m_aaaaaaaaaaaaaaaa"], "cohort_rows": 2, "at": "2026-01-02T03:04:05Z", "hash": "ab"}`))
	r.add("x", "a", 200, []byte(`{"in_cohorts": [], "cohort_rows": 0, "at": "2027-01-02T03:04:05.5Z", "hash": "cd"}`))
	if r.lines["x"][0] == r.lines["x"][1] {
		t.Fatalf("masking hides a membership difference: %q", r.lines["x"][0])
	}
	r2 := &recorder{t: t, ids: map[string]string{}, lines: map[string][]string{}}
	r2.add("x", "a", 200, []byte(`{"id": "m_aaaaaaaaaaaaaaaa", "at": "2026-01-02T03:04:05Z", "cohort_size_noisy": 5, "epsilon_split": {}, "rows": [[1]]}`))
	r2.add("x", "a", 200, []byte(`{"id": "m_bbbbbbbbbbbbbbbb", "at": "2027-01-02T03:04:05Z", "cohort_size_noisy": 7, "epsilon_split": {}, "rows": [[2]]}`))
	// Different ids take the same placeholder only in the same position of
	// their own world; here they are the first and second id seen.
	if !strings.Contains(r2.lines["x"][0], "<id1>") || !strings.Contains(r2.lines["x"][1], "<id2>") {
		t.Errorf("ids masked as %q / %q", r2.lines["x"][0], r2.lines["x"][1])
	}
	if strings.Contains(r2.lines["x"][0], "5") || strings.Contains(r2.lines["x"][1], "[[2]]") {
		t.Errorf("DP outputs not masked: %q", r2.lines["x"])
	}
}
