package query

import (
	"context"
	"strings"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
)

// CheckTypes refuses a predicate whose literal cannot be compared with its
// column's type. DuckDB would cast the column to the literal's type and
// fail only if some row's value does not convert: an error that depends on
// the data would tell the analyst something about it. Checked against the
// schema instead, the refusal depends on the query alone.
//
// It also refuses a column the rules allow but the cohort lacks (rules
// naming an attribute without its partner's prefix, say): the schema is
// both partners' knowledge, and the query must not reach DuckDB to fail.
func (p *Plan) CheckTypes(ctx context.Context, q store.Querier, src Source) error {
	types, err := ColumnTypes(ctx, q, src)
	if err != nil {
		return err
	}
	return p.checkTypes(types)
}

// checkTypes is CheckTypes against the cohort's column types.
func (p *Plan) checkTypes(types map[string]string) error {
	cols := p.ReadColumns()
	for _, c := range cols {
		if _, ok := types[c]; c != "" && !ok {
			return errs.New(errs.NotAllowed, "column %s is allowed by the rules but the cohort has no such column (cohort columns carry their partner's prefix, such as brand_co_); ask the admins to fix the rules", c).At(p.position(c))
		}
	}
	if p.Where == nil {
		return nil
	}
	return checkExprTypes(p.Where, types)
}

// ColumnTypes returns the DuckDB type of each column the cohort's
// queries may name, by the name they use.
func ColumnTypes(ctx context.Context, q store.Querier, src Source) (map[string]string, error) {
	links := map[string]bool{}
	var names []any
	for _, c := range src.Columns {
		if !links[c.Link] {
			links[c.Link] = true
			names = append(names, c.Link)
		}
	}
	stored := map[[2]string]string{}
	in := "NULL"
	if len(names) > 0 {
		in = strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	}
	rows, err := q.QueryContext(ctx, `SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND table_name IN (`+in+`)`, names...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var tb, n, t string
		if err := rows.Scan(&tb, &n, &t); err != nil {
			rows.Close()
			return nil, err
		}
		if links[tb] {
			stored[[2]string{tb, n}] = t
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	types := map[string]string{}
	for name, c := range src.Columns {
		if t, ok := stored[[2]string{c.Link, c.Source}]; ok {
			types[name] = t
		}
	}
	return types, nil
}

// whereColumns lists the columns a filter names.
func whereColumns(e *Expr) []string {
	if e == nil {
		return nil
	}
	var out []string
	for _, c := range []string{e.Column, e.Column2} {
		if c != "" {
			out = append(out, c)
		}
	}
	for _, c := range e.Children {
		out = append(out, whereColumns(c)...)
	}
	return out
}

func checkExprTypes(e *Expr, types map[string]string) error {
	for _, c := range e.Children {
		if err := checkExprTypes(c, types); err != nil {
			return err
		}
	}
	if e.Column == "" {
		return nil
	}
	t := types[e.Column]
	if e.Op == OpWithin {
		for _, c := range []string{e.Column, e.Column2} {
			if ct := types[c]; ct != "DATE" && !strings.HasPrefix(ct, "TIMESTAMP") {
				return errs.New(errs.Unsupported, "date_diff: column %s is %s, not a date or a timestamp", c, strings.ToLower(ct))
			}
		}
		return nil
	}
	for _, v := range e.Values {
		if !compatible(t, v.Kind) {
			return errs.New(errs.Unsupported, "column %s is %s and cannot be compared with a %s literal", e.Column, strings.ToLower(t), v.Kind)
		}
	}
	return nil
}

func compatible(colType, kind string) bool {
	switch {
	case colType == "VARCHAR":
		return kind == KindString
	case colType == "BOOLEAN":
		return kind == KindBool
	case colType == "DATE" || strings.HasPrefix(colType, "TIMESTAMP"):
		return kind == KindDate
	case strings.Contains(colType, "INT") || colType == "DOUBLE" || colType == "FLOAT" || strings.HasPrefix(colType, "DECIMAL"):
		return kind == KindInt || kind == KindFloat
	}
	return false
}

// position is where a column is first named in the query's text (-1:
// nowhere known).
func (p *Plan) position(col string) int {
	if at, ok := p.positions[col]; ok {
		return at
	}
	return -1
}
