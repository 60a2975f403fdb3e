package query

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/cleanroom/cleanroom/dp"
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

// BoundOptions are the per-user bounds of DESIGN.md.
type BoundOptions struct {
	// MaxGroups caps the groups one user contributes to; extra groups are
	// dropped at random.
	MaxGroups int64
	// Bounds clamps each metric's per-user, per-group sum.
	Bounds map[string][2]float64
	// unbounded skips the group cap and clamping: only for the
	// statistical test's negative control.
	unbounded bool
}

// Rows is what Aggregate reads from: *sql.DB or *sql.Tx.
type Rows interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// BoundedSQL generates the SQL that computes, inside DuckDB, each group's
// user count and the sums of clamped per-user values:
//
//  1. r: the cohort rows passing WHERE;
//  2. ug: each (user, group) pair once; capped keeps at most MaxGroups
//     random groups per user;
//  3. per metric: each user's own rows on the metric's side, once each
//     (DISTINCT over the source row), summed per (user, group);
//  4. the groups: users counted once, per-user sums clamped, then added.
func (p *Plan) BoundedSQL(src Source, o BoundOptions) (string, []any, error) {
	where, args := p.WhereSQL()
	dims := make([]string, len(p.Dimensions))
	for i, d := range p.Dimensions {
		dims[i] = Ident(d)
	}
	withDims := func(prefix string) string {
		if len(dims) == 0 {
			return ""
		}
		parts := make([]string, len(dims))
		for i, d := range dims {
			parts[i] = prefix + d
		}
		return ", " + strings.Join(parts, ", ")
	}
	// Columns r needs: dimensions, metrics and their source rows.
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
	type metric struct{ col, row string }
	var metrics []metric
	for _, a := range p.Aggregates {
		if a.Func == Count {
			continue
		}
		row := src.RowColumn(a.Column)
		if row == "" {
			return "", nil, fmt.Errorf("query: no source side known for metric %q", a.Column)
		}
		add(Ident(a.Column))
		add(Ident(row))
		metrics = append(metrics, metric{Ident(a.Column), Ident(row)})
	}
	var b strings.Builder
	b.WriteString("WITH r AS (SELECT uid")
	for _, c := range rcols {
		b.WriteString(", " + c)
	}
	fmt.Fprintf(&b, " FROM %s WHERE %s),\n", Ident(src.Table), where)
	fmt.Fprintf(&b, "ug AS (SELECT DISTINCT uid%s FROM r),\n", withDims(""))
	if o.unbounded {
		b.WriteString("capped AS (SELECT * FROM ug)")
	} else {
		fmt.Fprintf(&b, "capped AS (SELECT uid%s FROM (SELECT *, row_number() OVER (PARTITION BY uid ORDER BY random()) AS _rn FROM ug) WHERE _rn <= %d)", withDims(""), o.MaxGroups)
	}
	for i, m := range metrics {
		fmt.Fprintf(&b, ",\nm%d AS (SELECT uid%s, sum(_v) AS _v FROM (SELECT DISTINCT uid%s, %s, %s AS _v FROM r) GROUP BY uid%s)",
			i, withDims(""), withDims(""), m.row, m.col, withDims(""))
	}
	b.WriteString("\nSELECT ")
	if len(dims) > 0 {
		b.WriteString(strings.Join(prefixed("c.", dims), ", ") + ", ")
	}
	b.WriteString("count(*) AS _users")
	mi := 0
	for i, a := range p.Aggregates {
		if a.Func == Count {
			fmt.Fprintf(&b, ", 0.0::DOUBLE AS _s%d", i)
			continue
		}
		v := fmt.Sprintf("coalesce(m%d._v, 0)::DOUBLE", mi)
		if !o.unbounded {
			bounds, ok := o.Bounds[a.Column]
			if !ok {
				return "", nil, fmt.Errorf("query: no bounds for metric %q", a.Column)
			}
			v = fmt.Sprintf("least(greatest(%s, %s), %s)", v, floatSQL(bounds[0]), floatSQL(bounds[1]))
		}
		fmt.Fprintf(&b, ", sum(%s) AS _s%d", v, i)
		mi++
	}
	b.WriteString("\nFROM capped c")
	for i := range metrics {
		fmt.Fprintf(&b, "\nLEFT JOIN m%d ON m%d.uid = c.uid", i, i)
		for _, d := range dims {
			fmt.Fprintf(&b, " AND m%d.%s IS NOT DISTINCT FROM c.%s", i, d, d)
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
func (p *Plan) Groups(ctx context.Context, q Rows, src Source, o BoundOptions) ([]dp.Group, error) {
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
