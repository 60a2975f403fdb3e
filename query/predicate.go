package query

// WHERE: conditions on dimensions, combined with AND, OR and NOT.

import (
	"fmt"

	"github.com/cleanroom/cleanroom/internal/errs"
)

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

const predHint = "conditions compare a dimension with literals: = <> < <= > >= IN NOT IN BETWEEN IS NULL, or two dates by date_diff('day', first, later) BETWEEN n AND m, combined with AND OR NOT"

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
			return nil, refuse(errs.Unsupported, at, "comparison of two columns",
				"compare two dates as date_diff('day', first, later) BETWEEN 0 AND 7 (later within 0 to 7 days after first)")
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
		if in, ok := asObj(o["input"]); ok && in.str("class") == "FUNCTION" {
			return p.within(in, o["lower"], o["upper"])
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

// within reads date_diff('day', first, later) BETWEEN lo AND hi: a time
// window between two date columns, in whole days.
func (p *parser) within(f obj, lower, upper any) (*Expr, *errs.Error) {
	at := p.loc(f)
	hint := "a time window is date_diff('day', first_date, later_date) BETWEEN 0 AND 7"
	name := asciiLower(f.str("function_name"))
	if !f.exactly(functionKeys...) || (name != "date_diff" && name != "datediff") {
		return nil, refuse(errs.Unsupported, at, p.describe(f)+" before BETWEEN", hint)
	}
	if is, ok := f["is_operator"].(bool); !ok || is || !f.emptyStr("schema") || !f.emptyStr("catalog") || !f.emptyStr("alias") {
		return nil, refuse(errs.Unsupported, at, p.describe(f)+" before BETWEEN", hint)
	}
	if d, ok := f["distinct"].(bool); !ok || d || !f.null("filter") || !f.isFalse("export_state") {
		return nil, refuse(errs.Unsupported, at, "date_diff with modifiers", hint)
	}
	if ob, ok := asObj(f["order_bys"]); !ok || !ob.emptyList("orders") {
		return nil, refuse(errs.Unsupported, at, "date_diff with ORDER BY", hint)
	}
	args, ok := f.list("children")
	if !ok || len(args) != 3 {
		return nil, refuse(errs.Unsupported, at, "date_diff with other than three arguments", hint)
	}
	unit, err := p.literal(args[0])
	if err != nil {
		return nil, err
	}
	if u, _ := unit.Value.(string); unit.Kind != KindString || asciiLower(u) != "day" {
		return nil, refuse(errs.Unsupported, p.firstLoc(args[0]), fmt.Sprintf("date_diff unit %v", unit.Value), hint+" (the unit is 'day')")
	}
	var cols [2]string
	for i := range cols {
		c, ok := asObj(args[i+1])
		if !ok || c.str("class") != "COLUMN_REF" {
			return nil, refuse(errs.Unsupported, p.firstLoc(args[i+1]), p.describe(c)+" in date_diff", hint)
		}
		if cols[i], err = p.column(c, false); err != nil {
			return nil, err
		}
	}
	e := &Expr{Op: OpWithin, Column: cols[0], Column2: cols[1]}
	for _, b := range []any{lower, upper} {
		l, err := p.literal(b)
		if err != nil {
			return nil, err
		}
		if l.Kind != KindInt {
			return nil, refuse(errs.Unsupported, p.firstLoc(b), fmt.Sprintf("%v days", l.Value), "a time window's bounds are whole days")
		}
		e.Values = append(e.Values, l)
	}
	return e, nil
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
