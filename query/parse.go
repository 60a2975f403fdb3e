package query

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
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

// obj is a JSON object of the tree.
type obj map[string]any

func asObj(v any) (obj, bool) {
	switch m := v.(type) {
	case map[string]any:
		return obj(m), true
	case obj:
		return m, true
	}
	return nil, false
}

// exactly reports whether o has exactly these keys.
func (o obj) exactly(keys ...string) bool {
	if len(o) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := o[k]; !ok {
			return false
		}
	}
	return true
}

func (o obj) str(k string) string {
	s, _ := o[k].(string)
	return s
}

func (o obj) null(k string) bool {
	v, ok := o[k]
	return ok && v == nil
}

func (o obj) isFalse(k string) bool {
	b, ok := o[k].(bool)
	return ok && !b
}

func (o obj) emptyStr(k string) bool {
	s, ok := o[k].(string)
	return ok && s == ""
}

func (o obj) list(k string) ([]any, bool) {
	l, ok := o[k].([]any)
	return l, ok
}

func (o obj) emptyList(k string) bool {
	l, ok := o[k].([]any)
	return ok && len(l) == 0
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

var selectNodeKeys = []string{"type", "modifiers", "cte_map", "select_list", "from_table",
	"where_clause", "group_expressions", "group_sets", "aggregate_handling", "having", "sample", "qualify"}

func (p *parser) selectNode(n obj) (*Plan, *errs.Error) {
	switch n.str("type") {
	case "SELECT_NODE":
	case "SET_OPERATION_NODE":
		op := strings.ReplaceAll(n.str("setop_type"), "_", " ")
		if op == "" {
			op = "set operation"
		}
		return nil, refuse(errs.Unsupported, p.firstLoc(n["right"]), op,
			"a query is a single SELECT ... FROM cohort")
	case "RECURSIVE_CTE_NODE", "CTE_NODE":
		return nil, refuse(errs.Unsupported, p.firstLoc(n), "WITH (common table expression)", subsetHint)
	default:
		return nil, p.shape(n, "the statement")
	}
	// Specific constructs first, for clear refusals; then the exact shape.
	if cte, ok := asObj(n["cte_map"]); ok {
		if m, ok := cte.list("map"); ok && len(m) > 0 {
			return nil, refuse(errs.Unsupported, p.firstLoc(m), "WITH (common table expression)", subsetHint)
		}
	}
	if from, ok := asObj(n["from_table"]); ok {
		if err := p.fromTable(from); err != nil {
			return nil, err
		}
	}
	if mods, ok := n.list("modifiers"); ok && len(mods) > 0 {
		return nil, p.modifier(mods[0])
	}
	if !n.null("having") {
		return nil, refuse(errs.Unsupported, p.firstLoc(n["having"]), "HAVING",
			"groups below the collaboration's minimum size are removed by the server")
	}
	if !n.null("qualify") {
		return nil, refuse(errs.Unsupported, p.firstLoc(n["qualify"]), "QUALIFY", subsetHint)
	}
	if !n.null("sample") {
		return nil, refuse(errs.Unsupported, -1, "USING SAMPLE", "")
	}
	switch h := n.str("aggregate_handling"); h {
	case "STANDARD_HANDLING":
	case "FORCE_AGGREGATES":
		return nil, refuse(errs.Unsupported, -1, "GROUP BY ALL", "list the GROUP BY columns")
	default:
		return nil, refuse(errs.Unsupported, -1, "aggregate handling "+h, "")
	}
	if !n.exactly(selectNodeKeys...) {
		return nil, p.shape(n, "the SELECT")
	}
	cte, _ := asObj(n["cte_map"])
	if !cte.exactly("map") || !cte.emptyList("map") || !n.emptyList("modifiers") {
		return nil, p.shape(n, "the SELECT")
	}

	plan := &Plan{positions: p.positions}
	items, ok := n.list("select_list")
	if !ok || len(items) == 0 {
		return nil, p.shape(n, "the select list")
	}
	type dimRef struct {
		name string
		pos  int
	}
	var selDims []dimRef
	names := map[string]bool{}
	addName := func(name string, pos int) *errs.Error {
		if names[name] {
			return refuse(errs.Unsupported, pos, "duplicate output column "+name,
				"give each aggregate a distinct alias with AS")
		}
		names[name] = true
		return nil
	}
	for _, it := range items {
		o, ok := asObj(it)
		if !ok {
			return nil, p.shape(it, "the select list")
		}
		switch o.str("class") {
		case "COLUMN_REF":
			name, err := p.column(o, true)
			if err != nil {
				return nil, err
			}
			if !o.emptyStr("alias") {
				return nil, refuse(errs.Unsupported, p.loc(o), "alias on the dimension "+name,
					"only aggregates can be renamed with AS")
			}
			if err := addName(name, p.loc(o)); err != nil {
				return nil, err
			}
			selDims = append(selDims, dimRef{name, p.loc(o)})
			plan.Columns = append(plan.Columns, OutputColumn{Name: name, Dimension: true, Index: len(selDims) - 1})
			if len(selDims) > MaxDimensions {
				return nil, refuse(errs.Limit, p.loc(o), fmt.Sprintf("more than %d dimensions", MaxDimensions), "")
			}
		case "FUNCTION":
			agg, err := p.aggregate(o)
			if err != nil {
				return nil, err
			}
			if err := addName(agg.Alias, p.loc(o)); err != nil {
				return nil, err
			}
			plan.Aggregates = append(plan.Aggregates, agg)
			plan.Columns = append(plan.Columns, OutputColumn{Name: agg.Alias, Index: len(plan.Aggregates) - 1})
			if len(plan.Aggregates) > MaxAggregates {
				return nil, refuse(errs.Limit, p.loc(o), fmt.Sprintf("more than %d aggregates", MaxAggregates), "")
			}
		case "STAR":
			return nil, refuse(errs.Unsupported, p.loc(o), "SELECT *",
				"select dimensions and COUNT(*), SUM(metric) or AVG(metric)")
		default:
			return nil, refuse(errs.Unsupported, p.firstLoc(o), p.describe(o)+" in SELECT",
				"select dimensions and COUNT(*), SUM(metric) or AVG(metric)")
		}
	}
	if len(plan.Aggregates) == 0 {
		return nil, refuse(errs.Unsupported, -1, "no aggregate",
			"a query needs at least one of COUNT(*), SUM(metric), AVG(metric)")
	}

	if !n.null("where_clause") {
		e, err := p.pred(n["where_clause"], 1)
		if err != nil {
			return nil, err
		}
		plan.Where = e
	}

	groups, ok := n.list("group_expressions")
	if !ok {
		return nil, p.shape(n, "GROUP BY")
	}
	sets, ok := n.list("group_sets")
	if !ok || !p.plainGroupSets(sets, len(groups)) {
		return nil, refuse(errs.Unsupported, p.firstLoc(groups), "ROLLUP, CUBE, GROUPING SETS or GROUP BY ()",
			"list the GROUP BY columns")
	}
	grouped := map[string]int{}
	for _, g := range groups {
		o, ok := asObj(g)
		if !ok {
			return nil, p.shape(g, "GROUP BY")
		}
		switch o.str("class") {
		case "COLUMN_REF":
		case "CONSTANT":
			return nil, refuse(errs.Unsupported, p.loc(o), "GROUP BY position", "name the GROUP BY columns")
		default:
			return nil, refuse(errs.Unsupported, p.firstLoc(o), p.describe(o)+" in GROUP BY",
				"GROUP BY takes plain dimension columns")
		}
		name, err := p.column(o, false)
		if err != nil {
			return nil, err
		}
		if _, dup := grouped[name]; !dup {
			grouped[name] = p.loc(o)
		}
	}
	if len(grouped) > MaxDimensions {
		return nil, refuse(errs.Limit, -1, fmt.Sprintf("more than %d GROUP BY columns", MaxDimensions), "")
	}
	selected := map[string]bool{}
	for _, d := range selDims {
		selected[d.name] = true
		if _, ok := grouped[d.name]; !ok {
			return nil, refuse(errs.Unsupported, d.pos, "column "+d.name+" is selected but not in GROUP BY",
				"every selected column must be grouped on")
		}
		plan.Dimensions = append(plan.Dimensions, d.name)
	}
	for _, g := range groups {
		o, _ := asObj(g)
		name, _ := p.column(o, false)
		if !selected[name] {
			return nil, refuse(errs.Unsupported, p.loc(o), "column "+name+" is in GROUP BY but not selected",
				"select every GROUP BY column")
		}
	}
	if err := plan.validate(); err != nil {
		return nil, err
	}
	return plan, nil
}

// plainGroupSets: no GROUP BY at all, or one grouping set of every
// expression (what plain GROUP BY a, b gives).
func (p *parser) plainGroupSets(sets []any, n int) bool {
	if n == 0 {
		return len(sets) == 0
	}
	if len(sets) != 1 {
		return false
	}
	set, ok := sets[0].([]any)
	if !ok || len(set) != n {
		return false
	}
	seen := make([]bool, n)
	for _, v := range set {
		num, ok := v.(json.Number)
		if !ok {
			return false
		}
		i, err := strconv.Atoi(string(num))
		if err != nil || i < 0 || i >= n || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

func (p *parser) modifier(m any) *errs.Error {
	o, _ := asObj(m)
	at := p.firstLoc(m)
	switch o.str("type") {
	case "DISTINCT_MODIFIER":
		return refuse(errs.Unsupported, at, "DISTINCT", "COUNT(*) already counts distinct people")
	case "ORDER_MODIFIER":
		return refuse(errs.Unsupported, at, "ORDER BY", "order the answer on the client")
	case "LIMIT_MODIFIER", "LIMIT_PERCENT_MODIFIER":
		if o.null("limit") {
			return refuse(errs.Unsupported, at, "OFFSET", "every released group is returned")
		}
		return refuse(errs.Unsupported, at, "LIMIT", "every released group is returned")
	}
	return refuse(errs.Unsupported, at, "query modifier "+o.str("type"), subsetHint)
}

func (p *parser) fromTable(t obj) *errs.Error {
	at := p.loc(t)
	switch t.str("type") {
	case "BASE_TABLE":
		if !t.exactly("type", "alias", "sample", "query_location", "schema_name", "table_name",
			"column_name_alias", "catalog_name") {
			return p.shape(t, "FROM")
		}
		name := t.str("table_name")
		if !t.emptyStr("schema_name") || !t.emptyStr("catalog_name") {
			return refuse(errs.Unsupported, at, "qualified table name", "write FROM cohort")
		}
		if asciiLower(name) != "cohort" {
			return refuse(errs.Unsupported, at, fmt.Sprintf("table %q", name), subsetHint)
		}
		if !t.emptyStr("alias") || !t.emptyList("column_name_alias") {
			return refuse(errs.Unsupported, at, "table alias", "write FROM cohort without an alias")
		}
		if !t.null("sample") {
			return refuse(errs.Unsupported, at, "TABLESAMPLE", subsetHint)
		}
		return nil
	case "JOIN":
		what := "JOIN"
		if t.str("ref_type") == "CROSS" {
			what = "JOIN (comma or CROSS JOIN)"
		}
		if at < 0 {
			at = p.firstLoc(t["right"])
		}
		return refuse(errs.Unsupported, at, what, subsetHint)
	case "SUBQUERY":
		return refuse(errs.Unsupported, p.firstLoc(t), "subquery in FROM", subsetHint)
	case "TABLE_FUNCTION":
		fn, _ := asObj(t["function"])
		name := fn.str("function_name")
		return refuse(errs.Unsupported, at, "table function "+name+"()", subsetHint)
	case "EMPTY":
		return refuse(errs.Unsupported, -1, "SELECT without FROM cohort", subsetHint)
	case "EXPRESSION_LIST":
		return refuse(errs.Unsupported, p.firstLoc(t), "VALUES list", subsetHint)
	case "SHOW_REF":
		return refuse(errs.Unsupported, -1, "DESCRIBE, SHOW or SUMMARIZE", subsetHint)
	}
	return refuse(errs.Unsupported, p.firstLoc(t), "FROM "+strings.ToLower(t.str("type")), subsetHint)
}

// column reads a COLUMN_REF: a plain, unqualified name (ASCII case
// folded) that is not hidden and looks like ^[a-z][a-z0-9_]{0,62}$. The
// alias is the caller's business when selectItem is set.
func (p *parser) column(o obj, selectItem bool) (string, *errs.Error) {
	at := p.loc(o)
	if !o.exactly("class", "type", "alias", "query_location", "column_names") || o.str("type") != "COLUMN_REF" {
		return "", p.shape(o, "a column reference")
	}
	if !selectItem && !o.emptyStr("alias") {
		return "", p.shape(o, "a column reference")
	}
	parts, ok := o.list("column_names")
	if !ok || len(parts) == 0 {
		return "", p.shape(o, "a column reference")
	}
	strs := make([]string, len(parts))
	for i, v := range parts {
		s, ok := v.(string)
		if !ok {
			return "", p.shape(o, "a column reference")
		}
		strs[i] = s
	}
	if len(strs) != 1 {
		return "", refuse(errs.Unsupported, at, "qualified column name "+strings.Join(strs, "."),
			"write the plain column name")
	}
	name := asciiLower(strs[0])
	if Hidden(name) {
		return "", hiddenError(name, at)
	}
	if !wire.IsColumnName(name) {
		return "", refuse(errs.Unsupported, at, fmt.Sprintf("column name %q", strs[0]),
			"column names are ASCII letters, digits and _, starting with a letter")
	}
	if _, ok := p.positions[name]; !ok && at >= 0 {
		p.positions[name] = at
	}
	return name, nil
}

var functionKeys = []string{"class", "type", "alias", "query_location", "function_name", "schema",
	"children", "filter", "order_bys", "distinct", "is_operator", "export_state", "catalog"}

const aggHint = "the aggregates are COUNT(*), SUM(metric) and AVG(metric)"

func (p *parser) aggregate(o obj) (Aggregate, *errs.Error) {
	at := p.loc(o)
	if !o.exactly(functionKeys...) || o.str("type") != "FUNCTION" {
		return Aggregate{}, p.shape(o, "a function call")
	}
	name := asciiLower(o.str("function_name"))
	if is, ok := o["is_operator"].(bool); !ok || is {
		return Aggregate{}, refuse(errs.Unsupported, p.firstLoc(o), p.describe(o)+" in SELECT",
			"arithmetic is not supported; "+aggHint)
	}
	if !o.emptyStr("schema") || !o.emptyStr("catalog") {
		return Aggregate{}, refuse(errs.Unsupported, at, "qualified function name", aggHint)
	}
	var fn Func
	switch name {
	case "count_star", "count":
		fn = Count
	case "sum":
		fn = Sum
	case "avg":
		fn = Avg
	default:
		return Aggregate{}, refuse(errs.Unsupported, at, "function "+name+"()", aggHint)
	}
	upper := strings.ToUpper(string(fn))
	if d, ok := o["distinct"].(bool); !ok || d {
		return Aggregate{}, refuse(errs.Unsupported, at, upper+"(DISTINCT ...)",
			"COUNT(*) already counts distinct people")
	}
	if !o.null("filter") {
		return Aggregate{}, refuse(errs.Unsupported, at, "FILTER clause", "use WHERE")
	}
	ob, ok := asObj(o["order_bys"])
	if !ok || !ob.exactly("type", "orders") || ob.str("type") != "ORDER_MODIFIER" {
		return Aggregate{}, p.shape(o, "an aggregate")
	}
	if !ob.emptyList("orders") {
		return Aggregate{}, refuse(errs.Unsupported, at, "ORDER BY inside "+upper+"()", aggHint)
	}
	if !o.isFalse("export_state") {
		return Aggregate{}, refuse(errs.Unsupported, at, "EXPORT_STATE", aggHint)
	}
	children, ok := o.list("children")
	if !ok {
		return Aggregate{}, p.shape(o, "an aggregate")
	}
	agg := Aggregate{Func: fn}
	switch {
	case name == "count_star":
		if len(children) != 0 {
			return Aggregate{}, p.shape(o, "COUNT(*)")
		}
	case name == "count":
		return Aggregate{}, refuse(errs.Unsupported, at, "COUNT(column)",
			"use COUNT(*), which counts people")
	default:
		if len(children) != 1 {
			return Aggregate{}, refuse(errs.Unsupported, at, fmt.Sprintf("%s() with %d arguments", upper, len(children)),
				upper+" takes one metric column")
		}
		c, ok := asObj(children[0])
		if !ok {
			return Aggregate{}, p.shape(o, "an aggregate")
		}
		if c.str("class") != "COLUMN_REF" {
			return Aggregate{}, refuse(errs.Unsupported, p.firstLoc(c), p.describe(c)+" inside "+upper+"()",
				upper+" takes a plain metric column")
		}
		col, err := p.column(c, false)
		if err != nil {
			return Aggregate{}, err
		}
		agg.Column = col
	}
	alias, ok := o["alias"].(string)
	if !ok {
		return Aggregate{}, p.shape(o, "an aggregate")
	}
	if alias == "" {
		agg.Alias = agg.DefaultAlias()
	} else {
		if !wire.IsColumnName(alias) {
			return Aggregate{}, refuse(errs.Unsupported, at, fmt.Sprintf("alias %q", alias),
				"aliases are lower-case letters, digits and _, starting with a letter, at most 63 characters")
		}
		agg.Alias = alias
	}
	return agg, nil
}

var compareOps = map[string]string{
	"COMPARE_EQUAL":                OpEq,
	"COMPARE_NOTEQUAL":             OpNe,
	"COMPARE_LESSTHAN":             OpLt,
	"COMPARE_LESSTHANOREQUALTO":    OpLe,
	"COMPARE_GREATERTHAN":          OpGt,
	"COMPARE_GREATERTHANOREQUALTO": OpGe,
}

// flipped is the operator with its operands swapped (1 < a is a > 1).
var flipped = map[string]string{OpEq: OpEq, OpNe: OpNe, OpLt: OpGt, OpLe: OpGe, OpGt: OpLt, OpGe: OpLe}

const predHint = "conditions compare a dimension with literals: = <> < <= > >= IN NOT IN BETWEEN IS NULL, combined with AND OR NOT"

// pred reads a WHERE node at the given nesting depth.
func (p *parser) pred(v any, depth int) (*Expr, *errs.Error) {
	o, ok := asObj(v)
	if !ok {
		return nil, p.shape(v, "WHERE")
	}
	at := p.loc(o)
	if depth > MaxDepth {
		return nil, refuse(errs.Limit, p.firstLoc(o), fmt.Sprintf("WHERE nested deeper than %d levels", MaxDepth), "")
	}
	switch o.str("class") {
	case "CONJUNCTION", "OPERATOR", "COMPARISON", "BETWEEN":
		if !o.emptyStr("alias") {
			return nil, p.shape(o, "WHERE")
		}
	}
	switch o.str("class") {
	case "CONJUNCTION":
		if !o.exactly("class", "type", "alias", "query_location", "children") {
			return nil, p.shape(o, "WHERE")
		}
		op := map[string]string{"CONJUNCTION_AND": OpAnd, "CONJUNCTION_OR": OpOr}[o.str("type")]
		children, ok := o.list("children")
		if op == "" || !ok || len(children) < 2 {
			return nil, p.shape(o, "WHERE")
		}
		e := &Expr{Op: op}
		for _, c := range children {
			ce, err := p.pred(c, depth+1)
			if err != nil {
				return nil, err
			}
			if ce.Op == op { // (a AND b) AND c is a AND b AND c
				e.Children = append(e.Children, ce.Children...)
			} else {
				e.Children = append(e.Children, ce)
			}
		}
		return e, nil
	case "OPERATOR":
		if !o.exactly("class", "type", "alias", "query_location", "children") {
			return nil, p.shape(o, "WHERE")
		}
		children, ok := o.list("children")
		if !ok || len(children) == 0 {
			return nil, p.shape(o, "WHERE")
		}
		switch o.str("type") {
		case "OPERATOR_NOT":
			if len(children) != 1 {
				return nil, p.shape(o, "WHERE")
			}
			c, err := p.pred(children[0], depth+1)
			if err != nil {
				return nil, err
			}
			return negate(c), nil
		case "COMPARE_IN", "COMPARE_NOT_IN":
			op := OpIn
			if o.str("type") == "COMPARE_NOT_IN" {
				op = OpNotIn
			}
			col, err := p.operandColumn(children[0], "IN")
			if err != nil {
				return nil, err
			}
			if len(children)-1 > MaxInValues {
				return nil, refuse(errs.Limit, at, fmt.Sprintf("IN list of %d values", len(children)-1),
					fmt.Sprintf("the limit is %d", MaxInValues))
			}
			if len(children) < 2 {
				return nil, p.shape(o, "IN")
			}
			e := &Expr{Op: op, Column: col}
			for _, c := range children[1:] {
				l, err := p.literal(c)
				if err != nil {
					return nil, err
				}
				e.Values = append(e.Values, l)
			}
			return e, nil
		case "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL":
			if len(children) != 1 {
				return nil, p.shape(o, "IS NULL")
			}
			col, err := p.operandColumn(children[0], "IS NULL")
			if err != nil {
				return nil, err
			}
			op := OpIsNull
			if o.str("type") == "OPERATOR_IS_NOT_NULL" {
				op = OpIsNotNull
			}
			return &Expr{Op: op, Column: col}, nil
		}
	case "COMPARISON":
		if !o.exactly("class", "type", "alias", "query_location", "left", "right") {
			return nil, p.shape(o, "WHERE")
		}
		op, ok := compareOps[o.str("type")]
		if !ok {
			break
		}
		l, _ := asObj(o["left"])
		r, _ := asObj(o["right"])
		if l.str("class") != "COLUMN_REF" && r.str("class") == "COLUMN_REF" {
			l, r, op = r, l, flipped[op]
		}
		if l.str("class") != "COLUMN_REF" {
			return nil, refuse(errs.Unsupported, p.firstLoc(l), p.describe(l)+" in a comparison",
				predHint)
		}
		if r.str("class") == "COLUMN_REF" {
			return nil, refuse(errs.Unsupported, at, "comparison of two columns", predHint)
		}
		col, err := p.column(l, false)
		if err != nil {
			return nil, err
		}
		lit, err := p.literal(r)
		if err != nil {
			return nil, err
		}
		return &Expr{Op: op, Column: col, Values: []Literal{lit}}, nil
	case "BETWEEN":
		if !o.exactly("class", "type", "alias", "query_location", "input", "lower", "upper") ||
			o.str("type") != "COMPARE_BETWEEN" {
			return nil, p.shape(o, "BETWEEN")
		}
		col, err := p.operandColumn(o["input"], "BETWEEN")
		if err != nil {
			return nil, err
		}
		lo, err := p.literal(o["lower"])
		if err != nil {
			return nil, err
		}
		hi, err := p.literal(o["upper"])
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpBetween, Column: col, Values: []Literal{lo, hi}}, nil
	case "COLUMN_REF":
		col, err := p.column(o, false)
		if err != nil {
			return nil, err
		}
		return nil, refuse(errs.Unsupported, at, "column "+col+" used as a condition",
			"compare it, for example "+col+" = true")
	}
	return nil, refuse(errs.Unsupported, p.firstLoc(o), p.describe(o)+" in WHERE", predHint)
}

// negated is the operator equivalent to NOT op, in SQL's three-valued
// logic too (NOT (a < 1) and a >= 1 are both NULL when a is NULL).
var negated = map[string]string{
	OpEq: OpNe, OpNe: OpEq, OpLt: OpGe, OpGe: OpLt, OpGt: OpLe, OpLe: OpGt,
	OpIn: OpNotIn, OpNotIn: OpIn, OpIsNull: OpIsNotNull, OpIsNotNull: OpIsNull,
}

// negate is NOT e, folded into e's operator where one is equivalent (as
// DuckDB's parser does for some of them), so that NOT (a = 1), NOT a = 1
// and a <> 1 are one plan; NOT NOT e is e.
func negate(e *Expr) *Expr {
	if op, ok := negated[e.Op]; ok {
		return &Expr{Op: op, Column: e.Column, Values: e.Values}
	}
	if e.Op == OpNot {
		return e.Children[0]
	}
	return &Expr{Op: OpNot, Children: []*Expr{e}}
}

// operandColumn reads the column operand of IN, BETWEEN or IS NULL.
func (p *parser) operandColumn(v any, what string) (string, *errs.Error) {
	o, ok := asObj(v)
	if !ok {
		return "", p.shape(v, what)
	}
	if o.str("class") != "COLUMN_REF" {
		return "", refuse(errs.Unsupported, p.firstLoc(o), p.describe(o)+" before "+what, predHint)
	}
	return p.column(o, false)
}

const literalHint = "literals are strings, numbers, true/false and DATE 'yyyy-mm-dd'"

// literal reads a constant: a string, integer, decimal, boolean, or a
// DATE 'yyyy-mm-dd' typed literal. Casts and NULL are refused.
func (p *parser) literal(v any) (Literal, *errs.Error) {
	o, ok := asObj(v)
	if !ok {
		return Literal{}, p.shape(v, "a literal")
	}
	at := p.loc(o)
	switch o.str("class") {
	case "CONSTANT":
		if !o.exactly("class", "type", "alias", "query_location", "value") ||
			o.str("type") != "VALUE_CONSTANT" || !o.emptyStr("alias") {
			return Literal{}, p.shape(o, "a literal")
		}
		val, ok := asObj(o["value"])
		if !ok {
			return Literal{}, p.shape(o, "a literal")
		}
		return p.constant(val, at)
	case "CAST":
		// DATE '2024-01-01', true and false come as casts of a string
		// constant with no position of their own; a written cast
		// (CAST(x AS t), x::t) has one.
		if !o.exactly("class", "type", "alias", "query_location", "child", "cast_type", "try_cast") ||
			o.str("type") != "OPERATOR_CAST" || !o.emptyStr("alias") {
			return Literal{}, p.shape(o, "a literal")
		}
		ct, ok := asObj(o["cast_type"])
		if !ok || !ct.exactly("id", "type_info") || !ct.null("type_info") {
			return Literal{}, refuse(errs.Unsupported, p.firstLoc(o), "cast", literalHint)
		}
		id := ct.str("id")
		if at >= 0 || !o.isFalse("try_cast") {
			return Literal{}, refuse(errs.Unsupported, at, "cast to "+id, literalHint)
		}
		child, ok := asObj(o["child"])
		if !ok || child.str("class") != "CONSTANT" {
			return Literal{}, refuse(errs.Unsupported, p.firstLoc(o), "cast to "+id, literalHint)
		}
		s, err := p.literal(child)
		if err != nil {
			return Literal{}, err
		}
		str, isStr := s.Value.(string)
		cat := p.loc(child)
		switch {
		case !isStr || s.Kind != KindString:
		case id == "DATE":
			if !validDate(str) {
				return Literal{}, refuse(errs.Unsupported, cat, fmt.Sprintf("date literal %q", str),
					"dates are DATE 'yyyy-mm-dd'")
			}
			return Literal{Kind: KindDate, Value: str}, nil
		case id == "BOOLEAN" && (str == "t" || str == "f"):
			return Literal{Kind: KindBool, Value: str == "t"}, nil
		}
		return Literal{}, refuse(errs.Unsupported, cat, id+" literal", literalHint)
	case "FUNCTION":
		if is, _ := o["is_operator"].(bool); is {
			return Literal{}, refuse(errs.Unsupported, p.firstLoc(o), p.describe(o),
				"arithmetic is not supported; "+literalHint)
		}
	}
	return Literal{}, refuse(errs.Unsupported, p.firstLoc(o), p.describe(o)+" where a literal is expected", literalHint)
}

// constant reads a Value object: {"type":{"id":..,"type_info":..},"is_null":..,"value":..}.
func (p *parser) constant(val obj, at int) (Literal, *errs.Error) {
	bad := func() (Literal, *errs.Error) {
		return Literal{}, refuse(errs.Unsupported, at, "unexpected query structure in a literal", literalHint)
	}
	typ, ok := asObj(val["type"])
	if !ok || !typ.exactly("id", "type_info") {
		return bad()
	}
	isNull, ok := val["is_null"].(bool)
	if !ok {
		return bad()
	}
	if isNull {
		return Literal{}, refuse(errs.Unsupported, at, "NULL literal", "use IS NULL or IS NOT NULL")
	}
	if !val.exactly("type", "is_null", "value") {
		return bad()
	}
	id := typ.str("id")
	if id != "DECIMAL" && !typ.null("type_info") {
		return bad()
	}
	raw := val["value"]
	switch id {
	case "VARCHAR":
		s, ok := raw.(string)
		if !ok {
			return bad()
		}
		if !validString(s) {
			return Literal{}, refuse(errs.Unsupported, at, "string literal with a NUL or invalid UTF-8", "")
		}
		return Literal{Kind: KindString, Value: s}, nil
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT":
		n, ok := raw.(json.Number)
		if !ok {
			return bad()
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return bad()
		}
		return Literal{Kind: KindInt, Value: i}, nil
	case "HUGEINT":
		if i, ok := hugeint(raw); ok {
			return Literal{Kind: KindInt, Value: i}, nil
		}
		return Literal{}, refuse(errs.Unsupported, at, "integer literal out of range",
			"integers are 64-bit")
	case "DECIMAL":
		ti, ok := asObj(typ["type_info"])
		if !ok || !ti.exactly("type", "alias", "modifiers", "width", "scale") ||
			ti.str("type") != "DECIMAL_TYPE_INFO" || !ti.emptyStr("alias") || !ti.emptyList("modifiers") {
			return bad()
		}
		sn, ok := ti["scale"].(json.Number)
		if !ok {
			return bad()
		}
		scale, err := strconv.Atoi(string(sn))
		if err != nil || scale < 0 || scale > 38 {
			return bad()
		}
		n, ok := raw.(json.Number)
		if !ok {
			return Literal{}, refuse(errs.Unsupported, at, "decimal literal with more than 18 digits",
				"write it in scientific notation, for example 1.5e20")
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			return bad()
		}
		f, err := strconv.ParseFloat(string(n)+"e-"+strconv.Itoa(scale), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return bad()
		}
		return Literal{Kind: KindFloat, Value: f + 0}, nil // + 0: no negative zero
	case "DOUBLE", "FLOAT":
		n, ok := raw.(json.Number)
		if !ok {
			return bad()
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return Literal{}, refuse(errs.Unsupported, at, "number out of range", "")
		}
		if f == 0 {
			f = 0 // no negative zero
		}
		return Literal{Kind: KindFloat, Value: f}, nil
	case "BOOLEAN":
		b, ok := raw.(bool)
		if !ok {
			return bad()
		}
		return Literal{Kind: KindBool, Value: b}, nil
	}
	return Literal{}, refuse(errs.Unsupported, at, id+" literal", literalHint)
}

// hugeint reads DuckDB's {"upper":..,"lower":..} 128-bit integer when it
// fits in 64 bits.
func hugeint(raw any) (int64, bool) {
	o, ok := asObj(raw)
	if !ok || !o.exactly("upper", "lower") {
		return 0, false
	}
	un, ok1 := o["upper"].(json.Number)
	ln, ok2 := o["lower"].(json.Number)
	if !ok1 || !ok2 {
		return 0, false
	}
	upper, err1 := strconv.ParseInt(string(un), 10, 64)
	lower, err2 := strconv.ParseUint(string(ln), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	switch {
	case upper == 0 && lower <= math.MaxInt64:
		return int64(lower), true
	case upper == -1 && lower > math.MaxInt64:
		return int64(lower), true
	}
	return 0, false
}

func validString(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
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
