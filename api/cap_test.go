package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

// setCap sets a partner's exposure cap with its admin's key (epsilon or
// delta < 0: that part not capped).
func (e *env) setCap(p party, eps, delta float64, refresh wire.BudgetRefresh) wire.ExposureCap {
	e.t.Helper()
	req := wire.ExposureCapRequest{Refresh: refresh}
	if eps >= 0 {
		req.Epsilon = &eps
	}
	if delta >= 0 {
		req.Delta = &delta
	}
	c, err := p.admin.SetExposureCap(context.Background(), p.id, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// exposure is what counts against a partner's cap, as its analyst reads it.
func (e *env) exposure(p party) wire.ExposureCap {
	e.t.Helper()
	c, err := p.analyst.ExposureCap(context.Background(), p.id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// allLedger is every ledger row's sum, in units.
func (e *env) allLedger() int64 {
	return e.count(`SELECT CAST(coalesce(sum(epsilon_units), 0) AS BIGINT) FROM budget_ledger`)
}

// actionsLogged counts the log's entries of action whose code is code.
func (e *env) actionsLogged(action, code string) int64 {
	e.t.Helper()
	return e.count(`SELECT count(*) FROM audit_log WHERE action = ? AND json_extract_string(details, '$.code') = ?`, action, code)
}

// secondCollab proposes, approves, uploads and matches a second
// collaboration between the same partners, over the same customers, and
// returns an env whose collab it is.
func (e *env) secondCollab() *env {
	e.t.Helper()
	ctx := context.Background()
	co, err := e.brand.admin.Propose(ctx, "second", e.pub.id, json.RawMessage(queryRules))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.pub.admin.Approve(ctx, co.ID, co.RulesVersion); err != nil {
		e.t.Fatal(err)
	}
	e2 := *e
	e2.collab = co.ID
	e2.uploadBoth()
	e2.matchBoth()
	return &e2
}

// TestExposureCapRefusesAQueryPastIt: the brand caps its people's
// exposure; a question that would pass it is refused with its own code,
// naming the brand, spending nothing, logged as other refusals are, and
// in the preview; a cached answer stays free; and the publisher's
// questions, which expose the brand's people too, meet the brand's cap,
// whose figures the refusal does not give the publisher.
func TestExposureCapRefusesAQueryPastIt(t *testing.T) {
	e := newQueryEnv(t) // the match charged 0.1 to each partner: 0.2
	ctx := context.Background()
	c := e.setCap(e.brand, 0.55, -1, "")
	if c.Epsilon == nil || *c.Epsilon != 0.55 || c.EpsilonSpent != 0.2 || *c.EpsilonRemaining != 0.35 || c.Delta != nil || c.Refresh != wire.RefreshNone {
		t.Fatalf("the cap as set: %+v", c)
	}
	first := `SELECT COUNT(*) FROM cohort`
	if st, body, _ := e.ask(e.brand.analyst.Key, first, 0.2, ""); st != 200 {
		t.Fatalf("a question within the cap: %d %s", st, body)
	}
	before, logged := e.allLedger(), e.actionsLogged("query.refused", "exposure_cap_exceeded")
	st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'x'`, 0.2, "")
	a := parseAnswer(t, body)
	if st != 429 || a.Error.Code != "exposure_cap_exceeded" || !strings.Contains(a.Error.Message, "partner Brand Co ("+e.brand.id+")") ||
		!strings.Contains(a.Error.Message, "add epsilon 0.2") {
		t.Fatalf("a question past the brand's cap: %d %s", st, body)
	}
	if e.allLedger() != before || e.actionsLogged("query.refused", "exposure_cap_exceeded") != logged+1 {
		t.Errorf("the refusal spent %d units or was not logged", e.allLedger()-before)
	}
	p, err := e.brand.analyst.Preview(ctx, e.collab, `SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'x'`, 0.2)
	if err != nil || p.Refusal == nil || p.Refusal.Code != wire.CodeExposureCapExceeded {
		t.Errorf("the preview: %+v %v", p, err)
	}
	// The same question again is its stored answer: free, past the cap.
	if st, body, _ := e.ask(e.brand.analyst.Key, first, 0.2, ""); st != 200 || !bytes.Contains(body, []byte(`"cached":true`)) {
		t.Errorf("a cached answer past the cap: %d %s", st, body)
	}
	// The publisher has no cap, but its questions count against the
	// brand's: 0.15 fits what is left (0.4 + 0.15 = 0.55), 0.01 more does not.
	if st, body, _ := e.ask(e.pub.analyst.Key, `SELECT COUNT(*) FROM cohort WHERE publisher_label <> 'x'`, 0.15, ""); st != 200 {
		t.Fatalf("the publisher's question within the brand's cap: %d %s", st, body)
	}
	if c := e.exposure(e.brand); c.EpsilonSpent != 0.55 || *c.EpsilonRemaining != 0 {
		t.Errorf("the brand's exposure after the publisher's question: %+v", c)
	}
	st, body, _ = e.ask(e.pub.analyst.Key, `SELECT COUNT(*) FROM cohort WHERE publisher_label <> 'y'`, 0.01, "")
	a = parseAnswer(t, body)
	if st != 429 || a.Error.Code != "exposure_cap_exceeded" || !strings.Contains(a.Error.Message, "Brand Co") || strings.Contains(a.Error.Message, "0.55") {
		t.Errorf("the publisher's question past the brand's cap: %d %s", st, body)
	}
	// Raising the cap lets questions through again.
	e.setCap(e.brand, 1, -1, wire.RefreshMonthly)
	if st, body, _ := e.ask(e.pub.analyst.Key, `SELECT COUNT(*) FROM cohort WHERE publisher_label <> 'y'`, 0.01, ""); st != 200 {
		t.Errorf("after the cap was raised: %d %s", st, body)
	}
	// A delta cap: a grouped question spends the rule delta.
	e.setCap(e.brand, -1, 0, "")
	st, body, _ = e.ask(e.brand.analyst.Key, `SELECT brand_co_label, COUNT(*) FROM cohort GROUP BY brand_co_label`, 0.1, "")
	if a := parseAnswer(t, body); st != 429 || a.Error.Code != "exposure_cap_exceeded" || !strings.Contains(a.Error.Message, "caps the delta") {
		t.Errorf("a grouped question under a delta cap of 0: %d %s", st, body)
	}
}

// TestExposureCapCountsEveryChargeAcrossCollaborations: two
// collaborations between the same partners over the same customers.
// Each partner's total is the sum of both collaborations' totals (every
// charge of either partner), the privacy report states it with the cap,
// and the publisher's cap refuses the brand's question in either one.
func TestExposureCapCountsEveryChargeAcrossCollaborations(t *testing.T) {
	e := newQueryEnv(t)
	if st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) FROM cohort`, 1, ""); st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	e2 := e.secondCollab()
	if st, body, _ := e2.ask(e2.pub.analyst.Key, `SELECT COUNT(*) FROM cohort`, 0.5, ""); st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	// 1.2 in the first (two match charges and the brand's question), 0.7
	// in the second: 1.9 for the people of both partners.
	for _, p := range []party{e.brand, e.pub} {
		if c := e.exposure(p); c.EpsilonSpent != 1.9 || c.Epsilon != nil || c.EpsilonRemaining != nil {
			t.Errorf("exposure of %s: %+v, want 1.9 and no cap", p.id, c)
		}
	}
	e.setCap(e.pub, 2, 1e-4, "")
	rep, err := e.pub.audit.PrivacyReport(context.Background(), e.pub.id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Collaborations) != 2 || rep.TotalEpsilonSpent != 1.9 || rep.ExposureCap.Epsilon == nil || *rep.ExposureCap.Epsilon != 2 ||
		*rep.ExposureCap.Delta != 1e-4 || rep.ExposureCap.EpsilonSpent != 1.9 || *rep.ExposureCap.EpsilonRemaining != 0.1 {
		t.Errorf("the publisher's privacy report: %+v", rep)
	}
	for _, x := range []*env{e, e2} {
		st, body, _ := x.ask(x.brand.analyst.Key, `SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'z'`, 0.2, "")
		if a := parseAnswer(t, body); st != 429 || a.Error.Code != "exposure_cap_exceeded" || !strings.Contains(a.Error.Message, "partner Publisher") {
			t.Errorf("the brand's question past the publisher's cap: %d %s", st, body)
		}
	}
	if st, body, _ := e2.ask(e2.brand.analyst.Key, `SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'z'`, 0.1, ""); st != 200 {
		t.Errorf("the brand's question within the publisher's cap: %d %s", st, body)
	}
}

// TestExposureCapRefusesAMatch: a match charges match_epsilon to both
// partners, both counting against each cap. A start the caps cannot pay
// for is refused before anyone blinds; a cap set while a match runs
// refuses its completing half, which publishes nothing, charges nothing,
// and goes through once the cap allows it. Both refusals are logged.
func TestExposureCapRefusesAMatch(t *testing.T) {
	e := newEnv(t, queryRules)
	ctx := context.Background()
	e.uploadBoth()
	e.setCap(e.pub, 0.15, -1, "")
	_, err := e.brand.eng.StartMatch(ctx, e.collab)
	if !errors.Is(err, client.ErrExposureCapExceeded) || !strings.Contains(err.Error(), "Publisher") {
		t.Fatalf("a match past the publisher's cap: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM matches`); n != 0 || e.allLedger() != 0 || e.actionsLogged("match.refused", "exposure_cap_exceeded") != 1 {
		t.Errorf("the refused start left %d matches, %d units spent, or was not logged", n, e.allLedger())
	}
	e.setCap(e.pub, 0.2, -1, "")
	m, err := e.brand.eng.StartMatch(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.eng.DoMatch(ctx, e.collab, e.pub.key, client.MatchOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
	e.setCap(e.brand, 0.1, -1, "")
	err = e.brand.eng.ReblindPoints(ctx, e.collab, m.ID, e.brand.key, client.MatchOptions{})
	if !errors.Is(err, client.ErrExposureCapExceeded) || !strings.Contains(err.Error(), "Brand Co") {
		t.Fatalf("the completing half past the brand's cap: %v", err)
	}
	got, err := e.brand.eng.Match(ctx, e.collab, m.ID)
	if err != nil || got.State == wire.MatchDone || got.NoisySize != nil || e.allLedger() != 0 || e.actionsLogged("match.refused", "exposure_cap_exceeded") != 2 {
		t.Errorf("after the refused half: %+v %v, %d units spent", got, err, e.allLedger())
	}
	e.setCap(e.brand, 0.2, -1, "")
	if err := e.brand.eng.ReblindPoints(ctx, e.collab, m.ID, e.brand.key, client.MatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.brand.eng.Match(ctx, e.collab, m.ID); err != nil || got.State != wire.MatchDone || e.allLedger() != 200000 {
		t.Errorf("the half sent again under the raised cap: %+v %v, %d units", got, err, e.allLedger())
	}
}

// TestExposureCapHoldsUnderConcurrentQueries: questions in two
// collaborations, by both partners at once, never together pass a cap:
// the check and the debit share the write transaction.
func TestExposureCapHoldsUnderConcurrentQueries(t *testing.T) {
	e := newQueryEnv(t)
	e2 := e.secondCollab() // 0.4 spent: both matches
	e.setCap(e.brand, 1.15, -1, "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, capped := 0, 0
	// Four a key: as many as one key may have running at once.
	for i := range 8 {
		x, key := e, e.brand.analyst.Key
		if i%2 == 1 {
			x, key = e2, e2.pub.analyst.Key
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, body, _ := x.ask(key, fmt.Sprintf(`SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'c%d'`, i), 0.25, "")
			mu.Lock()
			defer mu.Unlock()
			switch a := parseAnswer(t, body); {
			case st == 200:
				answered++
			case st == 429 && a.Error.Code == "exposure_cap_exceeded":
				capped++
			default:
				t.Errorf("question %d: %d %s", i, st, body)
			}
		}()
	}
	wg.Wait()
	// 0.75 is left: three questions of 0.25.
	if c := e.exposure(e.brand); answered != 3 || capped != 5 || c.EpsilonSpent != 1.15 {
		t.Errorf("%d answered, %d refused, exposure %v: want 3, 5 and 1.15", answered, capped, c.EpsilonSpent)
	}
}

// TestOnlyThePartnersAdminSetsItsCap: the partner's admin sets its cap;
// its other roles read it, and get 403 setting it; the operator reads
// it and may not set it; the other partner's keys get 404. Bad input is
// refused, changing nothing. Setting it is logged where only the
// partner (and the operator) reads it.
func TestOnlyThePartnersAdminSetsItsCap(t *testing.T) {
	e := newEnv(t, queryRules)
	path := "/v1/partners/" + e.brand.id + "/exposure-cap"
	body := map[string]any{"epsilon": 5, "delta": 1e-4}
	for _, k := range []struct {
		name string
		key  string
		want int
	}{{"engineer", e.brand.eng.Key, 403}, {"analyst", e.brand.analyst.Key, 403}, {"auditor", e.brand.audit.Key, 403},
		{"operator", e.op.Key, 403}, {"the publisher's admin", e.pub.admin.Key, 404}} {
		if st, b := e.post(k.key, path, body, "PUT"); st != k.want {
			t.Errorf("%s sets the brand's cap: %d %s, want %d", k.name, st, b, k.want)
		}
	}
	for _, bad := range []map[string]any{{"epsilon": -1}, {"epsilon": 0}, {"epsilon": 1e-9}, {"delta": 2}, {"delta": 1e-13},
		{"epsilon": 5, "refresh": "weekly"}} {
		st, b := e.post(e.brand.admin.Key, path, bad, "PUT")
		if st != 400 || !bytes.Contains(b, []byte(`"invalid"`)) {
			t.Errorf("cap %v: %d %s, want 400 invalid", bad, st, b)
		}
	}
	if n := e.count(`SELECT count(*) FROM exposure_caps`); n != 0 {
		t.Fatalf("refused caps stored %d rows", n)
	}
	if st, b := e.post(e.brand.admin.Key, path, body, "PUT"); st != 200 {
		t.Fatalf("the admin sets the cap: %d %s", st, b)
	}
	for _, c := range []*client.Client{e.brand.admin, e.brand.eng, e.brand.analyst, e.brand.audit, e.op} {
		got, err := c.ExposureCap(context.Background(), e.brand.id)
		if err != nil || got.Epsilon == nil || *got.Epsilon != 5 || *got.Delta != 1e-4 || got.SetAt == nil {
			t.Errorf("reading the cap: %+v %v", got, err)
		}
	}
	if _, err := e.pub.analyst.ExposureCap(context.Background(), e.brand.id); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("the publisher reads the brand's cap: %v", err)
	}
	for _, x := range []struct {
		c    *client.Client
		want bool
	}{{e.brand.audit, true}, {e.pub.audit, false}} {
		raw, err := x.c.AuditLog(context.Background(), map[string][]string{"action": {"partner.exposure_cap"}})
		if err != nil || bytes.Contains(raw, []byte(`"epsilon":5`)) != x.want {
			t.Errorf("the cap's audit entry, read by an auditor (want it: %v): %s %v", x.want, raw, err)
		}
	}
	// Removing it: both parts left out.
	if st, b := e.post(e.brand.admin.Key, path, map[string]any{}, "PUT"); st != 200 || !bytes.Contains(b, []byte(`"epsilon":null`)) {
		t.Errorf("removing the cap: %d %s", st, b)
	}
}
