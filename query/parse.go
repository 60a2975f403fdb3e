package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
)

// Limits of a query; each refusal names the one exceeded (code limit).
const (
	MaxTextBytes  = 10000 // bytes of SQL text
	MaxDimensions = 20    // GROUP BY columns
	MaxAggregates = 20    // aggregates in the select list
	MaxDepth      = 20    // nesting of the WHERE predicate
	MaxInValues   = 1000  // values of one IN / NOT IN list
)

// serializeSQL asks DuckDB's own parser for the syntax tree. The analyst's
// text is a bound parameter: it is parsed, never executed.
const serializeSQL = `SELECT json_serialize_sql(?::VARCHAR)`

// Parse parses text with DuckDB's parser and accepts only the subset of
// docs/design.md ("Queries"):
//
//	SELECT [dimension, ...] aggregate [AS alias] [, aggregate ...]
//	FROM cohort
//	[WHERE predicate]
//	[GROUP BY dimension, ...]
//
// Refusals are *errs.Error (codes syntax, unsupported, limit, hidden_column);
// any other error is an infrastructure failure (the database, the context).
// Parse does not know the collaboration's rules: call Plan.Check.
func Parse(ctx context.Context, db store.Querier, text string) (*Plan, error) {
	if len(text) > MaxTextBytes {
		return nil, refuse(errs.Limit, -1, fmt.Sprintf("query text of %d bytes", len(text)),
			fmt.Sprintf("the limit is %d bytes", MaxTextBytes))
	}
	if !utf8.ValidString(text) {
		return nil, refuse(errs.Syntax, invalidUTF8At(text), "invalid UTF-8", "")
	}
	if i := strings.IndexByte(text, 0); i >= 0 {
		return nil, refuse(errs.Syntax, i, "NUL character", "")
	}
	var out string
	if err := db.QueryRowContext(ctx, serializeSQL, text).Scan(&out); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("query: parser: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		// DuckDB writes out-of-range doubles as Infinity, which is not JSON.
		return nil, refuse(errs.Unsupported, -1, "the query could not be read back from the parser",
			"check numeric literals are in range")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, refuse(errs.Unsupported, -1, "the parser's output has trailing data", "")
	}
	p := &parser{text: text, positions: map[string]int{}}
	plan, perr := p.top(tree)
	if perr != nil {
		return nil, perr
	}
	return plan, nil
}

