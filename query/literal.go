package query

// The literals of a condition.

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cleanroom/cleanroom/internal/errs"
)

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
