package query

import (
	"context"
	"fmt"
	"strings"

	"github.com/cleanroom/cleanroom/internal/store"
)

// CheckTypes refuses a predicate whose literal cannot be compared with its
// column's type. DuckDB would cast the column to the literal's type and
// fail only if some row's value does not convert: an error that depends on
// the data would tell the analyst something about it. Checked against the
// schema instead, the refusal depends on the query alone.
func (p *Plan) CheckTypes(ctx context.Context, q store.Querier, table string) error {
	if p.Where == nil {
		return nil
	}
	rows, err := q.QueryContext(ctx, `SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?`, table)
	if err != nil {
		return err
	}
	types := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			rows.Close()
			return err
		}
		types[n] = t
	}
	rows.Close()
	return checkExprTypes(p.Where, types)
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
	for _, v := range e.Values {
		if !compatible(t, v.Kind) {
			return &Error{Code: CodeUnsupported, Position: -1,
				Message: fmt.Sprintf("column %s is %s and cannot be compared with a %s literal", e.Column, strings.ToLower(t), v.Kind)}
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
