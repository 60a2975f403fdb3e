package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/client"
)

// Regression tests for issue 8's findings: each was a free, exact answer
// to "is this person in the other party's data?".

// stripVolatile removes ids, times, hashes and the caller's own rows from
// a JSON body, leaving what must not depend on the other party's data.
func stripVolatile(t *testing.T, body []byte, drop ...string) string {
	t.Helper()
	r := &recorder{t: t, ids: map[string]string{}, lines: map[string][]string{}}
	var v map[string]any
	if err := json.Unmarshal([]byte(r.maskIDs(string(body))), &v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	for _, k := range drop {
		delete(v, k)
	}
	b, _ := json.Marshal(r.mask(v, ""))
	return string(b)
}

// Person 501 is only the brand's; person 1003 is both parties' and
// consented on both sides, so in the cohort. Both have one brand row.
const (
	brandOnly = 501
	inBoth    = 1003
)

func TestAccessRequestDoesNotTellWhetherThePersonMatched(t *testing.T) {
	e := newQueryEnv(t)
	path := "/v1/collaborations/" + e.collab + "/access-requests"
	var got []string
	for _, person := range []int{inBoth, brandOnly} {
		st, body := e.post(e.brand.eng.Key, path, map[string]string{"pid": blinded(t, e.brand.key, person)}, "POST")
		if st != 200 {
			t.Fatalf("access request: %d %s", st, body)
		}
		var ar struct {
			Rows []map[string]any `json:"rows"`
		}
		json.Unmarshal(body, &ar)
		if len(ar.Rows) != 1 {
			t.Errorf("person %d: %d rows, want their one brand row: %s", person, len(ar.Rows), body)
		}
		got = append(got, stripVolatile(t, body, "rows", "tables"))
	}
	if got[0] != got[1] {
		t.Errorf("an access request tells a matched person from an unmatched one:\n matched:   %s\n unmatched: %s", got[0], got[1])
	}
}

// TestAccessRequestsListedToTheirPartner: a partner's keys read the
// access requests it made, with what each found of its own data and the
// asking key's label; the other partner reads none of them, and the
// operator reads every partner's.
func TestAccessRequestsListedToTheirPartner(t *testing.T) {
	e := newQueryEnv(t)
	ctx := context.Background()
	for _, p := range blindedPoints(t, e.brand.key, inBoth, brandOnly, 999999) {
		if _, err := e.brand.eng.AccessRequest(ctx, e.collab, e.brand.key, p); err != nil {
			t.Fatal(err)
		}
	}
	me, _ := e.brand.eng.Me(ctx)
	for _, c := range []*client.Client{e.brand.eng, e.brand.admin, e.brand.audit} {
		l, err := c.AccessRequests(ctx, e.collab)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.AccessRequests) != 3 {
			t.Fatalf("the brand reads %d access requests, want its 3", len(l.AccessRequests))
		}
		newest, oldest := l.AccessRequests[0], l.AccessRequests[2]
		if newest.Rows != 0 || oldest.Rows != 1 || oldest.TableRows["audience"] != 1 || newest.KeyID != me.KeyID || newest.KeyLabel != me.Label ||
			newest.PartnerID != e.brand.id || newest.AuditSeq <= oldest.AuditSeq {
			t.Errorf("the brand's access requests read %+v", l.AccessRequests)
		}
	}
	for _, c := range []*client.Client{e.pub.eng, e.pub.admin, e.pub.audit} {
		if l, err := c.AccessRequests(ctx, e.collab); err != nil || len(l.AccessRequests) != 0 {
			t.Errorf("the publisher reads %+v, %v; want none of the brand's", l, err)
		}
	}
	if _, err := e.brand.analyst.AccessRequests(ctx, e.collab); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("an analyst reads the access requests: %v", err)
	}
	if l, err := e.op.AccessRequests(ctx, e.collab); err != nil || len(l.AccessRequests) != 3 {
		t.Errorf("the operator reads %+v, %v; want all 3", l, err)
	}
}

