package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
)

// Source is the cohort a plan runs on.
type Source struct {
	// People is the person map: one row per matched person, column uid.
	People string
	// Columns maps each column a plan may name to the linked table it
	// lives in (one row per source row of a party's table, with uid) and
	// its name there.
	Columns map[string]cohort.Column
}

// SourceOf is the Source of a collaboration's current cohort.
func SourceOf(co cohort.Cohort) Source { return Source{People: co.People, Columns: co.Columns} }

// BoundOptions are the per-user bounds of docs/design.md ("Queries").
type BoundOptions struct {
	// MaxGroups caps the groups one user contributes to; extra groups are
	// dropped at random.
	MaxGroups int64
	// Bounds clamps each metric's per-user, per-group sum.
	Bounds map[string][2]float64
	// MaxRows clamps, by column, each user's per-group count of the
	// column's rows (COUNT(column)): the rule max_rows_per_person.
	MaxRows map[string]float64
	// unbounded skips the group cap and clamping: only for the
	// statistical test's negative control.
	unbounded bool
	// perAggregate counts each quantile's leaves on its own (as for
	// quantiles of several columns), for the test of that path.
	perAggregate bool
}

// sqlText accumulates generated SQL and its bound arguments in order.
type sqlText struct {
	strings.Builder
	args []any
}

// expr writes a predicate with placeholders, its literals as arguments.
func (t *sqlText) expr(e *Expr) {
	writeExpr(&t.Builder, e, func(l Literal) {
		if l.Kind == KindDate {
			t.WriteString("CAST(? AS DATE)")
		} else {
			t.WriteString("?")
		}
		t.args = append(t.args, l.Value)
	})
}

// conjuncts splits a predicate into the terms of its top-level AND.
func conjuncts(e *Expr) []*Expr {
	if e == nil {
		return nil
	}
	if e.Op == OpAnd {
		var out []*Expr
		for _, c := range e.Children {
			out = append(out, conjuncts(c)...)
		}
		return out
	}
	return []*Expr{e}
}

