package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/wire"
)

// budgetRules are queryRules with the budget given by the test.
func budgetRules(extra string) string {
	return `{"purpose": "measurement", "min_upload_users": 1000, "dimensions": ["brand_co_label", "publisher_label"],
		"metrics": {"brand_co_value": [0, 50]}, "min_group_users": 10, ` + extra + `}`
}

type budgetBody struct {
	Budgets []struct {
		PartnerID      string  `json:"partner_id"`
		Budget         float64 `json:"epsilon_budget"`
		Spent          float64 `json:"epsilon_spent"`
		Remaining      float64 `json:"epsilon_remaining"`
		DeltaBudget    float64 `json:"delta_budget"`
		DeltaSpent     float64 `json:"delta_spent"`
		DeltaRemaining float64 `json:"delta_remaining"`
	} `json:"budgets"`
	CollaborationEpsilonSpent float64 `json:"collaboration_epsilon_spent"`
	CollaborationDeltaSpent   float64 `json:"collaboration_delta_spent"`
}

// budget reads GET .../budget with key, and its raw body.
func (e *env) budget(key string) (budgetBody, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/collaborations/"+e.collab+"/budget", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	var b budgetBody
	if err := json.Unmarshal(raw.Bytes(), &b); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("budget: %d %s", resp.StatusCode, raw.String())
	}
	return b, raw.String()
}

type answerBody struct {
	Rows                      [][]any
	Epsilon                   float64
	Delta                     float64
	BudgetRemaining           float64 `json:"budget_remaining"`
	DeltaRemaining            float64 `json:"delta_remaining"`
	CollaborationEpsilonSpent float64 `json:"collaboration_epsilon_spent"`
	CollaborationDeltaSpent   float64 `json:"collaboration_delta_spent"`
	Error                     struct{ Code, Message string }
}

func parseAnswer(t *testing.T, body []byte) answerBody {
	t.Helper()
	var a answerBody
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return a
}

// ledger returns a partner's exact ledger sums (units).
func (e *env) ledger(partnerID string) (eps, delta int64) {
	e.t.Helper()
	if err := e.db.SQL().QueryRow(`SELECT CAST(coalesce(sum(epsilon_units), 0) AS BIGINT), CAST(coalesce(sum(delta_units), 0) AS BIGINT)
		FROM budget_ledger WHERE collab_id = ? AND partner_id = ?`, e.collab, partnerID).Scan(&eps, &delta); err != nil {
		e.t.Fatal(err)
	}
	return eps, delta
}

