package query

// The SELECT node: its clauses, the table, columns and aggregates.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

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
	var step *PersonStep
	if from, ok := asObj(n["from_table"]); ok {
		if from.str("type") == "SUBQUERY" {
			var err *errs.Error
			if step, err = p.personStep(from); err != nil {
				return nil, err
			}
		} else if err := p.fromTable(from); err != nil {
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
		if step != nil {
			return nil, refuse(errs.Unsupported, p.firstLoc(n["where_clause"]), "WHERE over a per-person step",
				"filter inside it: (SELECT COUNT(column) AS n FROM cohort WHERE ... GROUP BY person)")
		}
		e, err := p.pred(n["where_clause"], 1)
		if err != nil {
			return nil, err
		}
		plan.Where = e
	}
	if step != nil {
		plan.Step, plan.Where = step, step.Where
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

// personStep reads FROM (SELECT COUNT(column) AS n FROM cohort [WHERE
// ...] GROUP BY person): each person's count of rows, the per-person step
// of a distribution ("exposures per person, then people per count").
func (p *parser) personStep(t obj) (*PersonStep, *errs.Error) {
	hint := "a per-person step is (SELECT COUNT(column) AS n FROM cohort [WHERE ...] GROUP BY person), grouped outside by n with COUNT(*)"
	at := p.firstLoc(t)
	if !t.exactly("type", "alias", "sample", "query_location", "subquery", "column_name_alias") || !t.null("sample") || !t.emptyList("column_name_alias") {
		return nil, refuse(errs.Unsupported, at, "subquery in FROM", hint)
	}
	sq, ok := asObj(t["subquery"])
	if !ok || !sq.exactly("node") {
		return nil, refuse(errs.Unsupported, at, "subquery in FROM", hint)
	}
	n, ok := asObj(sq["node"])
	if !ok || n.str("type") != "SELECT_NODE" || !n.exactly(selectNodeKeys...) || !n.emptyList("modifiers") ||
		!n.null("having") || !n.null("qualify") || !n.null("sample") || n.str("aggregate_handling") != "STANDARD_HANDLING" {
		return nil, refuse(errs.Unsupported, at, "subquery in FROM", hint)
	}
	if cte, ok := asObj(n["cte_map"]); !ok || !cte.emptyList("map") {
		return nil, refuse(errs.Unsupported, at, "WITH inside a subquery", hint)
	}
	from, ok := asObj(n["from_table"])
	if !ok || from.str("type") != "BASE_TABLE" {
		return nil, refuse(errs.Unsupported, at, "a subquery not over cohort", hint)
	}
	if err := p.fromTable(from); err != nil {
		return nil, err
	}
	items, ok := n.list("select_list")
	if !ok || len(items) != 1 {
		return nil, refuse(errs.Unsupported, at, "a per-person step selecting other than one count", hint)
	}
	o, ok := asObj(items[0])
	if !ok || o.str("class") != "FUNCTION" {
		return nil, refuse(errs.Unsupported, p.firstLoc(items[0]), "a per-person step selecting other than one count", hint)
	}
	agg, err := p.aggregate(o)
	if err != nil {
		return nil, err
	}
	if agg.Func != Rows || o.emptyStr("alias") {
		return nil, refuse(errs.Unsupported, p.loc(o), "a per-person step of "+strings.ToUpper(string(agg.Func)), hint)
	}
	step := &PersonStep{Agg: agg}
	if !n.null("where_clause") {
		if step.Where, err = p.pred(n["where_clause"], 1); err != nil {
			return nil, err
		}
	}
	groups, ok := n.list("group_expressions")
	sets, _ := n.list("group_sets")
	if !ok || len(groups) != 1 || !p.plainGroupSets(sets, 1) {
		return nil, refuse(errs.Unsupported, at, "a per-person step not grouped by person", hint)
	}
	g, ok := asObj(groups[0])
	if !ok || g.str("class") != "COLUMN_REF" {
		return nil, refuse(errs.Unsupported, p.firstLoc(groups[0]), "a per-person step not grouped by person", hint)
	}
	if names, ok := g.list("column_names"); !ok || len(names) != 1 || fmt.Sprint(names[0]) != "person" {
		return nil, refuse(errs.Unsupported, p.loc(g), "a per-person step not grouped by person", hint)
	}
	return step, nil
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

const aggHint = "the aggregates are COUNT(*) (people), COUNT(column) (rows, bounded per person), SUM(metric) and AVG(metric)"

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
	case "count_star":
		fn = Count
	case "count":
		fn = Rows
	case "sum":
		fn = Sum
	case "avg":
		fn = Avg
	case "median":
		fn = Median
	case "quantile_cont", "quantile":
		fn = Quantile
	case "variance", "var_samp":
		fn = Variance
	case "stddev", "stddev_samp":
		fn = Stddev
	default:
		return Aggregate{}, refuse(errs.Unsupported, at, "function "+name+"()", aggHint)
	}
	upper := strings.ToUpper(string(fn))
	switch fn {
	case Rows:
		upper = "COUNT"
	case Quantile:
		upper = "QUANTILE_CONT"
	}
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
	default:
		want := 1
		if fn == Quantile {
			want = 2
		}
		if len(children) != want {
			hint := upper + " takes one column"
			if fn == Quantile {
				hint = "QUANTILE_CONT takes a metric column and a rank between 0 and 1, such as QUANTILE_CONT(spend, 0.9)"
			}
			return Aggregate{}, refuse(errs.Unsupported, at, fmt.Sprintf("%s() with %d arguments", upper, len(children)), hint)
		}
		if fn == Quantile {
			l, err := p.literal(children[1])
			if err != nil {
				return Aggregate{}, err
			}
			switch v := l.Value.(type) {
			case float64:
				agg.Rank = v
			case int64:
				agg.Rank = float64(v)
			}
			if !(agg.Rank > 0 && agg.Rank < 1) {
				return Aggregate{}, refuse(errs.Unsupported, p.firstLoc(children[1]), fmt.Sprintf("quantile rank %v", l.Value),
					"the rank is a number between 0 and 1 (0.5 is the median)")
			}
		}
		if fn == Median {
			agg.Rank = 0.5
		}
		c, ok := asObj(children[0])
		if !ok {
			return Aggregate{}, p.shape(o, "an aggregate")
		}
		if c.str("class") != "COLUMN_REF" {
			return Aggregate{}, refuse(errs.Unsupported, p.firstLoc(c), p.describe(c)+" inside "+upper+"()",
				upper+" takes a plain column")
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