func invalidUTF8At(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// parser walks DuckDB's JSON syntax tree. Every object must have exactly
// the keys this code knows for its kind, and every key it does not use
// must hold its neutral value: anything else is a refusal (fail closed).
type parser struct {
	text      string
	positions map[string]int
}

// loc is the node's byte offset in the text, -1 if it has none.
func (p *parser) loc(o obj) int {
	n, ok := o["query_location"].(json.Number)
	if !ok {
		return -1
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil || u > uint64(len(p.text)) {
		return -1
	}
	return int(u)
}

// firstLoc is the first known position in a subtree, -1 if none.
func (p *parser) firstLoc(v any) int {
	if o, ok := asObj(v); ok {
		v = map[string]any(o)
	}
	switch t := v.(type) {
	case map[string]any:
		if at := p.loc(obj(t)); at >= 0 {
			return at
		}
		best := -1
		for _, c := range t {
			if at := p.firstLoc(c); at >= 0 && (best < 0 || at < best) {
				best = at
			}
		}
		return best
	case []any:
		best := -1
		for _, c := range t {
			if at := p.firstLoc(c); at >= 0 && (best < 0 || at < best) {
				best = at
			}
		}
		return best
	}
	return -1
}

// shape refuses a tree this code does not understand.
func (p *parser) shape(v any, where string) *errs.Error {
	return refuse(errs.Unsupported, p.firstLoc(v), "unexpected query structure in "+where,
		"queries are SELECT dimensions and COUNT(*), SUM(metric) or AVG(metric) FROM cohort [WHERE ...] [GROUP BY ...]")
}

const subsetHint = "queries read the single table cohort"

func (p *parser) top(tree any) (*Plan, *errs.Error) {
	t, ok := asObj(tree)
	if !ok {
		return nil, p.shape(nil, "the parser's output")
	}
	failed, ok := t["error"].(bool)
	if !ok {
		return nil, p.shape(nil, "the parser's output")
	}
	if failed {
		return nil, p.parserError(t)
	}
	if !t.exactly("error", "statements") {
		return nil, p.shape(nil, "the parser's output")
	}
	stmts, ok := t.list("statements")
	if !ok {
		return nil, p.shape(nil, "the parser's output")
	}
	switch len(stmts) {
	case 0:
		return nil, refuse(errs.Syntax, -1, "empty query", "write SELECT ... FROM cohort")
	case 1:
	default:
		return nil, refuse(errs.Unsupported, p.firstLoc(stmts[1]), "multiple statements",
			"send a single SELECT")
	}
	st, ok := asObj(stmts[0])
	if !ok || !st.exactly("node") {
		return nil, p.shape(stmts[0], "the statement")
	}
	node, ok := asObj(st["node"])
	if !ok {
		return nil, p.shape(st, "the statement")
	}
	return p.selectNode(node)
}

// parserError turns json_serialize_sql's error object into a refusal.
func (p *parser) parserError(t obj) *errs.Error {
	msg := t.str("error_message")
	switch t.str("error_type") {
	case "parser":
		pos := -1
		if s := t.str("position"); s != "" {
			if n, err := strconv.Atoi(s); err == nil {
				pos = p.runeToByte(n)
			}
		}
		if msg == "" {
			msg = "syntax error"
		}
		return refuse(errs.Syntax, pos, msg, "")
	case "not implemented":
		if strings.HasPrefix(msg, "Only SELECT statements") {
			what := "a statement other than SELECT"
			if kw := firstWord(p.text); kw != "" && kw != "SELECT" && kw != "FROM" && kw != "WITH" {
				what = kw + " statement"
			}
			return refuse(errs.Unsupported, -1, what, "only a single SELECT ... FROM cohort is accepted")
		}
		return refuse(errs.Unsupported, -1, "construct not supported by the parser ("+msg+")", "")
	}
	if msg == "" {
		msg = "the query could not be parsed"
	}
	return refuse(errs.Unsupported, -1, msg, "")
}

// runeToByte converts DuckDB's error position (in characters) to a byte
// offset.
func (p *parser) runeToByte(n int) int {
	if n < 0 {
		return -1
	}
	i := 0
	for k := 0; k < n && i < len(p.text); k++ {
		_, size := utf8.DecodeRuneInString(p.text[i:])
		i += size
	}
	return i
}

// firstWord is the first keyword of text (after blanks and comments),
// upper-cased, or "".
func firstWord(text string) string {
	s := text
	for {
		s = strings.TrimLeft(s, " \t\r\n\f\v(")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s, "*/")
			if i < 0 {
				return ""
			}
			s = s[i+2:]
		default:
			end := 0
			for end < len(s) && (s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z') {
				end++
			}
			return strings.ToUpper(s[:end])
		}
	}
}

// asciiLower lower-cases ASCII letters only: DuckDB identifiers are case
// insensitive in ASCII, and Unicode folding (the Kelvin sign K folds to k)
// would map a name onto another column.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

var operatorNames = map[string]string{
	"~~": "LIKE", "!~~": "NOT LIKE", "~~*": "ILIKE", "!~~*": "NOT ILIKE",
	"~~~": "GLOB", "||": "operator ||",
}

// describe names an expression node for a refusal.
func (p *parser) describe(o obj) string {
	switch o.str("class") {
	case "FUNCTION":
		name := o.str("function_name")
		if is, _ := o["is_operator"].(bool); is {
			if n, ok := operatorNames[name]; ok {
				return n
			}
			return "arithmetic operator " + name
		}
		return "function " + name + "()"
	case "CAST":
		ct, _ := asObj(o["cast_type"])
		if t, _ := o["try_cast"].(bool); t {
			return "TRY_CAST to " + ct.str("id")
		}
		return "cast to " + ct.str("id")
	case "SUBQUERY":
		return "subquery"
	case "WINDOW":
		return "window function " + o.str("function_name") + "() OVER"
	case "STAR":
		return "*"
	case "PARAMETER":
		return "parameter placeholder"
	case "CASE":
		return "CASE expression"
	case "COLLATE":
		return "COLLATE"
	case "CONSTANT":
		return "constant"
	case "COLUMN_REF":
		return "column"
	case "LAMBDA":
		return "lambda"
	case "COMPARISON":
		switch o.str("type") {
		case "COMPARE_DISTINCT_FROM":
			return "IS DISTINCT FROM"
		case "COMPARE_NOT_DISTINCT_FROM":
			return "IS NOT DISTINCT FROM (or IS TRUE / IS FALSE)"
		}
		return "comparison " + o.str("type")
	case "CONJUNCTION", "BETWEEN":
		return "condition"
	case "OPERATOR":
		return "operator " + strings.ToLower(strings.TrimPrefix(o.str("type"), "OPERATOR_"))
	}
	if c := o.str("class"); c != "" {
		return "expression " + strings.ToLower(c)
	}
	return "expression"
}
