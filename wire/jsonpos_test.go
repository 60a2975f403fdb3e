package wire

import (
	"errors"
	"strings"
	"testing"
)

// TestParseRulesSaysWhere: rules JSON that does not decode is refused at
// a line and column a person finds in an editor, saying what is wrong
// there; never a byte offset.
func TestParseRulesSaysWhere(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		line, col int
		what      string
	}{
		{"syntax", "{\n  \"purpose\": \"measurement\",\n  \"dimensions\": [\"brand_co_region\",]\n}", 3, 36, "invalid character ']'"},
		{"unknown field", "{\n  \"purpose\": \"measurement\",\n  \"tables\": [{\"party\": \"proposer\", \"name\": \"t\",\n    \"colums\": []}]\n}", 4, 5, `unknown field "colums"`},
		{"type", "{\"min_cohort_users\": \"100\"}", 1, 22, "min_cohort_users: a string where a whole number is expected"},
		{"nested type", "{\"tables\": [{\"party\": \"proposer\", \"name\": \"t\", \"columns\": [\n {\"name\": 7, \"role\": \"dimension\"}]}]}", 2, 11, "tables.columns.name: a number where a string is expected"},
		{"ends early", "{\"purpose\": \"measurement\"\n", 1, 26, "ends early"},
		{"after the value", "{}\n{}", 2, 1, "data after the JSON value"},
		{"characters, not bytes", "{\"purpose\": \"é\", \"x\": 1}", 1, 18, `unknown field "x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRules([]byte(c.doc))
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("error %v, want a *JSONError", err)
			}
			if je.Line != c.line || je.Column != c.col || !strings.Contains(je.What, c.what) {
				t.Errorf("got line %d, column %d: %s; want line %d, column %d: ...%s...", je.Line, je.Column, je.What, c.line, c.col, c.what)
			}
			if s := err.Error(); strings.Contains(s, "byte") || strings.Contains(s, "offset") || !strings.HasPrefix(s, "rules: line ") {
				t.Errorf("message %q", s)
			}
		})
	}
	// A key of the same name in a string value is not the key.
	_, err := ParseRules([]byte(`{"purpose": "colums", "tables": [{"party": "proposer", "name": "t", "colums": []}]}`))
	var je *JSONError
	if !errors.As(err, &je) || je.Column != 69 {
		t.Errorf("unknown key in a nested object: %v, want column 69", err)
	}
	// Shift places an error of a field in the document holding it.
	doc := []byte("{\"name\": \"x\",\n \"rules\": {\"purpos\": 1}}")
	_, err = ParseRules(doc[24 : len(doc)-1])
	if !errors.As(err, &je) {
		t.Fatal(err)
	}
	if s := je.Shift(doc, 24); s.Line != 2 || s.Column != 12 {
		t.Errorf("shifted: %v, want line 2, column 12", s)
	}
}