// refusalsLogged counts a partner's query.refused entries with code.
func (e *env) refusalsLogged(partnerID, code string) int {
	e.t.Helper()
	raw, err := e.brand.audit.AuditLog(context.Background(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var log struct {
		Entries []struct {
			Action    string
			PartnerID string `json:"partner_id"`
			Details   struct{ Code string }
		}
	}
	if err := json.Unmarshal(raw, &log); err != nil {
		e.t.Fatalf("%v: %.300s", err, raw)
	}
	n := 0
	for _, x := range log.Entries {
		if x.Action == "query.refused" && x.PartnerID == partnerID && x.Details.Code == code {
			n++
		}
	}
	return n
}

// TestBudgetExactTenths: after the match's 0.1, a budget of 1.1 leaves
// exactly 1.0: ten queries of 0.1 fit it, the eleventh is refused, and at
// exactly 0 even the smallest allowed epsilon is refused (the old 1e-9
// slack answered queries of 1e-10 at 0). The totals print without float
// noise.
func TestBudgetExactTenths(t *testing.T) {
	e := newEnv(t, budgetRules(`"epsilon_budget": 1.1, "max_query_epsilon": 0.1, "min_query_epsilon": 0.000001, "match_epsilon": 0.1`))
	e.uploadBoth()
	e.matchBoth()
	key := e.brand.analyst.Key
	var last answerBody
	for i := 0; i < 10; i++ {
		st, body, _ := e.ask(key, fmt.Sprintf(`SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'x%d'`, i), 0.1, "")
		if st != 200 {
			t.Fatalf("query %d of 0.1: %d %s", i+1, st, body)
		}
		last = parseAnswer(t, body)
	}
	if last.BudgetRemaining != 0 || last.Epsilon != 0.1 || last.Delta != 0 {
		t.Errorf("after ten queries of 0.1: %+v", last)
	}
	for _, eps := range []float64{0.1, 0.000001} {
		st, body, _ := e.ask(key, fmt.Sprintf(`SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'y%v'`, eps), eps, "")
		if a := parseAnswer(t, body); st != 429 || a.Error.Code != "budget_exhausted" || !strings.Contains(a.Error.Message, "0 is left of the rule epsilon_budget (1.1)") {
			t.Errorf("epsilon %v at a spent budget: %d %s", eps, st, body)
		}
	}
	if eps, delta := e.ledger(e.brand.id); eps != 1100000 || delta != 0 {
		t.Errorf("the brand's ledger holds %d epsilon units and %d delta units, want 1100000 and 0", eps, delta)
	}
	b, raw := e.budget(e.op.Key)
	if len(b.Budgets) != 2 || b.CollaborationEpsilonSpent != 1.2 || b.CollaborationDeltaSpent != 0 {
		t.Fatalf("budget: %s", raw)
	}
	for _, x := range b.Budgets {
		want := 0.1
		if x.PartnerID == e.brand.id {
			want = 1.1
		}
		if x.Spent != want || x.Remaining != 1.1-want || x.Budget != 1.1 || x.DeltaBudget != 1e-5 || x.DeltaRemaining != 1e-5 {
			t.Errorf("budget of %s: %+v", x.PartnerID, x)
		}
	}
	if !strings.Contains(raw, `"collaboration_epsilon_spent":1.2,`) || strings.Contains(raw, "00000000") {
		t.Errorf("budget JSON shows float noise: %s", raw)
	}
}

// TestTinyEpsilonRefused: epsilons below min_query_epsilon, or not a whole
// number of micro-units, are 400 refusals, logged; before, 1e-17 and 1e-300
// reached the noise library and came back as 500s. A release the noise
// library refuses (a GROUP BY with delta 0) is a logged 400, not a 500.
func TestTinyEpsilonRefused(t *testing.T) {
	e := newEnv(t, budgetRules(`"epsilon_budget": 10, "max_query_epsilon": 1, "min_query_epsilon": 0.000001, "delta": 0, "delta_budget": 0`))
	e.uploadBoth()
	e.matchBoth()
	key := e.brand.analyst.Key
	cases := []struct {
		sql  string
		eps  float64
		code string
		msg  string
	}{
		{`SELECT COUNT(*) FROM cohort`, 1e-10, "epsilon_not_allowed", "below the rule min_query_epsilon (1e-06)"},
		{`SELECT COUNT(*) FROM cohort`, 1e-17, "epsilon_not_allowed", "below the rule min_query_epsilon"},
		{`SELECT brand_co_label, COUNT(*) FROM cohort GROUP BY brand_co_label`, 1e-300, "epsilon_not_allowed", "below the rule min_query_epsilon"},
		{`SELECT COUNT(*) FROM cohort`, 1.5e-6, "epsilon_not_allowed", "whole number of units of 1e-06"},
		{`SELECT COUNT(*) FROM cohort`, 0.1234567, "epsilon_not_allowed", "whole number of units"},
		{`SELECT brand_co_label, COUNT(*) FROM cohort GROUP BY brand_co_label`, 0.5, "not_releasable", "partition selection"},
	}
	for _, c := range cases {
		st, body, _ := e.ask(key, c.sql, c.eps, "")
		if a := parseAnswer(t, body); st != 400 || a.Error.Code != c.code || !strings.Contains(a.Error.Message, c.msg) {
			t.Errorf("epsilon %v: %d %s, want 400 %s saying %q", c.eps, st, body, c.code, c.msg)
		}
	}
	if n := e.refusalsLogged(e.brand.id, "epsilon_not_allowed"); n != 5 {
		t.Errorf("%d epsilon_not_allowed refusals logged, want 5", n)
	}
	if n := e.refusalsLogged(e.brand.id, "not_releasable"); n != 1 {
		t.Errorf("%d not_releasable refusals logged, want 1", n)
	}
	// The default floor is min_query_epsilon 0.01.
	d := newEnv(t, queryRules)
	d.uploadBoth()
	d.matchBoth()
	for _, eps := range []float64{1e-10, 1e-17, 1e-300, 0.009999} {
		st, body, _ := d.ask(d.brand.analyst.Key, `SELECT COUNT(*) FROM cohort`, eps, "")
		if a := parseAnswer(t, body); st != 400 || a.Error.Code != "epsilon_not_allowed" || !strings.Contains(a.Error.Message, "min_query_epsilon (0.01)") {
			t.Errorf("default rules, epsilon %v: %d %s", eps, st, body)
		}
	}
	if n := d.refusalsLogged(d.brand.id, "epsilon_not_allowed"); n != 4 {
		t.Errorf("%d refusals logged under the default rules, want 4", n)
	}
	// Nothing was spent but the match.
	if eps, delta := e.ledger(e.brand.id); eps != 100000 || delta != 0 {
		t.Errorf("ledger %d %d", eps, delta)
	}
}

// TestDeltaBudget: with delta 1e-5 and delta_budget 2e-5, two grouped
// queries run and the third is refused naming the delta budget, while
// ungrouped Laplace queries (delta 0) still run; the ledger never holds
// more delta than the budget.
func TestDeltaBudget(t *testing.T) {
	e := newEnv(t, budgetRules(`"epsilon_budget": 10, "max_query_epsilon": 1, "delta": 0.00001, "delta_budget": 0.00002`))
	e.uploadBoth()
	e.matchBoth()
	key := e.pub.analyst.Key
	for i := 0; i < 2; i++ {
		st, body, _ := e.ask(key, fmt.Sprintf(`SELECT brand_co_label, COUNT(*) FROM cohort WHERE brand_co_label <> 'x%d' GROUP BY brand_co_label`, i), 0.1, "")
		a := parseAnswer(t, body)
		if st != 200 || a.Delta != 1e-5 || a.DeltaRemaining != 1e-5*float64(1-i) || a.CollaborationDeltaSpent != 1e-5*float64(i+1) {
			t.Fatalf("grouped query %d: %d %s", i+1, st, body)
		}
	}
	st, body, _ := e.ask(key, `SELECT brand_co_label, COUNT(*) FROM cohort WHERE brand_co_label <> 'x2' GROUP BY brand_co_label`, 0.1, "")
	a := parseAnswer(t, body)
	if st != 429 || a.Error.Code != "delta_budget_exhausted" || !strings.Contains(a.Error.Message, "needs delta 1e-05 and 0 is left of the rule delta_budget (2e-05)") {
		t.Errorf("third grouped query: %d %s", st, body)
	}
	// Ungrouped, Laplace: no delta, still answered.
	st, body, _ = e.ask(key, `SELECT COUNT(*), SUM(brand_co_value) FROM cohort`, 0.1, "")
	if a := parseAnswer(t, body); st != 200 || a.Delta != 0 || a.DeltaRemaining != 0 {
		t.Errorf("ungrouped query: %d %s", st, body)
	}
	if _, delta := e.ledger(e.pub.id); delta != 20000000 {
		t.Errorf("ledger delta %d units, want exactly the budget's 20000000", delta)
	}
	b, raw := e.budget(key)
	if len(b.Budgets) != 1 || b.Budgets[0].DeltaSpent != 2e-5 || b.Budgets[0].DeltaRemaining != 0 || b.Budgets[0].DeltaBudget != 2e-5 ||
		b.Budgets[0].Spent != 0.4 || b.CollaborationEpsilonSpent != 0.5 || b.CollaborationDeltaSpent != 2e-5 {
		t.Errorf("budget: %s", raw)
	}
	if n := e.refusalsLogged(e.pub.id, "delta_budget_exhausted"); n != 1 {
		t.Errorf("%d delta_budget_exhausted refusals logged, want 1", n)
	}
}

// rareLabels gives the first 3 people of the consented overlap the brand
// label "rare3" and the next 8 "rare8"; everyone else is "common".
func (e *env) uploadRareLabels() {
	brand, pub, _ := audiences()
	n := 0
	label := map[int]string{}
	for k := 1000; k < 1500 && n < 11; k++ {
		if k%10 != 0 && k%7 != 0 {
			label[k] = "rare3"
			if n >= 3 {
				label[k] = "rare8"
			}
			n++
		}
	}
	for i := range brand {
		brand[i].label = "common"
		if l, ok := label[brand[i].person]; ok {
			brand[i].label = l
		}
	}
	ctx := context.Background()
	if _, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(e.t, e.brand.key, brand))); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.pub.eng.Upload(ctx, e.collab, bytes.NewReader(encode(e.t, e.pub.key, pub))); err != nil {
		e.t.Fatal(err)
	}
}

