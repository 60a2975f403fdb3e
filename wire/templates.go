package wire

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Template is a named, parameterised question both partners approve with
// the rules (rule templates): its SQL has {{name}} placeholders, each a
// declared, typed and bounded parameter. An analyst runs it by name with
// values for its parameters (POST .../queries with template and params;
// cleanroom query --template NAME --param k=v); the rendered text then
// goes through every check a written question does.
type Template struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	SQL         string          `json:"sql"`
	Params      []TemplateParam `json:"params"`
}

// TemplateParam is one parameter of a template.
type TemplateParam struct {
	Name string `json:"name"`
	// Type is int (Min, Max bound it), date (yyyy-mm-dd, From and To
	// bound it), string (one of Values) or column (a column the
	// collaboration's queries may name, rendered as a quoted name).
	Type string `json:"type" schema:"enum=int|date|string|column"`
	Min  *int64 `json:"min,omitempty"`
	Max  *int64 `json:"max,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Values are a string parameter's allowed values.
	Values []string `json:"values,omitempty"`
	// Default is used when a run gives no value; none makes it required.
	Default string `json:"default,omitempty"`
}

var placeholder = regexp.MustCompile(`\{\{([a-z][a-z0-9_]*)\}\}`)

// BuiltinTemplates are the templates every collaboration has, over
// columns its analysts choose: overlap, reach and frequency, conversion
// lift and sales after exposure. A collaboration's own templates of the
// same name take their place.
func BuiltinTemplates() []Template {
	c := func(name string) TemplateParam { return TemplateParam{Name: name, Type: "column"} }
	window := TemplateParam{Name: "window", Type: "int", Min: ptr(int64(0)), Max: ptr(int64(90)), Default: "7"}
	return []Template{
		{Name: "overlap", Description: "People in both parties' data.", SQL: `SELECT COUNT(*) AS people FROM cohort`, Params: []TemplateParam{}},
		{Name: "reach_frequency", Description: "People reached and events per group: reach, and frequency as events over reach.",
			SQL:    `SELECT {{by}}, COUNT(*) AS reach, COUNT({{events}}) AS events FROM cohort GROUP BY {{by}}`,
			Params: []TemplateParam{c("by"), c("events")}},
		{Name: "conversion_lift", Description: "Converters and conversions by exposure (a dimension such as exposed), within a window after a date.",
			SQL: `SELECT {{exposed}}, COUNT(*) AS converters, COUNT({{conversion_date}}) AS conversions FROM cohort ` +
				`WHERE date_diff('day', {{since_date}}, {{conversion_date}}) BETWEEN 0 AND {{window}} GROUP BY {{exposed}}`,
			Params: []TemplateParam{c("exposed"), c("since_date"), c("conversion_date"), window}},
		{Name: "sales_after_exposure", Description: "Buyers and sales within a window after an exposure, by group.",
			SQL: `SELECT {{by}}, COUNT(*) AS buyers, SUM({{amount}}) AS sales FROM cohort ` +
				`WHERE date_diff('day', {{exposure_date}}, {{purchase_date}}) BETWEEN 0 AND {{window}} GROUP BY {{by}}`,
			Params: []TemplateParam{c("by"), c("amount"), c("exposure_date"), c("purchase_date"), window}},
	}
}

func ptr[T any](v T) *T { return &v }

// AllTemplates returns the rules' templates, then the built-ins they do
// not replace.
func (r *Rules) AllTemplates() []Template {
	out := slices.Clone(r.Templates)
	for _, b := range BuiltinTemplates() {
		if !slices.ContainsFunc(out, func(t Template) bool { return t.Name == b.Name }) {
			out = append(out, b)
		}
	}
	return out
}

// Validate checks a template: its name, its parameters (names, types,
// bounds, defaults) and that its SQL uses exactly its parameters.
func (t Template) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("rules: templates: %s: %s", t.Name, fmt.Sprintf(format, args...))
	}
	if !columnName.MatchString(t.Name) {
		return fmt.Errorf("rules: templates: name %q must be lower case letters, digits and _", t.Name)
	}
	if err := CheckText("description", t.Description); err != nil {
		return bad("%v", err)
	}
	if strings.TrimSpace(t.SQL) == "" || len(t.SQL) > 10000 {
		return bad("sql must be 1 to 10000 characters")
	}
	declared := map[string]bool{}
	for _, p := range t.Params {
		if !columnName.MatchString(p.Name) || declared[p.Name] {
			return bad("parameter %q is not a name, or is declared twice", p.Name)
		}
		declared[p.Name] = true
		switch p.Type {
		case "int":
			if p.Min == nil || p.Max == nil || *p.Min > *p.Max {
				return bad("int parameter %s needs min <= max", p.Name)
			}
		case "date":
			from, err1 := time.Parse(time.DateOnly, p.From)
			to, err2 := time.Parse(time.DateOnly, p.To)
			if err1 != nil || err2 != nil || to.Before(from) {
				return bad("date parameter %s needs from <= to, as yyyy-mm-dd", p.Name)
			}
		case "string":
			if len(p.Values) == 0 {
				return bad("string parameter %s needs its values", p.Name)
			}
		case "column":
		default:
			return bad("parameter %s: type %q is not int, date, string or column", p.Name, p.Type)
		}
		if p.Default != "" {
			if _, err := p.render(p.Default); err != nil {
				return bad("parameter %s: default: %v", p.Name, err)
			}
		}
	}
	used := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(t.SQL, -1) {
		if !declared[m[1]] {
			return bad("{{%s}} is not a declared parameter", m[1])
		}
		used[m[1]] = true
	}
	for name := range declared {
		if !used[name] {
			return bad("parameter %s is not used in the sql", name)
		}
	}
	return nil
}

// render checks a parameter's value and returns its SQL text: a number,
// a quoted string, DATE 'yyyy-mm-dd', or a quoted column name. The text
// is then parsed with the rest, so a value never escapes its place.
func (p TemplateParam) render(v string) (string, error) {
	switch p.Type {
	case "int":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not a whole number", v)
		}
		if n < *p.Min || n > *p.Max {
			return "", fmt.Errorf("%d is outside [%d, %d]", n, *p.Min, *p.Max)
		}
		return strconv.FormatInt(n, 10), nil
	case "date":
		d, err := time.Parse(time.DateOnly, v)
		from, _ := time.Parse(time.DateOnly, p.From)
		to, _ := time.Parse(time.DateOnly, p.To)
		if err != nil {
			return "", fmt.Errorf("%q is not a date (yyyy-mm-dd)", v)
		}
		if d.Before(from) || d.After(to) {
			return "", fmt.Errorf("%s is outside [%s, %s]", v, p.From, p.To)
		}
		return "DATE '" + v + "'", nil
	case "string":
		if !slices.Contains(p.Values, v) {
			return "", fmt.Errorf("%q is not one of %s", v, strings.Join(p.Values, ", "))
		}
		return "'" + strings.ReplaceAll(v, "'", "''") + "'", nil
	case "column":
		if !IsColumnName(v) {
			return "", fmt.Errorf("%q is not a column name", v)
		}
		return `"` + v + `"`, nil
	}
	return "", fmt.Errorf("unknown type %q", p.Type)
}

// Render fills a template's placeholders with values (a parameter left
// out takes its default), checking each against its type and bounds. The
// error names the parameter and what was wrong.
func (t Template) Render(values map[string]string) (string, error) {
	for k := range values {
		if !slices.ContainsFunc(t.Params, func(p TemplateParam) bool { return p.Name == k }) {
			return "", fmt.Errorf("template %s has no parameter %s", t.Name, k)
		}
	}
	text := map[string]string{}
	for _, p := range t.Params {
		v, ok := values[p.Name]
		if !ok {
			if p.Default == "" {
				return "", fmt.Errorf("template %s: parameter %s (%s) needs a value", t.Name, p.Name, p.Type)
			}
			v = p.Default
		}
		s, err := p.render(v)
		if err != nil {
			return "", fmt.Errorf("template %s: parameter %s: %v", t.Name, p.Name, err)
		}
		text[p.Name] = s
	}
	return placeholder.ReplaceAllStringFunc(t.SQL, func(m string) string { return text[m[2:len(m)-2]] }), nil
}
