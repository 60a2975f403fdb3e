package query

import (
	"context"
	"fmt"
	"strings"

	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/cohort"
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
	// Facts about the cohort, computed when it was built, that let the SQL
	// skip steps that would change nothing or cap groups by a cheaper
	// plan. The zero value skips nothing.
	Facts cohort.Facts
	// unbounded skips the group cap and clamping: only for the
	// statistical test's negative control.
	unbounded bool
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
//
// A query with no WHERE whose grouped columns all have one value per user
// but one, which has a rank in the cohort (Facts.GroupRank), caps groups
// in step 1 instead: the rows whose value is among the user's first
// MaxGroups in the user's random order. It is the same bound without
// sorting the (user, group) pairs by user. With a WHERE the rank would
// count groups the filter removes, keeping fewer than it may, so such
// queries sort.
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
	// SUM(x) and AVG(x) read one per-user value: vOf maps an aggregate to
	// the one whose _v it reads, so DuckDB sums and clamps it once.
	vOf, first := map[int]int{}, map[string]int{}
	for i, a := range p.Aggregates {
		if a.Func == Count {
			continue
		}
		if j, ok := first[a.Column]; ok {
			vOf[i] = j
			continue
		}
		first[a.Column], vOf[i] = i, i
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
	perUser := len(dims) > 0
	for _, d := range p.Dimensions {
		perUser = perUser && o.Facts.PerUser[d]
	}
	// One group per user: nothing to cap.
	capNeeded := !o.unbounded && len(dims) > 0 && !perUser

	if capNeeded && p.Where == nil {
		// With every other grouped column one value per user, a user's
		// groups are the values of the one that varies: its rank caps them.
		var varying []string
		for _, d := range p.Dimensions {
			if !o.Facts.PerUser[d] {
				varying = append(varying, d)
			}
		}
		if len(varying) == 1 && o.Facts.GroupRank[varying[0]] != "" {
			where = fmt.Sprintf("%s < %d", store.QuoteIdent(o.Facts.GroupRank[varying[0]]), o.MaxGroups)
			capNeeded = false
		}
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
		j, from := vOf[i], "c"
		for _, m := range metrics {
			if m.agg == j && m.dedup {
				from = fmt.Sprintf("m%d", j)
			}
		}
		v := fmt.Sprintf("coalesce(%s._v%d, 0)", from, j)
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
