package wire

import (
	"strings"
	"testing"
)

// TestTemplates: the built-ins are valid; a template's parameters render
// within their bounds, and anything else is refused naming the parameter.
func TestTemplates(t *testing.T) {
	for _, b := range BuiltinTemplates() {
		if err := b.Validate(); err != nil {
			t.Errorf("built-in %s: %v", b.Name, err)
		}
	}
	r, err := ParseRules([]byte(`{"templates": [{"name": "conversions", "sql": "SELECT COUNT(*) FROM cohort WHERE date_diff('day', a, b) BETWEEN 0 AND {{window}} AND c = {{campaign}} AND d >= {{since}}",
		"params": [{"name": "window", "type": "int", "min": 0, "max": 30, "default": "7"}, {"name": "campaign", "type": "string", "values": ["c1", "c'2"]},
		{"name": "since", "type": "date", "from": "2026-01-01", "to": "2026-12-31"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tpl := r.AllTemplates()[0]
	got, err := tpl.Render(map[string]string{"campaign": "c'2", "since": "2026-03-01"})
	if err != nil || got != `SELECT COUNT(*) FROM cohort WHERE date_diff('day', a, b) BETWEEN 0 AND 7 AND c = 'c''2' AND d >= DATE '2026-03-01'` {
		t.Errorf("rendered %q, %v", got, err)
	}
	for _, c := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"campaign": "c1", "since": "2026-03-01", "window": "31"}, "parameter window: 31 is outside [0, 30]"},
		{map[string]string{"campaign": "c3", "since": "2026-03-01"}, `parameter campaign: "c3" is not one of c1, c'2`},
		{map[string]string{"campaign": "c1", "since": "2025-03-01"}, "parameter since: 2025-03-01 is outside"},
		{map[string]string{"campaign": "c1"}, "parameter since (date) needs a value"},
		{map[string]string{"campaign": "c1", "since": "2026-03-01", "other": "1"}, "has no parameter other"},
	} {
		if _, err := tpl.Render(c.params); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.params, err, c.want)
		}
	}
	for _, c := range []struct{ json, want string }{
		{`{"templates": [{"name": "x", "sql": "SELECT COUNT(*) FROM cohort WHERE a = {{b}}", "params": []}]}`, "{{b}} is not a declared parameter"},
		{`{"templates": [{"name": "x", "sql": "SELECT COUNT(*) FROM cohort", "params": [{"name": "b", "type": "column"}]}]}`, "parameter b is not used"},
		{`{"templates": [{"name": "x", "sql": "SELECT {{b}}", "params": [{"name": "b", "type": "int"}]}]}`, "needs min <= max"},
	} {
		if _, err := ParseRules([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.json, err, c.want)
		}
	}
}
