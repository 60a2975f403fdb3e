package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

func blinded(t *testing.T, key *psi.Key, person int) string {
	h, _ := psi.NewHasher(psi.Email)
	norm, _ := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	d, _ := norm.Digest(fmt.Sprintf("person%d@example.com", person))
	p, err := key.Blind(h.Hash(d[:]))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(p[:])
}

func (e *env) post(key, path string, body any, method string) (int, []byte) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func (e *env) count(q string, args ...any) int64 {
	var n int64
	if err := e.db.SQL().QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) verifyReceipt(body []byte) audit.Receipt {
	e.t.Helper()
	var r audit.Receipt
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatalf("receipt %s: %v", body, err)
	}
	var buf bytes.Buffer
	if err := e.op.AuditExport(context.Background(), &buf); err != nil {
		e.t.Fatal(err)
	}
	entries, head, err := audit.ReadExport(&buf)
	if err != nil {
		e.t.Fatal(err)
	}
	pub := e.signerPub()
	if err := audit.Verify(entries, head, pub); err != nil {
		e.t.Fatal(err)
	}
	if err := audit.VerifyReceipt(pub, r, entries); err != nil {
		e.t.Errorf("receipt does not verify: %v", err)
	}
	tampered := r
	tampered.AudienceRows++
	if err := audit.VerifyReceipt(pub, tampered, entries); err == nil {
		e.t.Error("a tampered receipt verifies")
	}
	return r
}