// BoundedSQL generates the SQL that computes, inside DuckDB, each group's
// user count and the sums of clamped per-user values. The cohort is a
// person map and one linked table per table of each party; a plan reads
// the tables its columns live in, joined on the person (uid), so a
// person counts when they have rows in each of them (a plan naming no
// column counts the person map):
//
//  1. each table read, on its own: its rows passing the terms of the
//     WHERE that name only its columns, reduced to one row per person
//     and value of its grouped columns, with the person's own rows of
//     each metric summed there (never multiplied by another table's rows);
//  2. r: those joined on uid, one row per (user, group);
//  3. capped: at most MaxGroups random groups per user;
//  4. the groups: users counted once, per-user sums clamped, then added.
//
// A WHERE term that names columns of two tables (an OR across them) is
// evaluated on the joined rows of the tables, the one product of two
// tables' rows this generates, and only inside the query that asks for
// it: step 1 then keeps each source row (by its row id) and step 2 sums
// each source row once per (user, group).
func (p *Plan) BoundedSQL(src Source, o BoundOptions) (string, []any, error) {
	if p.Step != nil {
		return p.stepSQL(src, o)
	}
	// Where each column lives.
	type place struct{ link, source string }
	at := map[string]place{}
	for _, c := range p.ReadColumns() {
		col, ok := src.Columns[c]
		if !ok {
			return "", nil, fmt.Errorf("query: column %q is not in the cohort", c)
		}
		at[c] = place{col.Link, col.Source}
	}
	var linksUsed []string
	seen := map[string]bool{}
	for _, c := range p.ReadColumns() {
		if l := at[c].link; !seen[l] {
			seen[l] = true
			linksUsed = append(linksUsed, l)
		}
	}
	sort.Strings(linksUsed)
	alias := map[string]string{}
	for i, l := range linksUsed {
		alias[l] = fmt.Sprintf("t%d", i)
	}
	// The WHERE's terms, each on the one table it names, or across.
	own := map[string][]*Expr{}
	var across []*Expr
	for _, e := range conjuncts(p.Where) {
		ls := map[string]bool{}
		for _, c := range whereColumns(e) {
			ls[at[c].link] = true
		}
		if len(ls) == 1 {
			for l := range ls {
				own[l] = append(own[l], e)
			}
		} else {
			across = append(across, e)
		}
	}
	rowLevel := len(across) > 0

	// Metrics, each read once: vOf maps an aggregate to the one whose _v
	// it reads (SUM(x) and AVG(x) share it; COUNT(x) counts rows apart).
	vOf, first := map[int]int{}, map[string]int{}
	var metricAggs []int
	for i, a := range p.Aggregates {
		if a.Func == Count {
			continue
		}
		k := a.Column
		if a.Func == Rows {
			k = "rows:" + a.Column
		}
		if j, ok := first[k]; ok {
			vOf[i] = j
			continue
		}
		first[k], vOf[i] = i, i
		metricAggs = append(metricAggs, i)
	}
	// perPerson is how a person's own rows of aggregate j make its value.
	perPerson := func(j int) string {
		if p.Aggregates[j].Func == Rows {
			return "count"
		}
		return "sum"
	}
	q := func(c string) string { return store.QuoteIdent(c) }
	dimsOf := func(l string) []string {
		var out []string
		for _, d := range p.Dimensions {
			if at[d].link == l {
				out = append(out, q(d))
			}
		}
		return out
	}
	var t sqlText
	t.WriteString("WITH ")
	for _, l := range linksUsed {
		a := alias[l]
		// The table's columns under the names the plan uses.
		var cols []string
		for _, c := range p.ReadColumns() {
			if at[c].link == l {
				cols = append(cols, q(at[c].source)+" AS "+q(c))
			}
		}
		// Source rows are kept where a metric needs each counted once.
		hasMetric := false
		for _, j := range metricAggs {
			hasMetric = hasMetric || at[p.Aggregates[j].Column].link == l
		}
		if rowLevel && hasMetric {
			cols = append(cols, "rowid AS _row_"+a)
		}
		fmt.Fprintf(&t, "%s_rows AS (SELECT uid, %s FROM %s", a, strings.Join(cols, ", "), q(l))
		if terms := own[l]; len(terms) > 0 {
			t.WriteString(" WHERE ")
			t.expr(&Expr{Op: OpAnd, Children: terms})
		}
		t.WriteString("),\n")
		if rowLevel {
			continue
		}
		keys := append([]string{"uid"}, dimsOf(l)...)
		var sums []string
		for _, j := range metricAggs {
			if c := p.Aggregates[j].Column; at[c].link == l {
				sums = append(sums, fmt.Sprintf("%s(%s)::DOUBLE AS _v%d", perPerson(j), q(c), j))
			}
		}
		if len(sums) == 0 {
			fmt.Fprintf(&t, "%s AS (SELECT DISTINCT %s FROM %s_rows)", a, strings.Join(keys, ", "), a)
		} else {
			fmt.Fprintf(&t, "%s AS (SELECT %s, %s FROM %s_rows GROUP BY %s)", a, strings.Join(keys, ", "), strings.Join(sums, ", "), a, strings.Join(keys, ", "))
		}
		t.WriteString(",\n")
	}
	dims := make([]string, len(p.Dimensions))
	for i, d := range p.Dimensions {
		dims[i] = q(d)
	}
	withDims := func(prefix string) string {
		if len(dims) == 0 {
			return ""
		}
		return ", " + strings.Join(prefixed(prefix, dims), ", ")
	}
	// r: the tables joined on the person.
	from := q(src.People)
	if len(linksUsed) > 0 {
		var parts []string
		for _, l := range linksUsed {
			if rowLevel {
				parts = append(parts, alias[l]+"_rows")
			} else {
				parts = append(parts, alias[l])
			}
		}
		from = strings.Join(parts, " JOIN ")
		if len(parts) > 1 {
			from = parts[0]
			for _, x := range parts[1:] {
				from += " JOIN " + x + " USING (uid)"
			}
		}
	}
	perMetric := map[int]string{} // aggregate -> the CTE holding its _v
	var joins []int               // aggregates read from m CTEs, joined to capped
	if !rowLevel {
		fmt.Fprintf(&t, "r AS (SELECT uid%s", withDims(""))
		for _, j := range metricAggs {
			fmt.Fprintf(&t, ", _v%d", j)
			perMetric[j] = "c"
		}
		fmt.Fprintf(&t, " FROM %s),\n", from)
		t.WriteString("per AS (SELECT * FROM r)")
	} else {
		fmt.Fprintf(&t, "r AS (SELECT * FROM %s WHERE ", from)
		t.expr(&Expr{Op: OpAnd, Children: across})
		t.WriteString("),\n")
		// Metrics of one table (the usual case): its source rows of each
		// (person, group), once each, then summed or counted, in one
		// pass over the pairs. Metrics of several tables each need their
		// own rows counted once: a pass each (separate).
		links := map[string]bool{}
		for _, j := range metricAggs {
			links[at[p.Aggregates[j].Column].link] = true
		}
		var separate []int
		if len(links) == 1 {
			var l string
			for l = range links {
			}
			var cols, vals []string
			seen := map[string]bool{}
			for _, j := range metricAggs {
				c := q(p.Aggregates[j].Column)
				if !seen[c] {
					seen[c] = true
					cols = append(cols, c)
				}
				vals = append(vals, fmt.Sprintf("%s(%s)::DOUBLE AS _v%d", perPerson(j), c, j))
				perMetric[j] = "c"
			}
			fmt.Fprintf(&t, "d AS (SELECT DISTINCT uid%s, _row_%s, %s FROM r),\n", withDims(""), alias[l], strings.Join(cols, ", "))
			fmt.Fprintf(&t, "per AS (SELECT uid%s, %s FROM d GROUP BY uid%s)", withDims(""), strings.Join(vals, ", "), withDims(""))
		} else {
			separate = metricAggs
			t.WriteString("per AS (SELECT DISTINCT uid" + withDims("") + " FROM r)")
		}
		for _, j := range separate {
			c := p.Aggregates[j].Column
			row := "_row_" + alias[at[c].link]
			fmt.Fprintf(&t, ",\nm%d AS (SELECT uid%s, %s(_x)::DOUBLE AS _v%d FROM (SELECT DISTINCT uid%s, %s, %s AS _x FROM r) GROUP BY uid%s)",
				j, withDims(""), perPerson(j), j, withDims(""), row, q(c), withDims(""))
			perMetric[j] = fmt.Sprintf("m%d", j)
		}
		joins = separate
	}
	t.WriteString(",\ncapped AS (SELECT * FROM per")
	if !o.unbounded && len(dims) > 0 {
		fmt.Fprintf(&t, " QUALIFY row_number() OVER (PARTITION BY uid ORDER BY random()) <= %d", o.MaxGroups)
	}
	t.WriteString(")\n")
	// A distribution (median, variance) is summarised here, where the
	// people's values are: its quantile tree's leaves counted (_h), or its
	// centred sums (_c, _q), as dp.Spread holds them. When the quantiles
	// are all of one column, people are first counted by group and leaf
	// (a hash aggregate, as fast as DuckDB's own median) and the leaves of
	// each group gathered after; otherwise histogram() counts each.
	leafOf := func(v string, b [2]float64) string {
		// dp.QuantileLeaf, in the same floating-point steps.
		lo, hi := floatSQL(b[0]), floatSQL(b[1])
		return fmt.Sprintf("least(floor((%s - %s) / (%s - %s) * %d), %d)::INTEGER", v, lo, hi, lo, dp.QuantileLeaves, dp.QuantileLeaves-1)
	}
	quantCols := map[string]bool{}
	for _, a := range p.Aggregates {
		if a.Func == Median || a.Func == Quantile {
			quantCols[a.Column] = true
		}
	}
	byLeaf := len(quantCols) == 1 && !o.perAggregate
	inner := append([]string{}, prefixed("c.", dims)...)
	outer := append([]string{}, dims...)
	group := append([]string{}, prefixed("c.", dims)...)
	inner = append(inner, "count(*) AS _users")
	outer = append(outer, "coalesce(sum(_users), 0)::BIGINT AS _users")
	var spreads, outerSpreads []string
	for i, a := range p.Aggregates {
		if a.Func == Count {
			inner = append(inner, fmt.Sprintf("0.0::DOUBLE AS _s%d", i))
			outer = append(outer, fmt.Sprintf("0.0::DOUBLE AS _s%d", i))
			continue
		}
		j := vOf[i]
		v := fmt.Sprintf("coalesce(%s._v%d, 0)", perMetric[j], j)
		bounds, ok := o.Bounds[a.Column]
		if a.Func == Rows {
			var m float64
			m, ok = o.MaxRows[a.Column]
			bounds = [2]float64{0, m}
		}
		if !o.unbounded {
			if !ok {
				return "", nil, fmt.Errorf("query: no bounds for %s of %q", a.Func, a.Column)
			}
			// ±Inf (a sum past float64) clamps to a bound, and so does NaN
			// (+Inf plus -Inf, or a value stored before uploads refused
			// them): DuckDB sorts it above every number, so it becomes hi.
			v = fmt.Sprintf("least(greatest(%s, %s), %s)", v, floatSQL(bounds[0]), floatSQL(bounds[1]))
		}
		if !a.Func.distribution() {
			inner = append(inner, fmt.Sprintf("coalesce(sum(%s), 0)::DOUBLE AS _s%d", v, i))
			outer = append(outer, fmt.Sprintf("coalesce(sum(_s%d), 0)::DOUBLE AS _s%d", i, i))
			continue
		}
		// A distribution's release reads its spread, not a sum.
		inner = append(inner, fmt.Sprintf("0.0::DOUBLE AS _s%d", i))
		outer = append(outer, fmt.Sprintf("0.0::DOUBLE AS _s%d", i))
		if !ok {
			return "", nil, fmt.Errorf("query: no bounds for %s of %q", a.Func, a.Column)
		}
		switch {
		case (a.Func == Median || a.Func == Quantile) && byLeaf:
			if len(group) == len(dims) {
				inner = append(inner, leafOf(v, bounds)+" AS _l")
				group = append(group, "_l")
			}
			outerSpreads = append(outerSpreads, fmt.Sprintf("map_from_entries(list((_l, _users))) AS _h%d", i))
		case a.Func == Median || a.Func == Quantile:
			spreads = append(spreads, fmt.Sprintf("histogram(%s) AS _h%d", leafOf(v, bounds), i))
			outerSpreads = append(outerSpreads, fmt.Sprintf("_h%d", i))
		default:
			mid := floatSQL(dp.Midpoint(bounds[0], bounds[1]))
			spreads = append(spreads, fmt.Sprintf("coalesce(sum(%s - %s), 0)::DOUBLE AS _c%d, coalesce(sum((%s - %s) * (%s - %s)), 0)::DOUBLE AS _q%d",
				v, mid, i, v, mid, v, mid, i))
			outerSpreads = append(outerSpreads, fmt.Sprintf("coalesce(sum(_c%d), 0)::DOUBLE AS _c%d, coalesce(sum(_q%d), 0)::DOUBLE AS _q%d", i, i, i, i))
		}
	}
	if byLeaf {
		t.WriteString("SELECT " + strings.Join(append(outer, outerSpreads...), ", ") + " FROM (\n")
	}
	t.WriteString("SELECT " + strings.Join(append(inner, spreads...), ", "))
	t.WriteString("\nFROM capped c")
	for _, j := range joins {
		fmt.Fprintf(&t, "\nLEFT JOIN m%d ON m%d.uid = c.uid", j, j)
		for _, d := range dims {
			fmt.Fprintf(&t, " AND m%d.%s IS NOT DISTINCT FROM c.%s", j, d, d)
		}
	}
	if len(group) > 0 {
		t.WriteString("\nGROUP BY " + strings.Join(group, ", "))
	}
	if byLeaf {
		t.WriteString(")")
		if len(dims) > 0 {
			t.WriteString("\nGROUP BY " + strings.Join(dims, ", "))
		}
	}
	return t.String(), t.args, nil
}

