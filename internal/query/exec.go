package query

import (
	"context"
	"fmt"
	"strings"

	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/store"
)

// Source is the cohort a plan runs on.
type Source struct {
	// Table is the cohort table.
	Table string
	// RowColumn names, for a metric column, the source-row column of the
	// side it comes from (_a_row or _b_row): a person's rows on one side
	// are counted once each, never multiplied by the other side's rows.
	RowColumn func(column string) string
}

// BoundOptions are the per-user bounds of docs/design.md ("Queries").
type BoundOptions struct {
	// MaxGroups caps the groups one user contributes to; extra groups are
	// dropped at random.
	MaxGroups int64
	// Bounds clamps each metric's per-user, per-group sum.
	Bounds map[string][2]float64
	// Facts about the cohort that let the SQL skip steps that would change
	// nothing (see Facts). The zero value skips nothing.
	Facts Facts
	// unbounded skips the group cap and clamping: only for the
	// statistical test's negative control.
	unbounded bool
}

// Facts are properties of a cohort table that make bounding steps no-ops.
// They describe the whole table, not a query's result, and only decide
// whether a step that cannot change the answer is run, so they leak
// nothing.
type Facts struct {
	// UniqueRows lists the source-row columns (_a_row, _b_row) whose values
	// are unique in the table: that side's rows are never repeated by the
	// join, so no de-duplication is needed.
	UniqueRows map[string]bool
	// PerUser lists dimension columns that take one value per user: a
	// query grouped only by such columns puts each user in one group, so
	// the group cap has nothing to drop.
	PerUser map[string]bool
}

// BoundedSQL generates the SQL that computes, inside DuckDB, each group's
// user count and the sums of clamped per-user values:
//
//  1. r: the cohort rows passing WHERE;
//  2. per: one row per (user, group), with the user's own rows of each
//     metric summed, each source row once (DISTINCT over the side's
//     source row when the join may repeat it);
//  3. capped: at most MaxGroups random groups per user;
//  4. the groups: users counted once, per-user sums clamped, then added.
func (p *Plan) BoundedSQL(src Source, o BoundOptions) (string, []any, error) {
	where, args := p.WhereSQL()
	dims := make([]string, len(p.Dimensions))
	for i, d := range p.Dimensions {
		dims[i] = store.QuoteIdent(d)
	}
	withDims := func(prefix string) string {
		if len(dims) == 0 {
			return ""
		}
		return ", " + strings.Join(prefixed(prefix, dims), ", ")
	}
	need := map[string]bool{}
	var rcols []string
	add := func(c string) {
		if !need[c] {
			need[c] = true
			rcols = append(rcols, c)
		}
	}
	for _, d := range dims {
		add(d)
	}
	type metric struct {
		agg      int
		col, row string
		dedup    bool
	}
	var metrics []metric
	for i, a := range p.Aggregates {
		if a.Func == Count {
			continue
		}
		row := src.RowColumn(a.Column)
		if row == "" {
			return "", nil, fmt.Errorf("query: no source side known for metric %q", a.Column)
		}
		m := metric{agg: i, col: store.QuoteIdent(a.Column), row: store.QuoteIdent(row), dedup: !o.Facts.UniqueRows[row]}
		add(m.col)
		if m.dedup {
			add(m.row)
		}
		metrics = append(metrics, m)
	}
	capNeeded := !o.unbounded
	if capNeeded && len(dims) > 0 {
		perUser := true
		for _, d := range p.Dimensions {
			perUser = perUser && o.Facts.PerUser[d]
		}
		capNeeded = !perUser
	} else if len(dims) == 0 {
		capNeeded = false // one group: nothing to cap
	}

	var b strings.Builder
	b.WriteString("WITH r AS (SELECT uid")
	for _, c := range rcols {
		b.WriteString(", " + c)
	}
	fmt.Fprintf(&b, " FROM %s WHERE %s),\n", store.QuoteIdent(src.Table), where)
	b.WriteString("per AS (SELECT uid" + withDims(""))
	for _, m := range metrics {
		if !m.dedup {
			fmt.Fprintf(&b, ", sum(%s)::DOUBLE AS _v%d", m.col, m.agg)
		}
	}
	b.WriteString(" FROM r GROUP BY uid" + withDims("") + ")")
	for _, m := range metrics {
		if m.dedup {
			fmt.Fprintf(&b, ",\nm%d AS (SELECT uid%s, sum(_x)::DOUBLE AS _v%d FROM (SELECT DISTINCT uid%s, %s, %s AS _x FROM r) GROUP BY uid%s)",
				m.agg, withDims(""), m.agg, withDims(""), m.row, m.col, withDims(""))
		}
	}
	b.WriteString(",\ncapped AS (SELECT * FROM per")
	if capNeeded {
		fmt.Fprintf(&b, " QUALIFY row_number() OVER (PARTITION BY uid ORDER BY random()) <= %d", o.MaxGroups)
	}
	b.WriteString(")\nSELECT ")
	if len(dims) > 0 {
		b.WriteString(strings.Join(prefixed("c.", dims), ", ") + ", ")
	}
	b.WriteString("count(*) AS _users")
	for i, a := range p.Aggregates {
		if a.Func == Count {
			fmt.Fprintf(&b, ", 0.0::DOUBLE AS _s%d", i)
			continue
		}
		from := "c"
		for _, m := range metrics {
			if m.agg == i && m.dedup {
				from = fmt.Sprintf("m%d", i)
			}
		}
		v := fmt.Sprintf("coalesce(%s._v%d, 0)", from, i)
		if !o.unbounded {
			bounds, ok := o.Bounds[a.Column]
			if !ok {
				return "", nil, fmt.Errorf("query: no bounds for metric %q", a.Column)
			}
			v = fmt.Sprintf("least(greatest(%s, %s), %s)", v, floatSQL(bounds[0]), floatSQL(bounds[1]))
		}
		fmt.Fprintf(&b, ", sum(%s)::DOUBLE AS _s%d", v, i)
	}
	b.WriteString("\nFROM capped c")
	for _, m := range metrics {
		if !m.dedup {
			continue
		}
		fmt.Fprintf(&b, "\nLEFT JOIN m%d ON m%d.uid = c.uid", m.agg, m.agg)
		for _, d := range dims {
			fmt.Fprintf(&b, " AND m%d.%s IS NOT DISTINCT FROM c.%s", m.agg, d, d)
		}
	}
	if len(dims) > 0 {
		b.WriteString("\nGROUP BY " + strings.Join(prefixed("c.", dims), ", "))
	}
	return b.String(), args, nil
}

