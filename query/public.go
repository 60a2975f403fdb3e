package query

import (
	"fmt"
	"strconv"
	"time"

	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

// Public groups (rule public_groups): a query grouped only by dimensions
// whose values the rules declare public releases every declared group,
// whatever the data holds. Its group keys say nothing about anyone, so no
// partition selection runs and no delta is spent; rows outside the
// declared values are filtered out before the per-person bound, so they
// take none of a person's max_groups_contributed.

// publicDomain returns, for a plan grouped only by public dimensions, each
// dimension's declared values; ok is false when some dimension is not
// public (or the plan is not grouped).
func publicDomain(p *Plan, r wire.Rules) (domain [][]any, ok bool) {
	if len(p.Dimensions) == 0 {
		return nil, false
	}
	for _, d := range p.Dimensions {
		pv, found := r.PublicGroups[d]
		if !found {
			return nil, false
		}
		domain = append(domain, pv.List())
	}
	return domain, true
}

// restrictToPublic returns a copy of the plan whose WHERE also keeps only
// rows whose grouped values are declared, as IN lists typed for each
// column (types: column name to DuckDB type).
func restrictToPublic(p *Plan, domain [][]any, types map[string]string) (*Plan, error) {
	q := *p
	terms := []*Expr{}
	if p.Where != nil {
		terms = append(terms, p.Where)
	}
	for i, d := range p.Dimensions {
		in := &Expr{Op: OpIn, Column: d}
		for _, v := range domain[i] {
			l, err := publicLiteral(v, types[d])
			if err != nil {
				return nil, errs.New(errs.RulesInvalid, "the rules' public values of %s do not fit its type (%s): %v; the admins must change rule public_groups", d, types[d], err)
			}
			in.Values = append(in.Values, l)
		}
		if len(in.Values) == 0 {
			return nil, errs.New(errs.RulesInvalid, "the rules declare no public values of %s; the admins must change rule public_groups", d)
		}
		terms = append(terms, in)
	}
	if len(terms) == 1 {
		q.Where = terms[0]
	} else {
		q.Where = &Expr{Op: OpAnd, Children: terms}
	}
	return &q, nil
}

// publicLiteral is a declared value as a literal of the column's type.
func publicLiteral(v any, colType string) (Literal, error) {
	var l Literal
	switch x := v.(type) {
	case string:
		l = Literal{Kind: KindString, Value: x}
		if colType == "DATE" || len(colType) >= 9 && colType[:9] == "TIMESTAMP" {
			l.Kind = KindDate
		}
	case float64:
		l = Literal{Kind: KindFloat, Value: x}
		if x == float64(int64(x)) {
			l = Literal{Kind: KindInt, Value: int64(x)}
		}
	case bool:
		l = Literal{Kind: KindBool, Value: x}
	default:
		return l, fmt.Errorf("value %v", v)
	}
	if !l.valid() || !compatible(colType, l.Kind) {
		return l, fmt.Errorf("value %v", v)
	}
	return l, nil
}

// keyText is a group key value's canonical text, to find a group of the
// data among the declared ones.
func keyText(v any) string {
	switch x := v.(type) {
	case nil:
		return "\x00null"
	case time.Time:
		return x.UTC().Format(time.DateOnly)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int16:
		return strconv.FormatInt(int64(x), 10)
	case int8:
		return strconv.FormatInt(int64(x), 10)
	case int:
		return strconv.Itoa(x)
	}
	return fmt.Sprint(v)
}

// declaredValue is a declared value as the database returns its type (a
// date as a time), for a group the data does not have.
func declaredValue(v any, colType string) any {
	if s, ok := v.(string); ok && (colType == "DATE" || len(colType) >= 9 && colType[:9] == "TIMESTAMP") {
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return t
		}
	}
	return v
}

// fillPublic returns every declared group in declared order (the product
// of the dimensions' values): the data's statistics where it has the
// group, none where it has not.
func fillPublic(p *Plan, domain [][]any, types map[string]string, got []dp.Group, aggs int) ([]dp.Group, error) {
	n := 1
	for _, d := range domain {
		n *= len(d)
		if n > wire.MaxPublicValues {
			return nil, errs.New(errs.NotAllowed, "grouped by public dimensions, this question would release %s groups or more, over the limit of %d; group by fewer dimensions or filter", strconv.Itoa(n), wire.MaxPublicValues)
		}
	}
	have := map[string]dp.Group{}
	for _, g := range got {
		k := ""
		for _, v := range g.Key {
			k += keyText(v) + "\x1f"
		}
		have[k] = g
	}
	out := make([]dp.Group, 0, n)
	idx := make([]int, len(domain))
	for range n {
		key := make([]any, len(domain))
		k := ""
		for i, j := range idx {
			key[i] = declaredValue(domain[i][j], types[p.Dimensions[i]])
			k += keyText(key[i]) + "\x1f"
		}
		if g, ok := have[k]; ok {
			out = append(out, g)
		} else {
			out = append(out, dp.Group{Key: key, Sums: make([]float64, aggs)})
		}
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(domain[i]) {
				break
			}
			idx[i] = 0
		}
	}
	return out, nil
}