// hasDistribution reports whether a plan has an aggregate that needs each
// person's value (median, quantile, variance, standard deviation).
func (p *Plan) hasDistribution() bool {
	for _, a := range p.Aggregates {
		if a.Func.distribution() {
			return true
		}
	}
	return false
}

// stepSQL is a per-person step's SQL: each person's rows of the counted
// column's table under the WHERE (which may name only that table's
// columns), counted and clamped to max_rows_per_person, then people
// counted by their count. Each person is in one group: the count is the
// bound.
func (p *Plan) stepSQL(src Source, o BoundOptions) (string, []any, error) {
	col, ok := src.Columns[p.Step.Agg.Column]
	if !ok {
		return "", nil, fmt.Errorf("query: column %q is not in the cohort", p.Step.Agg.Column)
	}
	cols := []string{store.QuoteIdent(col.Source) + " AS " + store.QuoteIdent(p.Step.Agg.Column)}
	seen := map[string]bool{p.Step.Agg.Column: true}
	for _, c := range whereColumns(p.Where) {
		wc, ok := src.Columns[c]
		if !ok {
			return "", nil, fmt.Errorf("query: column %q is not in the cohort", c)
		}
		if wc.Link != col.Link {
			return "", nil, errs.New(errs.NotAllowed, "the WHERE of a per-person step names %s, which is not in the table of %s; filter on that table's columns only", c, p.Step.Agg.Column)
		}
		if !seen[c] {
			seen[c] = true
			cols = append(cols, store.QuoteIdent(wc.Source)+" AS "+store.QuoteIdent(c))
		}
	}
	maxRows, ok := o.MaxRows[p.Step.Agg.Column]
	if !ok && !o.unbounded {
		return "", nil, fmt.Errorf("query: no bound for the count of %q", p.Step.Agg.Column)
	}
	var t sqlText
	fmt.Fprintf(&t, "WITH t AS (SELECT uid, %s FROM %s", strings.Join(cols, ", "), store.QuoteIdent(col.Link))
	if p.Where != nil {
		t.WriteString(" WHERE ")
		t.expr(p.Where)
	}
	alias := store.QuoteIdent(p.Step.Agg.Alias)
	n := "count(" + store.QuoteIdent(p.Step.Agg.Column) + ")"
	if !o.unbounded {
		n = fmt.Sprintf("least(%s, %d)", n, int64(maxRows))
	}
	fmt.Fprintf(&t, "),\nper AS (SELECT uid, %s::BIGINT AS %s FROM t GROUP BY uid)\nSELECT %s, count(*) AS _users", n, alias, alias)
	for i := range p.Aggregates {
		fmt.Fprintf(&t, ", 0.0::DOUBLE AS _s%d", i)
	}
	fmt.Fprintf(&t, " FROM per WHERE %s > 0 GROUP BY %s", alias, alias)
	return t.String(), t.args, nil
}

