package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRulesBudgetValidation(t *testing.T) {
	r, err := ParseRules(nil)
	if err != nil || r.DeltaBudget != 1e-5 || r.MinQueryEpsilon != 0.01 || r.Delta != 1e-7 || r.QueryEpsilon() != 0.09 {
		t.Fatalf("defaults: %+v %v", r, err)
	}
	for _, c := range []struct{ json, field string }{
		{`{"delta": 0.0005}`, "rules: delta: 0.0005 is more than the rule delta_budget (1e-05)"},
		{`{"delta": 0.00002, "delta_budget": 0.00001}`, "rules: delta:"},
		{`{"delta_budget": 2}`, "rules: delta_budget: must be in [0, 1]"},
		{`{"delta_budget": -0.1}`, "rules: delta_budget:"},
		{`{"delta": 1.5e-13}`, "rules: delta: delta 1.5e-13 is not a whole number of units of 1e-12"},
		{`{"delta_budget": 1.00000000000001e-5}`, "rules: delta_budget:"},
		{`{"min_query_epsilon": 0}`, "rules: min_query_epsilon: must be at least 1e-06"},
		{`{"min_query_epsilon": 1e-7}`, "rules: min_query_epsilon:"},
		{`{"min_query_epsilon": 2}`, "rules: min_query_epsilon: must be at least 1e-06 (one epsilon unit) and at most max_query_epsilon (1)"},
		{`{"min_query_epsilon": 0.0000015}`, "rules: min_query_epsilon: epsilon 1.5e-06 is not a whole number of units of 1e-06"},
		{`{"epsilon_budget": 10.0000001}`, "rules: epsilon_budget:"},
		{`{"max_query_epsilon": 0.5000001}`, "rules: max_query_epsilon:"},
		{`{"match_epsilon": 0.1234567}`, "rules: match_epsilon:"},
		{`{"epsilon_budget": -3}`, "rules: epsilon_budget:"},
		{`{"epsilon_budget": 0}`, "rules: epsilon_budget: must be positive"},
		{`{"default_query_epsilon": 0}`, "rules: default_query_epsilon: must be positive"},
		{`{"public_groups": {"region": {}}}`, "rules: public_groups: region: give either values"},
		{`{"public_groups": {"region": {"values": ["a", 1]}}}`, "rules: public_groups: region: values mix strings and numbers"},
		{`{"public_groups": {"region": {"values": ["a", "a"]}}}`, "rules: public_groups: region: value a is listed twice"},
		{`{"public_groups": {"day": {"dates": {"from": "2026-02-01", "to": "2026-01-01", "step_days": 1}}}}`, "rules: public_groups: day: dates need from <= to"},
		{`{"public_groups": {"day": {"dates": {"from": "2020-01-01", "to": "2026-01-01", "step_days": 1}}}}`, "rules: public_groups: day: more than 1000 values"},
		{`{"default_query_epsilon": 0.0900001}`, "rules: default_query_epsilon: epsilon 0.0900001 is not a whole number"},
	} {
		if _, err := ParseRules([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error containing %q", c.json, err, c.field)
		}
	}
	for _, ok := range []string{
		`{"delta": 0.00001, "delta_budget": 0.00002}`,
		`{"delta": 0, "delta_budget": 0}`,
		`{"min_query_epsilon": 0.000001, "epsilon_budget": 1.1, "max_query_epsilon": 0.1, "match_epsilon": 0.1}`,
		`{"epsilon_budget": 10.2, "max_query_epsilon": 1}`,
		`{"noise": "gaussian", "delta": 0.000007}`,
	} {
		if _, err := ParseRules([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// Rules stored before delta_budget and min_query_epsilon existed read
	// back with their defaults, as GetCollaboration reads them.
	old := DefaultRules()
	if err := json.Unmarshal([]byte(`{"purpose": "measurement", "epsilon_budget": 5, "delta": 0.000001}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.DeltaBudget != 1e-5 || old.MinQueryEpsilon != 0.01 || old.Validate() != nil {
		t.Errorf("stored rules: %+v, %v", old, old.Validate())
	}
	if old.EpsilonBudget != 5 || old.BudgetRefresh != "none" {
		t.Errorf("budget fields %+v", old)
	}
}

// Metric bounds whose sums could overflow are refused naming the field
// and the limit: with [0, 7e307], a SUM over two people holding the
// maximum was +Inf, and the answer failed only when they were there.
func TestMetricBoundsKeepSumsFinite(t *testing.T) {
	table := func(bounds string) string {
		return `{"tables": [{"party": "proposer", "name": "purchases", "columns": [{"name": "amount", "role": "metric", "bounds": ` + bounds + `}]}]}`
	}
	for _, c := range []struct{ json, want string }{
		{`{"metrics": {"spend": [0, 7e307]}}`, `rules: metrics: "spend": bounds [0, 7e+307] must lie within [-1e+15, 1e+15], so that sums over any cohort stay finite`},
		{`{"metrics": {"spend": [-1.000001e15, 0]}}`, `rules: metrics: "spend": bounds [-1.000001e+15, 0] must lie within`},
		{table(`[0, 1e16]`), `rules: tables: proposer's table purchases: column "amount": bounds [0, 1e+16] must lie within [-1e+15, 1e+15]`},
		{table(`[5, 1]`), `rules: tables: proposer's table purchases: column "amount": bounds [5, 1] must be finite with lower <= upper`},
	} {
		_, err := ParseRules([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.json, err, c.want)
		}
		// Rules stored before the limit: queries find them out the same way.
		var r Rules
		if json.Unmarshal([]byte(c.json), &r) != nil {
			t.Fatal(c.json)
		}
		if err := r.CheckBounds(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckBounds of %s: %v, want %q", c.json, err, c.want)
		}
	}
	for _, ok := range []string{`{"metrics": {"spend": [-1e15, 1e15]}}`, table(`[0, 1e15]`)} {
		if _, err := ParseRules([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