// CohortFacts computes Facts for the given dimension columns of a cohort
// table, in one pass.
func CohortFacts(ctx context.Context, q store.Querier, table string, dims []string) (Facts, error) {
	f := Facts{UniqueRows: map[string]bool{}, PerUser: map[string]bool{}}
	var inner, outer []string
	for i, d := range dims {
		c := store.QuoteIdent(d)
		// One value per user: min = max, and not a mix of null and non-null.
		inner = append(inner, fmt.Sprintf("(min(%s) IS DISTINCT FROM max(%s) OR (count(%s) > 0 AND count(%s) < count(*))) AS _d%d", c, c, c, c, i))
		outer = append(outer, fmt.Sprintf("NOT coalesce(bool_or(_d%d), FALSE)", i))
	}
	text := fmt.Sprintf(`SELECT (SELECT count(*) = count(DISTINCT _a_row) FROM %[1]s), (SELECT count(*) = count(DISTINCT _b_row) FROM %[1]s)`, store.QuoteIdent(table))
	if len(dims) > 0 {
		text += fmt.Sprintf(`, %s FROM (SELECT %s FROM %s GROUP BY uid)`, strings.Join(outer, ", "), strings.Join(inner, ", "), store.QuoteIdent(table))
	}
	rows, err := q.QueryContext(ctx, text)
	if err != nil {
		return f, err
	}
	defer rows.Close()
	if !rows.Next() {
		return f, rows.Err()
	}
	vals := make([]bool, 2+len(dims))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return f, err
	}
	f.UniqueRows["_a_row"], f.UniqueRows["_b_row"] = vals[0], vals[1]
	for i, d := range dims {
		f.PerUser[d] = vals[2+i]
	}
	return f, nil
}

func prefixed(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

// floatSQL writes a bound as a DOUBLE literal; bounds come from the rules,
// which are validated as finite numbers.
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
	nd, na := len(p.Dimensions), len(p.Aggregates)
	var out []dp.Group
	for rows.Next() {
		dest := make([]any, nd+1+na)
		key := make([]any, nd)
		var users int64
		sums := make([]float64, na)
		for i := range key {
			dest[i] = &key[i]
		}
		dest[nd] = &users
		for i := range sums {
			dest[nd+1+i] = &sums[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		// An ungrouped query always has its one row, even with no users:
		// whether to release it is decided on the noisy count, never here.
		out = append(out, dp.Group{Key: key, Users: users, Sums: sums})
	}
	return out, rows.Err()
}
