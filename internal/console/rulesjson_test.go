package console_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// rulesJSONHarness runs the rules form's JSON checks (rulesjson.js) in
// Node on each case: a syntax error's line and column, and what the
// checks of public_groups and templates say.
const rulesJSONHarness = `
globalThis.window = globalThis;
require(require('path').resolve(process.argv[1]));
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const {syntax, public: pub, templates} = JSON.parse(input);
  const J = CR.rulesJSON;
  const check = (f, empty) => s => { const r = J.parse(s, empty); return r.error ? 'syntax: ' + r.error.message : f(r.value); };
  process.stdout.write(JSON.stringify({
    syntax: syntax.map(s => { const r = J.parse(s, null); return r.error ? [r.error.line, r.error.column] : null; }),
    public: pub.map(check(J.publicGroups, {})),
    templates: templates.map(check(J.templates, [])),
  }));
});`

// TestRulesFormJSONAgreesWithGo: the rules form places a JSON syntax
// error at the line and column wire.DecodeJSON gives, and refuses a
// rule public_groups or templates exactly when wire.ParseRules does (the
// columns they name are checked against the cohort elsewhere).
func TestRulesFormJSONAgreesWithGo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node: the rules form's JSON checks are tested in the browser tests only")
	}
	syntax := []string{
		`{"a": 1,}`, "{\n  \"a\": [1, 2\n}", `{"a" 1}`, `{"a": 1`, `{"a": 1} x`, `[1,]`, `{"a": tru}`, `"abc`,
		"{\n  \"retailer_region\": {\"values\": [\"north\", \"south\",]}\n}", `{'a': 1}`, `[1, 2`, `-`, `1.`, `{"é": x}`,
		"[\n\t{\"name\": \"x\", \"sql\": \"SELECT 1\"}\n\t{\"name\": \"y\"}\n]", `{"a": "b\q"}`, `{"a": 01}`, `{"a": -x}`, "{\"a\": \"tab\there\"}", `{"a": [1 2]}`,
		`{"a": nul}`, `{"a": 1e}`, `{"a": "\u12G4"}`, `{,}`, `[,1]`, `}`, "{\n\n   \"ü\": ]",
	}
	public := []string{
		`{}`, `null`, ``, `[]`, `{"brand_co_region": {"values": ["north", "south"]}}`, `{"d": {"dates": {"from": "2026-01-01", "to": "2026-03-01", "step_days": 7}}}`,
		`{"Region": {"values": ["a"]}}`, `{"r": {"values": []}}`, `{"r": {}}`, `{"r": null}`, `{"r": {"values": ["a"], "dates": {"from": "2026-01-01", "to": "2026-01-02", "step_days": 1}}}`,
		`{"r": {"valuse": ["a"]}}`, `{"r": {"values": ["a", 1]}}`, `{"r": {"values": ["a", "a"]}}`, `{"r": {"values": [1, 2.5, true]}}`, `{"r": {"values": [true, false]}}`,
		`{"r": {"values": [[1]]}}`, `{"r": {"values": [null]}}`, `{"r": {"values": "a"}}`, `{"r": ["a"]}`, `{"r": {"dates": {"from": "2026-02-30", "to": "2026-03-01", "step_days": 1}}}`,
		`{"r": {"dates": {"from": "2026-03-01", "to": "2026-02-01", "step_days": 1}}}`, `{"r": {"dates": {"from": "2026-01-01", "to": "2026-02-01", "step_days": 0}}}`,
		`{"r": {"dates": {"from": "2026-01-01", "to": "2026-02-01"}}}`, `{"r": {"dates": {"from": "2020-01-01", "to": "2026-02-01", "step_days": 1}}}`,
		`{"r": {"dates": {"from": "2026-01-01", "to": "2026-02-01", "step_days": 1, "x": 1}}}`, `{"r": {"dates": {"from": "2026-1-01", "to": "2026-02-01", "step_days": 1}}}`,
		`{"r": {"values": [1, 1.0]}}`, `{"r": {"dates": {"from": "2026-01-01", "to": "2026-01-01", "step_days": 30}}}`, `"x"`,
	}
	templates := []string{
		`[]`, `null`, ``, `{}`, `[{"name": "by_region", "sql": "SELECT {{by}}, COUNT(*) AS people FROM cohort GROUP BY {{by}}", "params": [{"name": "by", "type": "column"}]}]`,
		`[{"name": "t", "sql": "SELECT 1"}]`, `[{"name": "T", "sql": "SELECT 1"}]`, `[{"name": "t", "sql": " "}]`, `[{"name": "t", "sql": "SELECT 1", "desc": "x"}]`,
		`[{"name": "t", "sql": "SELECT 1"}, {"name": "t", "sql": "SELECT 2"}]`, `[{"name": "t", "sql": "SELECT {{a}}"}]`,
		`[{"name": "t", "sql": "SELECT 1", "params": [{"name": "a", "type": "column"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "int", "min": 0, "max": 9, "default": "7"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "int", "min": 0, "max": 5, "default": "7"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "int", "min": 5, "max": 0}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "int", "min": 0}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "int", "min": 0, "max": 9, "default": "x"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "date", "from": "2026-01-01", "to": "2026-12-31", "default": "2026-06-01"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "date", "from": "2026-01-01", "to": "2026-12-31", "default": "2027-06-01"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "date", "from": "2026-12-01", "to": "2026-01-31"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "string", "values": ["x", "y"], "default": "y"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "string", "values": ["x"], "default": "z"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "string"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "column", "default": "Bad name"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "float"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "column"}, {"name": "a", "type": "column"}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": [{"name": "a", "type": "column", "values": [1]}]}]`,
		`[{"name": "t", "sql": "SELECT {{a}}", "params": {"name": "a"}}]`, `[{"name": "t", "description": "a\u202eb", "sql": "SELECT 1"}]`,
		`[{"name": "t", "description": "fine words", "sql": "SELECT 1"}]`, `[{"name": 1, "sql": "SELECT 1"}]`, `["t"]`,
	}
	in, _ := json.Marshal(map[string]any{"syntax": syntax, "public": public, "templates": templates})
	cmd := exec.Command(node, "-e", rulesJSONHarness, "assets/js/rulesjson.js")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var res struct {
		Syntax    [][]int  `json:"syntax"`
		Public    []string `json:"public"`
		Templates []string `json:"templates"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node's answer: %v\n%s", err, out)
	}
	for i, doc := range syntax {
		var v any
		var je *wire.JSONError
		if err := wire.DecodeJSON([]byte(doc), &v); !errors.As(err, &je) {
			t.Errorf("%q: Go says %v, want a JSON error", doc, err)
			continue
		}
		if got := res.Syntax[i]; len(got) != 2 || got[0] != je.Line || got[1] != je.Column {
			t.Errorf("%q: the form places it at %v, Go at line %d, column %d (%s)", doc, got, je.Line, je.Column, je.What)
		}
	}
	agree := func(field string, docs, js []string) {
		refused := 0
		defer func() { t.Logf("%s: %d of %d refused by both", field, refused, len(docs)) }()
		for i, doc := range docs {
			rules := `{"` + field + `": ` + doc + `}`
			if strings.TrimSpace(doc) == "" {
				rules = `{}`
			}
			_, goErr := wire.ParseRules([]byte(rules))
			if (goErr == nil) != (js[i] == "") {
				t.Errorf("%s %s: Go says %v, the form %q", field, doc, goErr, js[i])
			} else if goErr != nil {
				refused++
			}
		}
	}
	agree("public_groups", public, res.Public)
	agree("templates", templates, res.Templates)
}