func TestDeletionReceiptsSayNothingOfTheCohort(t *testing.T) {
	e := newQueryEnv(t)
	cp := "/v1/collaborations/" + e.collab
	var receipts []string
	for _, person := range []int{inBoth, brandOnly} {
		st, body := e.post(e.brand.eng.Key, cp+"/deletions", map[string]any{"pids": []string{blinded(t, e.brand.key, person)}}, "POST")
		if st != 200 {
			t.Fatalf("deletion: %d %s", st, body)
		}
		e.verifyReceipt(body)
		if strings.Contains(string(body), "cohort_rows") {
			t.Errorf("the receipt counts cohort rows: %s", body)
		}
		receipts = append(receipts, stripVolatile(t, body, "audit_seq"))
	}
	if receipts[0] != receipts[1] {
		t.Errorf("receipts tell a matched person from an unmatched one:\n matched:   %s\n unmatched: %s", receipts[0], receipts[1])
	}
	// Deleting an audience: the receipt counts the deleter's rows only.
	var auds struct {
		Audiences map[string]struct {
			ID string `json:"id"`
		} `json:"audiences"`
	}
	_, b := e.post(e.pub.eng.Key, cp+"/audiences", nil, "GET")
	json.Unmarshal(b, &auds)
	st, body := e.post(e.pub.eng.Key, cp+"/audiences/"+auds.Audiences[e.pub.id].ID, nil, "DELETE")
	if st != 200 || strings.Contains(string(body), "cohort_rows") {
		t.Errorf("audience deletion: %d %s", st, body)
	}
	// The other partner reads none of them, with any key; the operator reads all.
	for _, c := range []*client.Client{e.pub.eng, e.pub.analyst, e.pub.audit, e.pub.admin} {
		st, body := e.post(c.Key, cp+"/receipts", nil, "GET")
		if st != 200 || strings.Count(string(body), `"kind"`) != 1 || strings.Contains(string(body), `"identifiers"`) {
			t.Errorf("the publisher reads receipts of the brand's deletions: %d %s", st, body)
		}
	}
	if st, body := e.post(e.op.Key, cp+"/receipts", nil, "GET"); st != 200 || strings.Count(string(body), `"kind"`) != 3 {
		t.Errorf("the operator reads %d %s, want all three receipts", st, body)
	}
	// Nor their counts in the log or the report.
	raw, err := e.pub.audit.AuditLog(context.Background(), url.Values{"collab": {e.collab}, "action": {"deletion.identifiers"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "audience_rows") || strings.Contains(string(raw), "table_rows") || strings.Contains(string(raw), "cohort_rows") || strings.Contains(string(raw), `"private"`) {
		t.Errorf("the publisher's auditor reads what the brand's deletions removed: %s", raw)
	}
	r, err := e.pub.audit.Report(context.Background(), e.collab)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := json.Marshal(r)
	if strings.Contains(string(rep), "cohort_rows") || strings.Contains(string(rep), "audience_rows") {
		t.Errorf("the report counts rows deleted: %s", rep)
	}
}

func TestEveryDeletionBumpsTheCohortVersion(t *testing.T) {
	e := newQueryEnv(t)
	version := func() string {
		st, body, _ := e.ask(e.pub.analyst.Key, `SELECT COUNT(*) FROM cohort`, 0.1, "")
		var a struct {
			Version string `json:"cohort_version"`
		}
		if st != 200 || json.Unmarshal(body, &a) != nil {
			t.Fatalf("query: %d %s", st, body)
		}
		return a.Version
	}
	v0 := version()
	// A person the publisher does not hold: the cohort's rows are the same,
	// but the version the publisher sees must move all the same.
	if st, body := e.post(e.brand.eng.Key, "/v1/collaborations/"+e.collab+"/deletions", map[string]any{"pids": []string{blinded(t, e.brand.key, brandOnly)}}, "POST"); st != 200 {
		t.Fatalf("deletion: %d %s", st, body)
	}
	if v1 := version(); v1 == v0 {
		t.Errorf("a deletion of someone not in the cohort left its version at %s: the version tells who matched", v1)
	}
}

func TestMinCohortRefusalDoesNotFollowTheExactSize(t *testing.T) {
	_, _, want := audiences()
	// The threshold is the exact size: with the exact size compared, it
	// flips when one member is deleted; with the noisy size, never.
	rules := fmt.Sprintf(`{"purpose": "measurement", "min_upload_users": 1000, "min_cohort_users": %d, "dimensions": ["brand_co_label"],
		"epsilon_budget": 10, "max_query_epsilon": 1}`, want)
	e := newEnv(t, rules)
	e.uploadBoth()
	e.matchBoth()
	outcome := func() string {
		st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) FROM cohort`, 0.1, "")
		var er struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(body, &er)
		return fmt.Sprintf("%d %s %s", st, er.Error.Code, er.Error.Message)
	}
	before := outcome()
	for _, person := range []int{inBoth, inBoth + 2} {
		if st, body := e.post(e.brand.eng.Key, "/v1/collaborations/"+e.collab+"/deletions", map[string]any{"pids": []string{blinded(t, e.brand.key, person)}}, "POST"); st != 200 {
			t.Fatalf("deletion: %d %s", st, body)
		}
		if after := outcome(); after != before {
			t.Errorf("deleting a member changed the answer from %q to %q", before, after)
		}
	}
}

func TestMatchRunsAgainAfterDeletions(t *testing.T) {
	e := newQueryEnv(t)
	cp := "/v1/collaborations/" + e.collab
	var pids []string
	for _, p := range []int{1001, 1003, 1005} {
		pids = append(pids, blinded(t, e.pub.key, p))
	}
	if st, body := e.post(e.pub.eng.Key, cp+"/deletions", map[string]any{"pids": pids}, "POST"); st != 200 {
		t.Fatalf("deletion: %d %s", st, body)
	}
	// Both parties run match again, as its help says is safe.
	ctx := context.Background()
	for _, p := range []party{e.brand, e.pub} {
		m, err := p.eng.DoMatch(ctx, e.collab, p.key, client.MatchOptions{Poll: 20e6})
		if err != nil {
			t.Fatalf("match again after deletions: %v", err)
		}
		if m.State != "done" {
			t.Errorf("match is %s", m.State)
		}
	}
	// The audience's counts follow the deletion: one row and one person each.
	var auds struct {
		Audiences map[string]struct {
			Rows   int64 `json:"rows"`
			People int64 `json:"people"`
		} `json:"audiences"`
	}
	_, b := e.post(e.pub.eng.Key, cp+"/audiences", nil, "GET")
	json.Unmarshal(b, &auds)
	if a := auds.Audiences[e.pub.id]; a.Rows != 1197 || a.People != 1197 {
		t.Errorf("publisher's audience after deleting 3 people: %s", b)
	}
	// A person with two rows: rows go down by two, people by one.
	if st, body := e.post(e.brand.eng.Key, cp+"/deletions", map[string]any{"pids": []string{blinded(t, e.brand.key, 1002)}}, "POST"); st != 200 {
		t.Fatalf("deletion: %d %s", st, body)
	}
	_, b = e.post(e.brand.eng.Key, cp+"/audiences", nil, "GET")
	json.Unmarshal(b, &auds)
	if a := auds.Audiences[e.brand.id]; a.Rows != 2250-2 || a.People != 1500-1 {
		t.Errorf("brand's audience after deleting a two-row person: %s", b)
	}
}

func TestDeletionDuringAMatchVoidsIt(t *testing.T) {
	e := newEnv(t, queryRules)
	want := e.uploadBoth()
	ctx := context.Background()
	m, err := e.brand.eng.StartMatch(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.brand.eng.ReblindPoints(ctx, e.collab, m.ID, e.brand.key, client.MatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The publisher deletes one of its people before doing its half: the
	// positions of its points no longer line up, so the match is void.
	if st, body := e.post(e.pub.eng.Key, "/v1/collaborations/"+e.collab+"/deletions", map[string]any{"pids": []string{blinded(t, e.pub.key, inBoth)}}, "POST"); st != 200 {
		t.Fatalf("deletion: %d %s", st, body)
	}
	if got, _ := e.brand.eng.Match(ctx, e.collab, m.ID); got.State != "stale" {
		t.Errorf("the match is %s after a deletion", got.State)
	}
	mid, _ := e.matchBoth()
	if mid == m.ID {
		t.Fatal("running match again joined the void match")
	}
	if got := e.exactCohortSize(mid); got != int64(want-1) {
		t.Errorf("new cohort has %d people, want %d", got, want-1)
	}
}

func TestMinUploadUsersCountsPeopleWhoCanMatch(t *testing.T) {
	e := newEnv(t, queryRules)
	var rows []row
	for k := 0; k < 1200; k++ {
		c := []string{"marketing"}
		if k == 0 {
			c = []string{"measurement"}
		}
		rows = append(rows, row{person: k, value: 1, label: "x", consent: c})
	}
	_, err := e.brand.eng.Upload(context.Background(), e.collab, bytes.NewReader(encode(t, e.brand.key, rows)))
	if status(err) != 400 || !strings.Contains(err.Error(), "1 people who can match") {
		t.Errorf("1,200 people with one consented: %v", err)
	}
}

func TestDeletedCollaborationStaysDeleted(t *testing.T) {
	e := newEnv(t, queryRules)
	ctx := context.Background()
	if st, body := e.post(e.brand.admin.Key, "/v1/collaborations/"+e.collab, nil, "DELETE"); st != 200 {
		t.Fatalf("delete: %d %s", st, body)
	}
	if _, err := e.brand.admin.ChangeRules(ctx, e.collab, json.RawMessage(queryRules)); status(err) != 409 {
		t.Errorf("rules change of a deleted collaboration: %v", err)
	}
	if _, err := e.pub.admin.Approve(ctx, e.collab, 0); status(err) != 409 {
		t.Errorf("approval of a deleted collaboration: %v", err)
	}
	if co, _ := e.brand.admin.Collaboration(ctx, e.collab); co.State != "deleted" {
		t.Errorf("collaboration is %s", co.State)
	}
	if st, _ := e.post(e.brand.admin.Key, "/v1/collaborations/"+e.collab, nil, "DELETE"); st != 409 {
		t.Errorf("deleting it again: %d", st)
	}
}

// One partner's name is a prefix of the other's: a column's side must come
// from where it was built, not from the longest matching prefix.
func TestCohortColumnSideIsRecorded(t *testing.T) {
	rules := `{"purpose": "measurement", "min_upload_users": 1000, "min_group_users": 0, "epsilon_budget": 1000, "max_query_epsilon": 1000,
		"metrics": {"brand_co_value": [0, 10]}}`
	e := newEnvNamed(t, rules, "Brand", "Brand Co")
	// Brand (prefix brand_) has two rows of co_value 1 per person; Brand Co
	// (prefix brand_co_) one row of amount 0. brand_co_value is Brand's
	// co_value, summed per person over Brand's two rows: 2 each.
	var brand, other []row
	for k := 0; k < 1200; k++ {
		brand = append(brand, row{person: k, value: 1, label: "x", consent: []string{"measurement"}}, row{person: k, value: 1, label: "y", consent: []string{"measurement"}})
		other = append(other, row{person: k, value: 0, label: "z", consent: []string{"measurement"}})
	}
	ctx := context.Background()
	if _, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encodeNamed(t, e.brand.key, brand, "co_value"))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.eng.Upload(ctx, e.collab, bytes.NewReader(encodeNamed(t, e.pub.key, other, "amount"))); err != nil {
		t.Fatal(err)
	}
	e.matchBoth()
	st, body, _ := e.ask(e.brand.analyst.Key, `SELECT SUM(brand_co_value) FROM cohort`, 900, "")
	var a struct {
		Rows [][]float64 `json:"rows"`
	}
	if st != 200 || json.Unmarshal(body, &a) != nil || len(a.Rows) != 1 {
		t.Fatalf("query: %d %s", st, body)
	}
	// Noise at epsilon 450 per part on a [0, 10] bound is a few hundredths.
	if got := a.Rows[0][0]; got < 2400-5 || got > 2400+5 {
		t.Errorf("SUM(brand_co_value) = %v, want about 2400: the column was read as the other party's", got)
	}
}

// Brand's co_region and Brand Co's region would both be brand_co_region:
// the match is refused before it starts, naming both columns, rather than
// one of them renamed (by DuckDB, or to a_/b_ names the rules never
// mention). Once Brand renames its column, the match runs and both
// columns keep their partners' prefixes.
func TestCohortColumnNamesNeverCollide(t *testing.T) {
	rules := `{"purpose": "measurement", "min_upload_users": 1000, "min_group_users": 0, "epsilon_budget": 1000, "max_query_epsilon": 1000,
		"dimensions": ["brand_co_region", "brand_tier"]}`
	e := newEnvNamed(t, rules, "Brand", "Brand Co")
	var brand, other []row
	for k := 0; k < 1200; k++ {
		brand = append(brand, row{person: k, value: 1, label: "north", consent: []string{"measurement"}})
		other = append(other, row{person: k, value: 0, label: "south", consent: []string{"measurement"}})
	}
	ctx := context.Background()
	uploaded := map[string]bool{}
	upload := func(p party, rows []row, value, label string) {
		t.Helper()
		if _, err := p.eng.UploadTable(ctx, e.collab, bytes.NewReader(encodeTable(t, p.key, rows, value, label, true)),
			client.UploadOptions{Replace: uploaded[p.id]}); err != nil {
			t.Fatal(err)
		}
		uploaded[p.id] = true
	}
	upload(e.brand, brand, "tier", "co_region")
	upload(e.pub, other, "amount", "region")
	for _, p := range []party{e.brand, e.pub} {
		st, body := e.post(p.eng.Key, "/v1/collaborations/"+e.collab+"/matches", nil, "POST")
		if st != http.StatusConflict {
			t.Fatalf("match of colliding columns: %d %s", st, body)
		}
		for _, want := range []string{"brand_co_region", "Brand's column co_region (table audience", "Brand Co's column region (table audience"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("the refusal %s does not say %q", body, want)
			}
		}
	}
	if n := e.count(`SELECT count(*) FROM matches`); n != 0 {
		t.Errorf("a refused match left %d matches", n)
	}
	upload(e.brand, brand, "tier", "home_region")
	e.matchBoth()
	st, body, _ := e.ask(e.pub.analyst.Key, `SELECT brand_co_region, COUNT(*) FROM cohort GROUP BY brand_co_region`, 900, "")
	if st != 200 || !strings.Contains(string(body), `"south"`) || strings.Contains(string(body), `"north"`) {
		t.Errorf("brand_co_region is not Brand Co's region: %d %s", st, body)
	}

	// Rules declaring such columns are refused when proposed; rules an
	// older version stored with them leave the collaboration readable
	// (to change them), and a question is refused naming both columns.
	colliding := `{"purpose": "measurement", "min_upload_users": 1000, "tables": [
		{"party": "proposer", "name": "audience", "columns": [{"name": "co_region", "role": "dimension"}]},
		{"party": "partner", "name": "audience", "columns": [{"name": "region", "role": "dimension"}]}]}`
	if _, err := e.brand.admin.Propose(ctx, "again", e.pub.id, json.RawMessage(colliding)); status(err) != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "analysts would name two columns brand_co_region: Brand's column co_region (table audience, prefix brand_) and Brand Co's column region (table audience, prefix brand_co_)") {
		t.Errorf("proposing colliding columns: %v", err)
	}
	if _, err := e.db.SQL().Exec(`UPDATE collaborations SET rules = ? WHERE id = ?`, colliding, e.collab); err != nil {
		t.Fatal(err)
	}
	co, err := e.brand.admin.Collaboration(ctx, e.collab)
	if err != nil || co.Queryable != nil {
		t.Errorf("reading rules stored with colliding columns: %+v %v", co.Queryable, err)
	}
	st, body, _ = e.ask(e.pub.analyst.Key, `SELECT COUNT(*) FROM cohort`, 1, "")
	if st != http.StatusConflict || !strings.Contains(string(body), "Brand's column co_region (table audience") {
		t.Errorf("a question under rules whose columns collide: %d %s", st, body)
	}
}

// A party waiting in `match` when the other deletes people carries on with
// a new match by itself.
func TestWaitingMatchStartsOverAfterADeletion(t *testing.T) {
	e := newEnv(t, queryRules)
	want := e.uploadBoth()
	ctx := context.Background()
	type result struct {
		id, state string
		err       error
	}
	done := make(chan result, 1)
	go func() {
		m, err := e.brand.eng.DoMatch(ctx, e.collab, e.brand.key, client.MatchOptions{Poll: 20e6})
		done <- result{m.ID, string(m.State), err}
	}()
	// Wait until the brand's half is in, then delete one of the publisher's people.
	var first string
	for i := 0; ; i++ {
		m, err := e.pub.eng.StartMatch(ctx, e.collab)
		if err != nil {
			t.Fatal(err)
		}
		if m.HalfB {
			first = m.ID
			break
		}
		if i > 500 {
			t.Fatal("the brand's half never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, body := e.post(e.pub.eng.Key, "/v1/collaborations/"+e.collab+"/deletions", map[string]any{"pids": []string{blinded(t, e.pub.key, inBoth)}}, "POST"); st != 200 {
		t.Fatalf("deletion: %d %s", st, body)
	}
	// The publisher's half of the void match is refused as stale.
	if err := e.pub.eng.ReblindPoints(ctx, e.collab, first, e.pub.key, client.MatchOptions{}); !errors.Is(err, client.ErrStaleMatch) {
		t.Errorf("points for a void match: %v", err)
	}
	m, err := e.pub.eng.DoMatch(ctx, e.collab, e.pub.key, client.MatchOptions{Poll: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.state != "done" || r.id != m.ID || r.id == first {
		t.Fatalf("the brand's match ended %+v; the publisher's is %s (the void one %s)", r, m.ID, first)
	}
	if got := e.exactCohortSize(m.ID); got != int64(want-1) {
		t.Errorf("cohort has %d people, want %d", got, want-1)
	}
}