// TestDeltaBudgetStopsRareGroupAttack is the attack: many grouped
// queries at a tiny epsilon, each of which keeps an n-person group with
// probability about n x delta, and shows it about half the time. The delta
// budget ends it after delta_budget/delta grouped queries, and the 3- and
// 8-person groups never appear.
func TestDeltaBudgetStopsRareGroupAttack(t *testing.T) {
	e := newEnv(t, `{"purpose": "measurement", "min_upload_users": 1000, "dimensions": ["brand_co_label"],
		"epsilon_budget": 100, "max_query_epsilon": 1, "min_group_users": 1, "delta": 0.00001, "delta_budget": 0.00001}`)
	e.uploadRareLabels()
	matchID, _ := e.matchBoth()
	table := e.links(matchID)[0] // the brand's
	for label, want := range map[string]int{"rare3": 3, "rare8": 8} {
		var n int
		e.db.SQL().QueryRow(`SELECT count(DISTINCT uid) FROM `+table+` WHERE label = ?`, label).Scan(&n)
		if n != want {
			t.Fatalf("the cohort has %d people labelled %s, want %d", n, label, want)
		}
	}
	key := e.brand.analyst.Key
	// Up to 2,000 different questions (the cache answers none). Once the
	// delta budget is spent every one meets the same exact check, so the
	// loop stops after a few seconds (at least 200 questions) to keep the
	// test short; it still asks far more than the budget allows.
	const most, least = 2000, 200
	start := time.Now()
	answered, refused := 0, 0
	for i := 0; i < most && (i < least || time.Since(start) < 5*time.Second); i++ {
		st, body, _ := e.ask(key, fmt.Sprintf(`SELECT brand_co_label, COUNT(*) FROM cohort WHERE brand_co_label <> 'x%d' GROUP BY brand_co_label`, i), 0.01, "")
		switch {
		case st == 200:
			answered++
			for _, r := range parseAnswer(t, body).Rows {
				if r[0] == "rare3" || r[0] == "rare8" {
					t.Errorf("query %d released the %v group: %s", i+1, r[0], body)
				}
			}
		case st == 429 && strings.Contains(string(body), "delta_budget_exhausted"):
			refused++
		default:
			t.Fatalf("query %d: %d %s", i+1, st, body)
		}
	}
	if answered != 1 {
		t.Errorf("%d grouped queries answered, want delta_budget/delta = 1", answered)
	}
	if _, delta := e.ledger(e.brand.id); delta != 10000000 {
		t.Errorf("ledger delta %d units, want 10000000", delta)
	}
	if refused < least-1 {
		t.Errorf("%d refused", refused)
	}
	t.Logf("%d grouped queries: %d answered, %d refused", answered+refused, answered, refused)
}

