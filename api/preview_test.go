package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestPreviewSpendsNothingAndSaysWhatAQuestionWouldCost: a preview states
// a question's epsilon, delta and expected interval half-widths (smaller
// at a larger epsilon), spends and logs nothing, says a question asked
// before is free, and carries the refusal asking would get.
func TestPreviewSpendsNothingAndSaysWhatAQuestionWouldCost(t *testing.T) {
	e := newQueryEnv(t)
	ctx := context.Background()
	an := e.brand.analyst
	q := `SELECT brand_co_label, COUNT(*) AS people, SUM(brand_co_value) AS total, AVG(brand_co_value) AS mean FROM cohort GROUP BY brand_co_label`
	before := e.count(`SELECT count(*) FROM audit_log`)
	pv, err := an.Preview(ctx, e.collab, q, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Refusal != nil || pv.Epsilon != 0.3 || pv.Delta != 1e-7 || pv.Cached || len(pv.Columns) != 3 || pv.EpsilonSplit["selection"] == 0 {
		t.Fatalf("preview %+v", pv)
	}
	for _, c := range pv.Columns {
		if c.HalfWidth == nil || !(*c.HalfWidth > 0) {
			t.Errorf("column %s: half-width %v", c.Name, c.HalfWidth)
		}
	}
	wide, err := an.Preview(ctx, e.collab, q, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if !(*wide.Columns[0].HalfWidth < *pv.Columns[0].HalfWidth/2) {
		t.Errorf("the count's half-width at epsilon 0.9 is %v, at 0.3 %v: want it about a third", *wide.Columns[0].HalfWidth, *pv.Columns[0].HalfWidth)
	}
	if n := e.count(`SELECT count(*) FROM audit_log`); n != before {
		t.Errorf("previews wrote %d audit entries", n-before)
	}
	if m := e.count(`SELECT count(*) FROM budget_ledger WHERE kind = 'query'`); m != 0 {
		t.Errorf("previews charged %d queries", m)
	}
	// Asked once, the same question is free.
	if st, body, _ := e.ask(an.Key, q, 0.3, ""); st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	if pv, err = an.Preview(ctx, e.collab, q, 0.3); err != nil || !pv.Cached || pv.Epsilon != 0 {
		t.Errorf("preview of a question asked before: %+v %v", pv, err)
	}
	// Refusals are in the preview, as asking would meet them.
	for _, c := range []struct {
		sql  string
		eps  float64
		code string
	}{
		{q, 5, "epsilon_not_allowed"},
		{`SELECT uid FROM cohort`, 0.3, "hidden_column"},
		{`SELECT COUNT(*) FROM cohort WHERE`, 0.3, "syntax"},
		{`SELECT COUNT(*) FROM cohort`, 1, ""},
	} {
		pv, err := an.Preview(ctx, e.collab, c.sql, c.eps)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if pv.Refusal != nil {
			got = string(pv.Refusal.Code)
		}
		if got != c.code {
			t.Errorf("preview of %q at %v: refusal %q, want %q", c.sql, c.eps, got, c.code)
		}
	}
	// A budget that cannot pay: the preview says so, as asking would.
	for k := 0; k < 9; k++ {
		if st, body, _ := e.ask(an.Key, fmt.Sprintf(`SELECT COUNT(*) FROM cohort WHERE brand_co_label <> 'q%d'`, k), 1, ""); st != 200 {
			t.Fatalf("%d %s", st, body)
		}
	}
	pv, err = an.Preview(ctx, e.collab, `SELECT COUNT(*) FROM cohort`, 1)
	if err != nil || pv.Refusal == nil || pv.Refusal.Code != "budget_exhausted" || !strings.Contains(pv.Refusal.Message, "epsilon") {
		t.Errorf("preview with the budget short: %+v %v", pv.Refusal, err)
	}
}