func prefixed(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

// floatSQL writes a bound as a DOUBLE literal; bounds come from the rules,
// which are validated as finite numbers within wire.MaxMetricBound.
func floatSQL(f float64) string { return fmt.Sprintf("CAST(%v AS DOUBLE)", f) }

// Groups runs the bounded SQL and returns each group's exact statistics,
// for dp.ReleaseGroups.
func (p *Plan) Groups(ctx context.Context, q store.Querier, src Source, o BoundOptions) ([]dp.Group, error) {
	text, args, err := p.BoundedSQL(src, o)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// Each row is a group: its users, each aggregate's sum of people's
	// values, then each distribution's summary (dp.Spread) in plan order.
	nd, na := len(p.Dimensions), len(p.Aggregates)
	var out []dp.Group
	key := make([]any, nd)
	var users int64
	sums := make([]float64, na)
	dest := make([]any, 0, nd+1+2*na)
	for i := range key {
		dest = append(dest, &key[i])
	}
	dest = append(dest, &users)
	for i := range sums {
		dest = append(dest, &sums[i])
	}
	type spreadCols struct {
		i          int
		leaves     store.Map
		sum, sumSq float64
	}
	var sc []*spreadCols
	for i, a := range p.Aggregates {
		if !a.Func.distribution() {
			continue
		}
		c := &spreadCols{i: i}
		sc = append(sc, c)
		if a.Func == Median || a.Func == Quantile {
			dest = append(dest, &c.leaves)
		} else {
			dest = append(dest, &c.sum, &c.sumSq)
		}
	}
	for rows.Next() {
		for _, c := range sc {
			c.leaves = nil
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		g := dp.Group{Key: slices.Clone(key), Users: users, Sums: slices.Clone(sums)}
		if len(sc) > 0 {
			g.Spreads = make([]*dp.Spread, na)
		}
		for _, c := range sc {
			s := &dp.Spread{N: users, Sum: c.sum, SumSquares: c.sumSq}
			if c.leaves != nil {
				s.Leaves = make(map[int]int64, len(c.leaves))
				for k, v := range c.leaves {
					leaf, ok1 := integer(k)
					n, ok2 := integer(v)
					if !ok1 || !ok2 {
						return nil, fmt.Errorf("query: quantile leaf %T with count %T", k, v)
					}
					s.Leaves[int(leaf)] = n
				}
			}
			g.Spreads[c.i] = s
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// An ungrouped query always has its one group, even with no users:
	// whether to release it is decided on the noisy count, never here.
	if nd == 0 && len(out) == 0 {
		out = append(out, dp.Group{Key: []any{}, Sums: make([]float64, na), Values: make([][]float64, na)})
	}
	return out, nil
}

// integer reads a DuckDB integer of any width.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}
