package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// The routes the console needs beyond the CLI's: who a key is, an
// analyst's own history, rejecting a rules change, newest-first audit
// pages and the public privacy report.

func TestMeSaysWhoTheKeyIs(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	me, err := e.brand.analyst.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.Role != wire.Analyst || me.PartnerID != e.brand.id || me.PartnerName != "Brand Co" || me.Operator || me.Label != "analyst" {
		t.Errorf("the brand's analyst is %+v", me)
	}
	op, err := e.op.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !op.Operator || op.Role != wire.Admin {
		t.Errorf("the operator's key is %+v", op)
	}
	co, err := e.pub.eng.Collaboration(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if co.ProposerName != "Brand Co" || co.PartnerName != "Publisher" {
		t.Errorf("the collaboration names its partners %q and %q", co.ProposerName, co.PartnerName)
	}
}

func TestRejectingAChangeRestoresTheApprovedRules(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	// A first proposal has nothing to go back to.
	first, err := e.brand.admin.Propose(ctx, "other", e.pub.id, json.RawMessage(testRules))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.admin.Reject(ctx, first.ID, 0); status(err) != http.StatusConflict || !strings.Contains(err.Error(), "delete the collaboration") {
		t.Errorf("rejecting a first proposal: %v, want 409 saying to delete it", err)
	}
	co, err := e.brand.admin.ChangeRules(ctx, e.collab, json.RawMessage(`{"purpose": "measurement", "min_upload_users": 1000, "dimensions": ["brand_co_label"], "metrics": {"brand_co_value": [0, 100]}, "epsilon_budget": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	if co.ApprovedRules == nil || co.ApprovedRules.EpsilonBudget != 10 || co.Rules.EpsilonBudget != 3 {
		t.Fatalf("a pending change shows approved rules %+v beside %g", co.ApprovedRules, co.Rules.EpsilonBudget)
	}
	// Both partners see what the change would replace.
	if got, err := e.pub.audit.Collaboration(ctx, e.collab); err != nil || got.ApprovedRules == nil || got.ApprovedRules.EpsilonBudget != 10 {
		t.Errorf("the other partner's view of the pending change: %+v, %v", got.ApprovedRules, err)
	}
	// The proposer cannot reject its own change; a stale version is refused.
	if _, err := e.brand.admin.Reject(ctx, e.collab, 0); status(err) != http.StatusConflict || !strings.Contains(err.Error(), "wait") {
		t.Errorf("the proposer rejecting its own change: %v, want 409 saying to wait or propose again", err)
	}
	if _, err := e.pub.admin.Reject(ctx, e.collab, co.RulesVersion-1); status(err) != http.StatusConflict {
		t.Errorf("rejecting a stale version: %v, want 409", err)
	}
	if _, err := e.pub.eng.Reject(ctx, e.collab, 0); status(err) != http.StatusForbidden {
		t.Errorf("an engineer rejecting: %v, want 403", err)
	}
	got, err := e.pub.admin.Reject(ctx, e.collab, co.RulesVersion)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != wire.StateActive || got.Rules.EpsilonBudget != 10 || got.RulesVersion != co.RulesVersion+1 || got.ApprovedRules != nil || len(got.ApprovedBy) != 2 {
		t.Errorf("after the rejection: %+v", got)
	}
	if _, err := e.pub.admin.Reject(ctx, e.collab, 0); status(err) != http.StatusConflict {
		t.Errorf("rejecting with nothing pending: %v, want 409", err)
	}
	raw, err := e.brand.audit.AuditLog(ctx, url.Values{"action": {"collaboration.reject_rules"}})
	if err != nil || !strings.Contains(string(raw), `"rejected_version":`+itoa(co.RulesVersion)) || !strings.Contains(string(raw), `"epsilon_budget":10`) {
		t.Errorf("the log does not record the rejection and the rules it restored: %s %v", raw, err)
	}
	// The restored rules are in force: a query is answered under them.
	if got, err := e.brand.analyst.Collaboration(ctx, e.collab); err != nil || got.State != wire.StateActive || got.ApprovedRules != nil {
		t.Errorf("after the rejection the analyst reads %+v, %v", got, err)
	}
}

func TestBudgetNamesItsPartnersAndNextRefresh(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	read := func() (wire.BudgetStatus, string) {
		t.Helper()
		raw, err := e.brand.audit.Budget(ctx, e.collab)
		if err != nil {
			t.Fatal(err)
		}
		var b wire.BudgetStatus
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		return b, string(raw)
	}
	b, raw := read()
	names := map[string]string{}
	for _, x := range b.Budgets {
		names[x.PartnerID] = x.PartnerName
	}
	if names[e.brand.id] != "Brand Co" || names[e.pub.id] != "Publisher" {
		t.Errorf("budgets name their partners %v", names)
	}
	if strings.Contains(raw, "next_refresh") {
		t.Errorf("a budget that never refreshes has a next refresh: %s", raw)
	}
	co, err := e.brand.admin.ChangeRules(ctx, e.collab, json.RawMessage(`{"purpose": "measurement", "min_upload_users": 1000, "dimensions": ["brand_co_label"], "metrics": {"brand_co_value": [0, 100]}, "budget_refresh": "monthly"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.admin.Approve(ctx, e.collab, co.RulesVersion); err != nil {
		t.Fatal(err)
	}
	b, _ = read()
	now := time.Now().UTC()
	for _, x := range b.Budgets {
		next := x.NextRefresh
		if next == nil || !next.Equal(x.PeriodStart.AddDate(0, 1, 0)) || next.Day() != 1 || next.Hour() != 0 || !next.After(now) || x.PeriodStart.After(now) {
			t.Errorf("%s: period from %v, next refresh %v; want the first of next month (UTC)", x.PartnerName, x.PeriodStart, next)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestQueryHistoryIsTheKeysOwn(t *testing.T) {
	e := newQueryEnv(t)
	ctx := context.Background()
	q := `SELECT brand_co_label, COUNT(*) AS people FROM cohort GROUP BY brand_co_label`
	for _, s := range []string{q, q, `SELECT nope FROM cohort`} {
		if st, body, _ := e.ask(e.brand.analyst.Key, s, 0.5, ""); st != 200 && !strings.Contains(s, "nope") {
			t.Fatalf("%d %s", st, body)
		}
	}
	// Another analyst of the same partner asks too, and the other
	// partner's.
	k, err := e.brand.admin.CreateKey(ctx, e.brand.id, "analyst", "second")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{k.Secret, e.pub.analyst.Key} {
		if st, body, _ := e.ask(key, `SELECT COUNT(*) AS n FROM cohort`, 0.2, ""); st != 200 {
			t.Fatalf("%d %s", st, body)
		}
	}
	h, err := e.brand.analyst.QueryHistory(ctx, e.collab, 0)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, r := range h.Queries {
		outcomes = append(outcomes, r.Outcome)
		if strings.Contains(r.SQL, "AS n") {
			t.Errorf("the history shows another key's query: %s", r.SQL)
		}
	}
	if strings.Join(outcomes, ",") != "refused,cached,answered" {
		t.Errorf("outcomes newest first: %v, want refused,cached,answered", outcomes)
	}
	if r := h.Queries[0]; r.Code == "" || r.Reason == "" {
		t.Errorf("a refusal without its code or reason: %+v", r)
	}
	if r := h.Queries[2]; r.Epsilon != 0.5 || r.Rows == 0 || r.SQL != q {
		t.Errorf("the answered query: %+v", r)
	}
	if h, err := e.brand.analyst.QueryHistory(ctx, e.collab, 1); err != nil || len(h.Queries) != 1 {
		t.Errorf("limit 1: %d queries, %v", len(h.Queries), err)
	}
	if _, err := e.brand.audit.QueryHistory(ctx, e.collab, 0); status(err) != http.StatusForbidden {
		t.Errorf("an auditor asking for a history: %v, want 403", err)
	}
	for _, bad := range []string{"0", "1001", "ten"} {
		st, msg := getError(t, e, e.brand.analyst.Key, "/v1/collaborations/"+e.collab+"/queries?limit="+bad)
		if st != 400 || !strings.Contains(msg, "limit") {
			t.Errorf("limit=%s: %d %q, want 400 naming limit", bad, st, msg)
		}
	}
}

// getError makes a GET that should fail and returns its status and the
// error's message.
func getError(t *testing.T, e *env, key, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body wire.ErrorBody
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Message
}

func TestAuditPagesNewestFirst(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	page := func(v url.Values) []int64 {
		t.Helper()
		raw, err := e.brand.audit.AuditLog(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Entries []struct {
				Seq int64 `json:"seq"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, x := range l.Entries {
			seqs = append(seqs, x.Seq)
		}
		return seqs
	}
	all := page(url.Values{})
	first := page(url.Values{"order": {"desc"}, "limit": {"3"}})
	if len(all) < 6 || len(first) != 3 || first[0] != all[len(all)-1] || first[2] != all[len(all)-3] {
		t.Fatalf("newest first: %v of %v", first, all)
	}
	next := page(url.Values{"order": {"desc"}, "limit": {"3"}, "before": {itoa(int(first[2]))}})
	if len(next) == 0 || next[0] != all[len(all)-4] {
		t.Errorf("the next page back: %v of %v", next, all)
	}
	// Oldest first, the default, pages forward the same way back.
	if asc := page(url.Values{"order": {"asc"}, "before": {itoa(int(all[3]))}}); len(asc) != 3 || asc[0] != all[0] {
		t.Errorf("entries before %d, oldest first: %v", all[3], asc)
	}
	for _, bad := range []url.Values{{"order": {"sideways"}}, {"before": {"0"}}, {"before": {"x"}}} {
		if _, err := e.brand.audit.AuditLog(ctx, bad); status(err) != 400 {
			t.Errorf("%v: %v, want 400", bad, err)
		}
	}
}

func TestPrivacyReport(t *testing.T) {
	e := newQueryEnv(t)
	ctx := context.Background()
	if st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) AS n FROM cohort`, 0.5, ""); st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	if _, err := e.brand.eng.DeleteIDs(ctx, e.collab, e.brand.key, blindedPoints(t, e.brand.key, 3, 5), false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.brand.eng.DeleteIDs(ctx, e.collab, e.brand.key, blindedPoints(t, e.brand.key, 8), true); err != nil {
		t.Fatal(err)
	}
	rep, err := e.brand.audit.PrivacyReport(ctx, e.brand.id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PartnerName != "Brand Co" || len(rep.Collaborations) != 1 || rep.IdentifiersInTheClear != 0 {
		t.Fatalf("report: %+v", rep)
	}
	c := rep.Collaborations[0]
	if c.PartnerName != "Publisher" || c.Purpose != "measurement" || c.Queries != 1 || c.Matches != 1 || c.EpsilonSpent < 0.5 {
		t.Errorf("collaboration: %+v", c)
	}
	if rep.DeletionsHonoured != 1 || rep.OptOutsHonoured != 1 || rep.IdentifiersSubmitted != 3 || rep.MedianSecondsToHonour == nil {
		t.Errorf("honoured: %+v", rep)
	}
	// The publisher's report has none of the brand's deletions.
	pub, err := e.pub.admin.PrivacyReport(ctx, e.pub.id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if pub.DeletionsHonoured+pub.OptOutsHonoured != 0 || pub.MedianSecondsToHonour != nil {
		t.Errorf("the publisher's report counts the brand's deletions: %+v", pub)
	}
	// A period before anything happened counts nothing.
	old, err := e.brand.admin.PrivacyReport(ctx, e.brand.id, time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(old.Collaborations) != 0 || old.DeletionsHonoured != 0 {
		t.Errorf("last year's report: %+v", old)
	}
	if _, err := e.brand.audit.PrivacyReport(ctx, e.pub.id, time.Time{}, time.Time{}); status(err) != http.StatusNotFound {
		t.Errorf("the brand's auditor reading the publisher's report: %v, want 404", err)
	}
	if _, err := e.brand.analyst.PrivacyReport(ctx, e.brand.id, time.Time{}, time.Time{}); status(err) != http.StatusForbidden {
		t.Errorf("an analyst reading the privacy report: %v, want 403", err)
	}
	_, err = e.brand.admin.PrivacyReport(ctx, e.brand.id, time.Now(), time.Now().AddDate(0, -1, 0))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Message, "since") {
		t.Errorf("since after until: %v, want 400 naming since", err)
	}
	// The report's honoured deletions are the reader's partner's own.
	r, err := e.pub.audit.Report(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Honoured) != 0 {
		t.Errorf("the publisher's report shows the brand's deletion timings: %+v", r.Honoured)
	}
	r, err = e.brand.audit.Report(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Honoured) != 2 || r.Honoured[0].RequestedAt.After(r.Honoured[0].HonouredAt) || r.Honoured[0].Identifiers != 2 {
		t.Errorf("the brand's report: honoured %+v", r.Honoured)
	}
	for _, h := range r.Honoured {
		if h.PartnerID != e.brand.id || h.Seconds != int64(h.HonouredAt.Sub(h.RequestedAt)/time.Second) {
			t.Errorf("honoured %+v", h)
		}
	}
	// The operator reads every partner's.
	if _, err := e.pub.eng.DeleteIDs(ctx, e.collab, e.pub.key, blindedPoints(t, e.pub.key, 1100), true); err != nil {
		t.Fatal(err)
	}
	r, err = e.op.Report(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, h := range r.Honoured {
		by[h.PartnerID]++
	}
	if by[e.brand.id] != 2 || by[e.pub.id] != 1 {
		t.Errorf("the operator's report honours %v, want 2 of the brand's and 1 of the publisher's", by)
	}
}

func TestPrivacyReportPeriod(t *testing.T) {
	e := newQueryEnv(t)
	ctx := context.Background()
	matched := time.Now()
	// Audit times are whole seconds: the query goes in the next one.
	time.Sleep(time.Until(matched.Truncate(time.Second).Add(time.Second)))
	if st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) AS n FROM cohort`, 0.5, ""); st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	// Up to the match: the match's 0.1 charged to each partner, no query.
	rep, err := e.brand.admin.PrivacyReport(ctx, e.brand.id, time.Time{}, matched)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Collaborations) != 1 || rep.Collaborations[0].EpsilonSpent != 0.2 || rep.Collaborations[0].Queries != 0 || rep.Collaborations[0].Matches != 1 {
		t.Errorf("the report up to the match: %+v", rep.Collaborations)
	}
	if rep, err = e.brand.admin.PrivacyReport(ctx, e.brand.id, time.Time{}, time.Time{}); err != nil || rep.Collaborations[0].EpsilonSpent != 0.7 || rep.Collaborations[0].Queries != 1 {
		t.Errorf("the report up to now: %+v, %v", rep.Collaborations, err)
	}
	// A collaboration deleted before the period did not take part in it.
	if _, err := e.pub.admin.DeleteCollaboration(ctx, e.collab); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if rep, err = e.brand.admin.PrivacyReport(ctx, e.brand.id, later, later.Add(time.Hour)); err != nil || len(rep.Collaborations) != 0 {
		t.Errorf("a period after the deletion: %+v, %v", rep.Collaborations, err)
	}
	rep, err = e.brand.admin.PrivacyReport(ctx, e.brand.id, time.Time{}, later)
	if err != nil || len(rep.Collaborations) != 1 || rep.Collaborations[0].State != wire.StateDeleted || rep.DeletionsHonoured != 1 {
		t.Errorf("a period holding the deletion: %+v, %v", rep, err)
	}
	// The operator reads any partner's report.
	if rep, err := e.op.PrivacyReport(ctx, e.pub.id, time.Time{}, later); err != nil || rep.PartnerName != "Publisher" || len(rep.Collaborations) != 1 {
		t.Errorf("the operator's copy of the publisher's report: %+v, %v", rep, err)
	}
	for _, q := range []struct{ query, param string }{{"until=yesterday", "until"}, {"since=2026-13-01T00:00:00Z", "since"}, {"since=2030-01-01T00:00:00Z&until=2029-01-01T00:00:00Z", "since"}} {
		st, msg := getError(t, e, e.brand.audit.Key, "/v1/partners/"+e.brand.id+"/privacy-report?"+q.query)
		if st != 400 || !strings.Contains(msg, q.param) {
			t.Errorf("%s: %d %q, want 400 naming %s", q.query, st, msg, q.param)
		}
	}
}

// blindedPoints gives people's identifiers blinded with key, as encode
// does.
func blindedPoints(t *testing.T, key *psi.Key, people ...int) []psi.Point {
	t.Helper()
	var out []psi.Point
	for _, k := range people {
		raw, _ := base64.StdEncoding.DecodeString(blinded(t, key, k))
		p, err := psi.DecodePoint(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