func (e *env) signerPub() []byte {
	k, err := e.op.AuditPublicKey(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	pub, err := audit.ParsePublicKey(k)
	if err != nil {
		e.t.Fatal(err)
	}
	return pub
}

func TestDeleteIdentifiersEverywhereWithReceipt(t *testing.T) {
	e := newEnv(t, queryRules)
	want := e.uploadBoth()
	mid, _ := e.matchBoth()
	// Person 1003 is in both audiences and consented on both sides.
	pidA, _ := base64.StdEncoding.DecodeString(blinded(t, e.brand.key, 1003))
	before := e.linkedPeople(mid)
	if before != int64(want) || e.count(`SELECT count(*) FROM cpeople_`+mid+` WHERE pid_a = ?`, pidA) != 1 {
		t.Fatalf("setup: cohort %d, want %d with person 1003", before, want)
	}
	// A query before the deletion, to see the cache and budget after it.
	q := `SELECT COUNT(*) FROM cohort`
	_, b1, _ := e.ask(e.brand.analyst.Key, q, 0.5, "")

	st, body := e.post(e.brand.eng.Key, "/v1/collaborations/"+e.collab+"/deletions", map[string]any{"pids": []string{blinded(t, e.brand.key, 1003)}}, "POST")
	if st != 200 {
		t.Fatalf("deletion: %d %s", st, body)
	}
	r := e.verifyReceipt(body)
	if r.Kind != "identifiers" || r.AudienceRows != 1 || r.Tokens != 1 || r.Cohorts != audit.CohortsRowsRemoved {
		t.Errorf("receipt %+v: want 1 audience row, 1 token and the fixed cohort statement", r)
	}
	// Gone from the audience, the people map, the tokens and the cohort,
	// checked in the database itself.
	aud := e.count(`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'aud\_%' ESCAPE '\'`)
	if aud != 2 {
		t.Fatalf("%d audience tables", aud)
	}
	var brandTable string
	e.db.SQL().QueryRow(`SELECT table_name FROM audiences WHERE partner_id = ? AND deleted_at IS NULL`, e.brand.id).Scan(&brandTable)
	if n := e.count(`SELECT count(*) FROM `+brandTable+` WHERE pid = ?`, pidA); n != 0 {
		t.Errorf("%d audience rows left", n)
	}
	if n := e.count(`SELECT count(*) FROM cpeople_`+mid+` WHERE pid_a = ?`, pidA); n != 0 {
		t.Errorf("person still in the people map")
	}
	if n := e.count(`SELECT count(*) FROM mpts_`+mid+`_a WHERE pid = ?`, pidA); n != 0 {
		t.Errorf("point still in the match's points")
	}
	if n := e.linkedPeople(mid); n != before-1 {
		t.Errorf("cohort has %d people, want %d", n, before-1)
	}
	// Queries see the new cohort: the same question is not served from the
	// old cache, and the budget keeps what was spent.
	_, b2, _ := e.ask(e.brand.analyst.Key, q, 0.5, "")
	var a1, a2 struct {
		Cached          bool
		CohortVersion   string  `json:"cohort_version"`
		BudgetRemaining float64 `json:"budget_remaining"`
	}
	json.Unmarshal(b1, &a1)
	json.Unmarshal(b2, &a2)
	if a2.Cached || a2.CohortVersion == a1.CohortVersion || a2.BudgetRemaining >= a1.BudgetRemaining {
		t.Errorf("after deletion: %+v (before %+v)", a2, a1)
	}
}

func TestOptOutAppliesToCohortsAndLaterUploads(t *testing.T) {
	e := newEnv(t, queryRules)
	e.uploadBoth()
	mid, _ := e.matchBoth()
	pidB, _ := base64.StdEncoding.DecodeString(blinded(t, e.pub.key, 1002))
	people := e.linkedPeople(mid)
	st, body := e.post(e.pub.eng.Key, "/v1/collaborations/"+e.collab+"/optouts", map[string]any{"pids": []string{blinded(t, e.pub.key, 1002)}}, "POST")
	if st != 200 {
		t.Fatalf("optout: %d %s", st, body)
	}
	if r := e.verifyReceipt(body); r.Kind != "optout" || r.AudienceRows != 1 || r.Tokens != 1 {
		t.Errorf("receipt %+v", r)
	}
	if n := e.linkedPeople(mid); n != people-1 {
		t.Errorf("existing cohort: %d people, want %d", n, people-1)
	}
	// The publisher uploads the same list again: the person stays out, and
	// the next cohort does not have them.
	_, pub, _ := audiences()
	a, err := e.pub.eng.UploadTable(context.Background(), e.collab, bytes.NewReader(encode(t, e.pub.key, pub)), client.UploadOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Rows != int64(len(pub)-1) {
		t.Errorf("re-upload stored %d rows, want %d (opted-out person left out)", a.Rows, len(pub)-1)
	}
	mid2, _ := e.matchBoth()
	if n := e.count(`SELECT count(*) FROM cpeople_`+mid2+` WHERE pid_b = ?`, pidB); n != 0 {
		t.Error("opted-out person matched again")
	}
	if n := e.linkedPeople(mid2); n != people-1 {
		t.Errorf("new cohort %d, want %d", n, people-1)
	}
}

func TestDeleteAudienceAndCollaboration(t *testing.T) {
	e := newEnv(t, queryRules)
	e.uploadBoth()
	mid, _ := e.matchBoth()
	var aid string
	e.db.SQL().QueryRow(`SELECT id FROM audiences WHERE partner_id = ? AND deleted_at IS NULL`, e.pub.id).Scan(&aid)
	// The other party cannot delete it.
	if st, _ := e.post(e.brand.eng.Key, "/v1/collaborations/"+e.collab+"/audiences/"+aid, nil, "DELETE"); st != 404 {
		t.Errorf("brand deleting the publisher's audience: %d", st)
	}
	st, body := e.post(e.pub.eng.Key, "/v1/collaborations/"+e.collab+"/audiences/"+aid, nil, "DELETE")
	if st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	r := e.verifyReceipt(body)
	if r.AudienceRows != 1200 || r.Matches != 1 || r.Cohorts != audit.CohortsDeleted {
		t.Errorf("receipt %+v", r)
	}
	if n := e.count(`SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('cpeople_` + mid + `', 'mtok_` + mid + `_a') OR starts_with(table_name, 'clink_` + mid + `')`); n != 0 {
		t.Errorf("%d match tables survive the audience's deletion", n)
	}
	st, body = e.post(e.brand.admin.Key, "/v1/collaborations/"+e.collab, nil, "DELETE")
	if st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	if r := e.verifyReceipt(body); r.Kind != "collaboration" || r.AudienceRows == 0 {
		t.Errorf("receipt %+v", r)
	}
	if n := e.count(`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'aud\_%' ESCAPE '\'`); n != 0 {
		t.Errorf("%d audience tables after deleting the collaboration", n)
	}
	co, _ := e.brand.admin.Collaboration(context.Background(), e.collab)
	if co.State != "deleted" {
		t.Errorf("collaboration is %s", co.State)
	}
}

func TestRetentionJanitorSurvivesRestart(t *testing.T) {
	e := newEnv(t, queryRules)
	brand, _, _ := audiences()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/collaborations/"+e.collab+"/audiences?retention=1ms", bytes.NewReader(encode(t, e.brand.key, brand)))
	req.Header.Set("Authorization", "Bearer "+e.brand.eng.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload with retention: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	// The server stops before any janitor ran; after the restart the
	// janitor finds the expired audience in the database.
	var expires time.Time
	if err := e.db.SQL().QueryRow(`SELECT expires_at FROM audience_retention`).Scan(&expires); err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.start()
	n, err := e.server.Expire(context.Background(), time.Now())
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if n := e.count(`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'aud\_%' ESCAPE '\'`); n != 0 {
		t.Errorf("expired audience's table survives")
	}
	raw, _ := e.brand.audit.AuditLog(context.Background(), url.Values{"action": {"deletion.expiry"}})
	if !strings.Contains(string(raw), `"receipt_id"`) {
		t.Errorf("no expiry receipt in the log: %s", raw)
	}
	// The expiry was due when the retention ran out: its time to honour
	// counts from then.
	rep, err := e.brand.audit.Report(context.Background(), e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if h := rep.Honoured; len(h) != 1 || h[0].Kind != "expiry" || !h[0].RequestedAt.Equal(expires) || h[0].Seconds != int64(h[0].HonouredAt.Sub(expires)/time.Second) {
		t.Errorf("the expiry honoured: %+v, want requested at %v", h, expires)
	}
	if n, _ := e.server.Expire(context.Background(), time.Now()); n != 0 {
		t.Errorf("a second janitor run deleted %d again", n)
	}
}

func TestAccessRequestAndReport(t *testing.T) {
	e := newQueryEnv(t)
	e.ask(e.brand.analyst.Key, `SELECT COUNT(*) FROM cohort`, 0.5, "")
	e.ask(e.brand.analyst.Key, `SELECT uid FROM cohort`, 0.5, "")
	path := "/v1/collaborations/" + e.collab + "/access-requests"
	// Person 1002 is the brand's customer (two rows: even) and in the cohort.
	st, body := e.post(e.brand.eng.Key, path, map[string]string{"pid": blinded(t, e.brand.key, 1002)}, "POST")
	var ar struct {
		Rows      []map[string]any `json:"rows"`
		Matchable bool             `json:"matchable"`
		OptedOut  bool             `json:"opted_out"`
		Cohorts   string           `json:"cohorts"`
	}
	json.Unmarshal(body, &ar)
	if st != 200 || len(ar.Rows) != 2 || !ar.Matchable || ar.OptedOut || ar.Rows[0]["label"] != "region2" || ar.Cohorts != wire.NotDisclosed {
		t.Errorf("access request: %d %s", st, body)
	}
	if strings.Contains(string(body), "m_") || strings.Contains(string(body), "in_cohorts") {
		t.Errorf("the access request names a match: %s", body)
	}
	if _, ok := ar.Rows[0]["pid"]; ok {
		t.Error("the access request returns the point")
	}
	// Someone the brand does not hold: nothing.
	st, body = e.post(e.brand.eng.Key, path, map[string]string{"pid": blinded(t, e.brand.key, 99999)}, "POST")
	ar.Rows, ar.Matchable = nil, false
	json.Unmarshal(body, &ar)
	if st != 200 || len(ar.Rows) != 0 || ar.Matchable {
		t.Errorf("unknown person: %d %s", st, body)
	}
	e.post(e.pub.eng.Key, "/v1/collaborations/"+e.collab+"/optouts", map[string]any{"pids": []string{blinded(t, e.pub.key, 1002)}}, "POST")
	st, body = e.post(e.pub.eng.Key, path, map[string]string{"pid": blinded(t, e.pub.key, 1002)}, "POST")
	if st != 200 || !strings.Contains(string(body), `"opted_out":true`) {
		t.Errorf("after opt-out: %d %s", st, body)
	}

	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/collaborations/"+e.collab+"/report", nil)
	req.Header.Set("Authorization", "Bearer "+e.pub.audit.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]json.RawMessage
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	for _, k := range []string{"data_held", "matches", "queries_by_analyst", "budget_spent_by_day", "refusals_by_reason", "deletions", "honoured", "exposure"} {
		if len(rep[k]) == 0 || string(rep[k]) == "null" {
			t.Errorf("report lacks %s", k)
		}
	}
	for k, want := range map[string]string{"refusals_by_reason": `"hidden_column"`, "deletions": `"optout"`, "data_held": `"measurement"`,
		"queries_by_analyst": `"queries":1`, "honoured": `"kind":"optout"`} {
		if !strings.Contains(string(rep[k]), want) {
			t.Errorf("report %s = %s, want %s", k, rep[k], want)
		}
	}
	if !strings.Contains(string(rep["queries_by_analyst"]), `"analyst_label":"analyst"`) {
		t.Errorf("the report does not name the analyst key by its label: %s", rep["queries_by_analyst"])
	}
	// Two matches' 0.1 each and the brand's query of 0.5: what a person in
	// the cohort is exposed to.
	if got := string(rep["exposure"]); !strings.Contains(got, `"collaboration_epsilon_spent":0.7`) {
		t.Errorf("report exposure %s, want epsilon 0.7", got)
	}
	if strings.Contains(string(rep["matches"]), `"cohort_size"`) {
		t.Error("the report holds the exact cohort size")
	}
}

// TestIdentifiersWithAnotherKeyAreRefused: a deletion, an opt-out or an
// access request whose identifiers were blinded with another key than the
// party's tables would find no one, and its receipt would read as if the
// people were not there. It is refused (409 key_mismatch, naming both
// fingerprints) and nothing is deleted, recorded or logged; with the
// right key each works.
func TestIdentifiersWithAnotherKeyAreRefused(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	brand, _, _ := audiences()
	if _, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand)), client.UploadOptions{Key: e.brand.key}); err != nil {
		t.Fatal(err)
	}
	other, err := psi.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The person, blinded with each key: the points differ, so only the
	// fingerprint tells the server which key made them.
	wrong, right := blindedPoints(t, other, 3), blindedPoints(t, e.brand.key, 3)
	var table string
	if err := e.db.SQL().QueryRow(`SELECT table_name FROM audiences WHERE partner_id = ? AND deleted_at IS NULL`, e.brand.id).Scan(&table); err != nil {
		t.Fatal(err)
	}
	rows, log := e.count(`SELECT count(*) FROM `+table), e.auditCount()
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, client.ErrKeyMismatch) || status(err) != 409 ||
			!strings.Contains(err.Error(), psi.ShortFingerprint(other.Fingerprint())) || !strings.Contains(err.Error(), psi.ShortFingerprint(e.brand.key.Fingerprint())) {
			t.Fatalf("%s with another key: %v, want 409 key_mismatch naming both fingerprints", what, err)
		}
	}
	_, err = e.brand.eng.DeleteIDs(ctx, e.collab, other, wrong, false)
	refused("a deletion", err)
	_, err = e.brand.eng.DeleteIDs(ctx, e.collab, other, wrong, true)
	refused("an opt-out", err)
	_, err = e.brand.eng.AccessRequest(ctx, e.collab, other, wrong[0])
	refused("an access request", err)
	if n := e.count(`SELECT count(*) FROM receipts`); n != 0 {
		t.Errorf("%d receipts after refusals, want none", n)
	}
	if n := e.count(`SELECT count(*) FROM optouts`); n != 0 {
		t.Errorf("%d opt-outs after a refused one, want none", n)
	}
	if n := e.auditCount(); n != log {
		t.Errorf("the refusals logged %d entries", n-log)
	}
	if n := e.count(`SELECT count(*) FROM ` + table); n != rows {
		t.Errorf("rows %d -> %d after refused deletions", rows, n)
	}
	// The right key finds the person.
	r, err := e.brand.eng.DeleteIDs(ctx, e.collab, e.brand.key, right, false)
	if err != nil || r.AudienceRows == 0 {
		t.Fatalf("deletion with the uploading key: %+v, %v; want the person's rows deleted", r, err)
	}
	if _, err := e.brand.eng.AccessRequest(ctx, e.collab, e.brand.key, right[0]); err != nil {
		t.Fatal(err)
	}
	// A party with no table yet may opt people out first: nothing to check against.
	if _, err := e.pub.eng.DeleteIDs(ctx, e.collab, other, blindedPoints(t, other, 4), true); err != nil {
		t.Errorf("an opt-out before any upload: %v", err)
	}
}