// TestCohortTooSmallOnlyAfterBudget: the min_cohort_users refusal comes
// after the budget check, so a spent budget answers budget_exhausted and
// never says whether the cohort is too small; with budget left, the same
// query gets the fixed cohort_too_small text.
func TestCohortTooSmallOnlyAfterBudget(t *testing.T) {
	for _, c := range []struct {
		budget string
		status int
		code   string
	}{
		// The match's 0.1 spends the whole budget of 0.1.
		{"0.1", 429, "budget_exhausted"},
		{"1", 409, "cohort_too_small"},
	} {
		e := newEnv(t, budgetRules(`"min_cohort_users": 100000, "match_epsilon": 0.1, "max_query_epsilon": 0.1, "epsilon_budget": `+c.budget))
		e.uploadBoth()
		e.matchBoth()
		st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) FROM cohort`, 0.05, "")
		if a := parseAnswer(t, body); st != c.status || a.Error.Code != c.code {
			t.Errorf("epsilon_budget %s: %d %s, want %d %s", c.budget, st, body, c.status, c.code)
		}
	}
}

// TestDefaultRulesAllowAHundredGroupedQuestions: with the default
// budgets, epsilon and delta, an analyst asks 100 grouped questions at
// the default epsilon and none is refused; the budget says in words what
// is left, and the next grouped question is refused for delta while an
// ungrouped one still answers.
func TestDefaultRulesAllowAHundredGroupedQuestions(t *testing.T) {
	e := newEnv(t, `{"purpose": "measurement", "min_upload_users": 1000,
		"dimensions": ["brand_co_label", "publisher_label"], "metrics": {"brand_co_value": [0, 50]}}`)
	e.uploadBoth()
	e.matchBoth()
	key := e.brand.analyst.Key
	for k := 0; k < 100; k++ {
		q := fmt.Sprintf(`SELECT brand_co_label, COUNT(*) FROM cohort WHERE brand_co_label <> 'q%d' GROUP BY brand_co_label`, k)
		if st, body, _ := e.ask(key, q, 0, ""); st != 200 {
			t.Fatalf("grouped question %d at the default epsilon refused: %d %s", k+1, st, body)
		}
	}
	st, body := e.post(key, "/v1/collaborations/"+e.collab+"/budget", nil, "GET")
	var b wire.BudgetStatus
	if err := json.Unmarshal(body, &b); st != 200 || err != nil {
		t.Fatalf("budget: %d %s", st, body)
	}
	for _, x := range b.Budgets {
		if x.PartnerID != e.brand.id {
			continue
		}
		// 10 - 0.1 (the match) - 100 x 0.09 = 0.9: 10 questions at 0.09,
		// none grouped (100 x 1e-7 spent the delta budget 1e-5).
		if x.QueryEpsilon != 0.09 || x.QuestionsLeft != 10 || x.GroupedQuestionsLeft != 0 ||
			!strings.Contains(x.Summary, "10 questions left at epsilon 0.09, 0 of them grouped") {
			t.Errorf("the brand's budget after 100 grouped questions: %+v", x)
		}
	}
	if st, body, _ := e.ask(key, `SELECT brand_co_label, COUNT(*) FROM cohort WHERE brand_co_label <> 'q100' GROUP BY brand_co_label`, 0, ""); st != 429 || !strings.Contains(string(body), "delta_budget_exhausted") {
		t.Errorf("the 101st grouped question: %d %s, want delta_budget_exhausted", st, body)
	}
	if st, body, _ := e.ask(key, `SELECT COUNT(*) FROM cohort`, 0, ""); st != 200 {
		t.Errorf("an ungrouped question with epsilon left: %d %s", st, body)
	}
}

// TestBurstNeverOverspends: sixteen questions at once from one analyst,
// with budget for three: at most three answer, every other one is a 429
// that says why (the budget, counting the questions still running, or
// too many at once from one key), and the ledger holds exactly the
// answers' charges.
func TestBurstNeverOverspends(t *testing.T) {
	e := newEnv(t, budgetRules(`"epsilon_budget": 3.1, "max_query_epsilon": 1`))
	e.uploadBoth()
	e.matchBoth()
	type result struct {
		status int
		body   string
	}
	results := make(chan result, 16)
	for i := range 16 {
		go func() {
			st, body, _ := e.ask(e.brand.analyst.Key, fmt.Sprintf(`SELECT brand_co_label, COUNT(*) AS n%d FROM cohort GROUP BY brand_co_label`, i), 1, "")
			results <- result{st, string(body)}
		}()
	}
	answered := 0
	for range 16 {
		r := <-results
		switch {
		case r.status == 200:
			answered++
		case r.status == 429 && (strings.Contains(r.body, `"budget_exhausted"`) || strings.Contains(r.body, `"too_many_queries"`)):
		default:
			t.Errorf("a question of the burst: %d %s", r.status, r.body)
		}
	}
	if answered == 0 || answered > 3 {
		t.Errorf("%d of the burst answered, want 1 to 3", answered)
	}
	b, _ := e.budget(e.brand.analyst.Key)
	if got, want := b.Budgets[0].Spent, 0.1+float64(answered); math.Abs(got-want) > 1e-9 {
		t.Errorf("spent %v after %d answers, want %v", got, answered, want)
	}
}
