package query

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// Func is an aggregate function of the subset.
type Func string

// The aggregates of the subset.
const (
	Count Func = "count" // COUNT(*): distinct users (privacy units)
	// Rows is COUNT(column): the rows of the column's table with a value,
	// each person's count clamped to the rule max_rows_per_person.
	Rows Func = "rows"
	Sum  Func = "sum" // SUM(metric)
	Avg  Func = "avg" // AVG(metric)
	// The distribution of people's values (each person's sum of the
	// metric in the group, clamped to its bounds), from google's DP
	// library: a quantile (MEDIAN is the 0.5 one), the variance and the
	// standard deviation. Their answers carry no interval.
	Median   Func = "median"   // MEDIAN(metric)
	Quantile Func = "quantile" // QUANTILE_CONT(metric, rank)
	Variance Func = "variance" // VARIANCE(metric)
	Stddev   Func = "stddev"   // STDDEV(metric)
)

// distribution reports whether an aggregate needs each person's value,
// not only their sum over the group.
func (f Func) distribution() bool {
	return f == Median || f == Quantile || f == Variance || f == Stddev
}

// Aggregate is one aggregate of the select list.
type Aggregate struct {
	Func Func
	// Column is the metric summed or averaged; "" for count.
	Column string
	// Alias is the output column's name: the analyst's AS alias, or the
	// default (count, sum_<metric>, avg_<metric>).
	Alias string
	// Rank is a quantile's rank, in (0, 1): 0.5 for MEDIAN.
	Rank float64
}

// DefaultAlias is the output name of an aggregate written without AS.
func (a Aggregate) DefaultAlias() string {
	switch a.Func {
	case Count:
		return "count"
	case Rows:
		return "count_" + a.Column
	case Quantile:
		if pct := a.Rank * 100; pct == math.Trunc(pct) {
			return fmt.Sprintf("p%d_%s", int(pct), a.Column)
		}
		return "quantile_" + a.Column
	}
	return string(a.Func) + "_" + a.Column
}

// PersonStep is a per-person step before the release: each person's count
// of rows (Agg, a COUNT(column) with its alias, clamped to
// max_rows_per_person) under the plan's WHERE. The plan is then grouped by
// that count (its one dimension, the alias) and counts people in each:
// a distribution of people by their number of rows, whose groups 1 to
// max_rows_per_person are public.
type PersonStep struct {
	Agg   Aggregate
	Where *Expr // as parsed; the plan's Where is the same
}

// OutputColumn is one column of the answer, in select order. Index points
// into Plan.Dimensions when Dimension is set, else into Plan.Aggregates.
type OutputColumn struct {
	Name      string
	Dimension bool
	Index     int
}

// Plan is a validated query of the subset. It holds no analyst text other
// than literal values, which only ever travel as bound parameters.
type Plan struct {
	// Dimensions are the GROUP BY columns, in select order; empty for a
	// query over the whole cohort.
	Dimensions []string
	Aggregates []Aggregate
	// Where is the filter; nil if none.
	Where *Expr
	// Step, when set, is a per-person step before the release (the one
	// dimension is its alias); nil for a plain question.
	Step *PersonStep
	// Columns is the output, in select order.
	Columns []OutputColumn

	// positions holds the byte offset of each column's first mention in
	// the analyst's text, for Check's messages.
	positions map[string]int
}

// Expression operators.
const (
	OpAnd       = "and"
	OpOr        = "or"
	OpNot       = "not"
	OpEq        = "eq"
	OpNe        = "ne"
	OpLt        = "lt"
	OpLe        = "le"
	OpGt        = "gt"
	OpGe        = "ge"
	OpIn        = "in"
	OpNotIn     = "not_in"
	OpBetween   = "between"
	OpIsNull    = "is_null"
	OpIsNotNull = "is_not_null"
	// OpWithin: date_diff('day', Column, Column2) BETWEEN Values[0] AND
	// Values[1], two date or timestamp columns, whole days apart (a time
	// window: a purchase within 7 days after an exposure).
	OpWithin = "within"
)

// Expr is a node of the WHERE predicate. and/or/not have Children (and at
// least 2, or exactly 1 for not); the others name a Column and carry
// Values: one for comparisons, one or more for in/not_in, two (lower,
// upper) for between, none for is_null/is_not_null.
type Expr struct {
	Op       string
	Column   string
	Column2  string // OpWithin's later date
	Values   []Literal
	Children []*Expr
}

// Literal kinds and the Go type of their Value.
const (
	KindString = "string" // string
	KindInt    = "int"    // int64
	KindFloat  = "float"  // float64, finite
	KindBool   = "bool"   // bool
	KindDate   = "date"   // string, yyyy-mm-dd
)

// Literal is a constant of the predicate.
type Literal struct {
	Kind  string
	Value any
}

// refuse builds a refusal whose message is what, " at position N" when
// the position is known, then "; hint" when there is one.
func refuse(k *errs.Kind, pos int, what, hint string) *errs.Error {
	msg := what
	if pos >= 0 {
		msg += " at position " + strconv.Itoa(pos)
	} else {
		pos = -1
	}
	if hint != "" {
		msg += "; " + hint
	}
	return &errs.Error{Kind: k, Message: msg, Position: pos}
}

// Hidden reports whether a column is never visible to analysts: the
// privacy unit uid, DuckDB's rowid, and internal columns starting with _
// (such as the source rows _a_row and _b_row).
func Hidden(column string) bool {
	return column == "uid" || column == "rowid" || strings.HasPrefix(column, "_")
}

// GroupSQL is the generated GROUP BY list: the quoted dimensions separated
// by ", ", or "" when the query is not grouped.
func (p *Plan) GroupSQL() string {
	parts := make([]string, len(p.Dimensions))
	for i, d := range p.Dimensions {
		parts[i] = store.QuoteIdent(d)
	}
	return strings.Join(parts, ", ")
}

// WhereSQL is the generated predicate, with ? placeholders and their
// arguments in order: only quoted column names, placeholders and fixed
// keywords, never analyst text. It is "TRUE" when the plan has no WHERE. A
// node the generator does not know (only possible in a plan built by hand
// that Check would refuse) becomes FALSE.
func (p *Plan) WhereSQL() (string, []any) {
	if p.Where == nil {
		return "TRUE", nil
	}
	var b strings.Builder
	var args []any
	writeExpr(&b, p.Where, func(l Literal) {
		if l.Kind == KindDate {
			b.WriteString("CAST(? AS DATE)")
		} else {
			b.WriteString("?")
		}
		args = append(args, l.Value)
	})
	return b.String(), args
}

// Canonical is a deterministic text of the plan: the same question written
// with different whitespace, comments, keyword or identifier case, default
// aliases spelled out or not, or a literal on the left of a comparison,
// gives the same string. The order of select items, AND/OR children and IN
// values is kept. It is itself a query of the subset, and parsing it gives
// back the same canonical text. It is the cache key (with the partner and
// the cohort version); it is never executed.
func (p *Plan) Canonical() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range p.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		if c.Dimension {
			if c.Index >= 0 && c.Index < len(p.Dimensions) {
				b.WriteString(store.QuoteIdent(p.Dimensions[c.Index]))
			}
			continue
		}
		if c.Index < 0 || c.Index >= len(p.Aggregates) {
			continue
		}
		a := p.Aggregates[c.Index]
		switch a.Func {
		case Count:
			b.WriteString("COUNT(*)")
		case Rows:
			b.WriteString("COUNT(" + store.QuoteIdent(a.Column) + ")")
		case Quantile:
			b.WriteString("QUANTILE_CONT(" + store.QuoteIdent(a.Column) + ", " + strconv.FormatFloat(a.Rank, 'g', -1, 64) + ")")
		default:
			b.WriteString(strings.ToUpper(string(a.Func)) + "(" + store.QuoteIdent(a.Column) + ")")
		}
		if a.Alias != a.DefaultAlias() {
			b.WriteString(" AS " + store.QuoteIdent(a.Alias))
		}
	}
	if p.Step != nil {
		b.WriteString(" FROM (SELECT COUNT(" + store.QuoteIdent(p.Step.Agg.Column) + ") AS " + store.QuoteIdent(p.Step.Agg.Alias) + " FROM cohort")
		if p.Where != nil {
			b.WriteString(" WHERE ")
			writeExpr(&b, p.Where, func(l Literal) { b.WriteString(l.canonical()) })
		}
		b.WriteString(" GROUP BY person)")
	} else {
		b.WriteString(" FROM cohort")
		if p.Where != nil {
			b.WriteString(" WHERE ")
			writeExpr(&b, p.Where, func(l Literal) { b.WriteString(l.canonical()) })
		}
	}
	if len(p.Dimensions) > 0 {
		b.WriteString(" GROUP BY " + p.GroupSQL())
	}
	return b.String()
}

// Hash is the hex SHA-256 of Canonical.
func (p *Plan) Hash() string {
	h := sha256.Sum256([]byte(p.Canonical()))
	return hex.EncodeToString(h[:])
}

var compareSQL = map[string]string{
	OpEq: "=", OpNe: "<>", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=",
}

// writeExpr renders e with lit writing each literal (a placeholder for
// WhereSQL, the value for Canonical).
func writeExpr(b *strings.Builder, e *Expr, lit func(Literal)) {
	if e == nil {
		b.WriteString("FALSE")
		return
	}
	switch e.Op {
	case OpAnd, OpOr:
		if len(e.Children) == 0 {
			b.WriteString("FALSE")
			return
		}
		b.WriteString("(")
		for i, c := range e.Children {
			if i > 0 {
				b.WriteString(" " + strings.ToUpper(e.Op) + " ")
			}
			writeExpr(b, c, lit)
		}
		b.WriteString(")")
	case OpNot:
		if len(e.Children) != 1 {
			b.WriteString("FALSE")
			return
		}
		b.WriteString("(NOT ")
		writeExpr(b, e.Children[0], lit)
		b.WriteString(")")
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		if len(e.Values) != 1 {
			b.WriteString("FALSE")
			return
		}
		b.WriteString(store.QuoteIdent(e.Column) + " " + compareSQL[e.Op] + " ")
		lit(e.Values[0])
	case OpIn, OpNotIn:
		if len(e.Values) == 0 {
			b.WriteString("FALSE")
			return
		}
		b.WriteString(store.QuoteIdent(e.Column))
		if e.Op == OpIn {
			b.WriteString(" IN (")
		} else {
			b.WriteString(" NOT IN (")
		}
		for i, v := range e.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			lit(v)
		}
		b.WriteString(")")
	case OpBetween:
		if len(e.Values) != 2 {
			b.WriteString("FALSE")
			return
		}
		b.WriteString(store.QuoteIdent(e.Column) + " BETWEEN ")
		lit(e.Values[0])
		b.WriteString(" AND ")
		lit(e.Values[1])
	case OpWithin:
		if len(e.Values) != 2 {
			b.WriteString("FALSE")
			return
		}
		b.WriteString("date_diff('day', " + store.QuoteIdent(e.Column) + ", " + store.QuoteIdent(e.Column2) + ") BETWEEN ")
		lit(e.Values[0])
		b.WriteString(" AND ")
		lit(e.Values[1])
	case OpIsNull:
		b.WriteString(store.QuoteIdent(e.Column) + " IS NULL")
	case OpIsNotNull:
		b.WriteString(store.QuoteIdent(e.Column) + " IS NOT NULL")
	default:
		b.WriteString("FALSE")
	}
}

// canonical renders a literal as SQL text that parses back to itself.
func (l Literal) canonical() string {
	switch v := l.Value.(type) {
	case string:
		if l.Kind == KindDate {
			return "DATE '" + v + "'"
		}
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEnN") {
			s += ".0" // keep 1.0 apart from the integer 1
		}
		return s
	case bool:
		if v {
			return "TRUE"
		}
		return "FALSE"
	}
	return "NULL"
}

// valid reports whether the literal's Kind and Value agree and the value
// is in range.
func (l Literal) valid() bool {
	switch v := l.Value.(type) {
	case string:
		switch l.Kind {
		case KindString:
			return validString(v)
		case KindDate:
			return validDate(v)
		}
	case int64:
		return l.Kind == KindInt
	case float64:
		return l.Kind == KindFloat && !math.IsNaN(v) && !math.IsInf(v, 0)
	case bool:
		return l.Kind == KindBool
	}
	return false
}

var dateRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

func validDate(s string) bool {
	if !dateRE.MatchString(s) {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

// Check verifies the plan against a collaboration's rules: every column in
// GROUP BY and WHERE is one of dimensions, every SUM/AVG column one of
// metrics' keys. It also verifies the plan's structure, so a plan built by
// hand gets the same guarantees as one from Parse. Refusals are *errs.Error with
// code not_allowed (hidden_column for hidden columns, unsupported for a
// malformed plan), naming the column and listing the allowed ones.
func (p *Plan) Check(dimensions []string, metrics map[string][2]float64) error {
	if err := p.validate(); err != nil {
		return err
	}
	dims := map[string]bool{}
	for _, d := range dimensions {
		if !Hidden(d) {
			dims[d] = true
		}
	}
	allowedDims := sortedKeys(dims)
	allowedMetrics := []string{}
	for m := range metrics {
		if !Hidden(m) {
			allowedMetrics = append(allowedMetrics, m)
		}
	}
	sort.Strings(allowedMetrics)
	list := func(names []string) string {
		if len(names) == 0 {
			return "none"
		}
		return strings.Join(names, ", ")
	}
	pos := p.position
	dimension := func(col, where string) error {
		if Hidden(col) {
			return hiddenError(col, pos(col))
		}
		if dims[col] {
			return nil
		}
		what := fmt.Sprintf("column %s in %s is not a dimension of this collaboration", col, where)
		if _, ok := metrics[col]; ok {
			what = fmt.Sprintf("column %s in %s is a metric, which can only be summed or averaged", col, where)
		}
		return refuse(errs.NotAllowed, pos(col), what, "allowed dimensions: "+list(allowedDims))
	}
	for _, d := range p.Dimensions {
		if p.Step != nil && d == p.Step.Agg.Alias {
			continue // the per-person count, not a column
		}
		if err := dimension(d, "GROUP BY"); err != nil {
			return err
		}
	}
	if p.Step != nil {
		c := p.Step.Agg.Column
		if Hidden(c) {
			return hiddenError(c, pos(c))
		}
		if _, ok := metrics[c]; !ok && !dims[c] {
			return refuse(errs.NotAllowed, pos(c), fmt.Sprintf("COUNT(%s): %s is not a column of this collaboration", c, c),
				"allowed: "+list(append(append([]string{}, allowedDims...), allowedMetrics...)))
		}
	}
	var walk func(e *Expr) error
	walk = func(e *Expr) error {
		for _, c := range []string{e.Column, e.Column2} {
			if c == "" {
				continue
			}
			if err := dimension(c, "WHERE"); err != nil {
				return err
			}
		}
		for _, c := range e.Children {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if p.Where != nil {
		if err := walk(p.Where); err != nil {
			return err
		}
	}
	for _, a := range p.Aggregates {
		if a.Func == Count {
			continue
		}
		if Hidden(a.Column) {
			return hiddenError(a.Column, pos(a.Column))
		}
		if _, ok := metrics[a.Column]; ok {
			continue
		}
		if a.Func == Rows {
			if dims[a.Column] {
				continue
			}
			return refuse(errs.NotAllowed, pos(a.Column), fmt.Sprintf("COUNT(%s): %s is not a column of this collaboration", a.Column, a.Column),
				"COUNT(column) counts the rows of a dimension's or metric's table; allowed: "+list(append(append([]string{}, allowedDims...), allowedMetrics...)))
		}
		fn := strings.ToUpper(string(a.Func))
		what := fmt.Sprintf("%s(%s): %s is not a metric of this collaboration", fn, a.Column, a.Column)
		if dims[a.Column] {
			what = fmt.Sprintf("%s(%s): %s is a dimension, not a metric", fn, a.Column, a.Column)
		}
		return refuse(errs.NotAllowed, pos(a.Column), what, "allowed metrics: "+list(allowedMetrics))
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hiddenError(col string, pos int) *errs.Error {
	return refuse(errs.HiddenColumn, pos, "column "+col+" is hidden",
		"it cannot be selected, aggregated, grouped on or filtered on")
}

// validate checks the plan's structure: the invariants Parse establishes.
func (p *Plan) validate() *errs.Error {
	bad := func(format string, args ...any) *errs.Error {
		return refuse(errs.Unsupported, -1, "malformed plan: "+fmt.Sprintf(format, args...), "")
	}
	if len(p.Aggregates) == 0 {
		return bad("no aggregate")
	}
	if p.Step != nil {
		if p.Step.Agg.Func != Rows || !wire.IsColumnName(p.Step.Agg.Column) || !wire.IsColumnName(p.Step.Agg.Alias) ||
			len(p.Dimensions) != 1 || p.Dimensions[0] != p.Step.Agg.Alias || p.Where != p.Step.Where {
			return bad("per-person step")
		}
		for _, a := range p.Aggregates {
			if a.Func != Count {
				return refuse(errs.Unsupported, -1, "a per-person step's distribution with "+strings.ToUpper(string(a.Func)),
					"group the per-person count and count people: SELECT n, COUNT(*) FROM (...) GROUP BY n")
			}
		}
	}
	if len(p.Dimensions) > MaxDimensions || len(p.Aggregates) > MaxAggregates {
		return bad("too many columns")
	}
	for _, d := range p.Dimensions {
		if !wire.IsColumnName(d) {
			return bad("dimension %q", d)
		}
	}
	for _, a := range p.Aggregates {
		switch a.Func {
		case Count:
			if a.Column != "" {
				return bad("count of a column")
			}
		case Sum, Avg, Rows, Median, Variance, Stddev:
			if !wire.IsColumnName(a.Column) {
				return bad("column %q", a.Column)
			}
		case Quantile:
			if !wire.IsColumnName(a.Column) || !(a.Rank > 0 && a.Rank < 1) {
				return bad("quantile %q at %v", a.Column, a.Rank)
			}
		default:
			return bad("aggregate %q", a.Func)
		}
		if !wire.IsColumnName(a.Alias) && a.Alias != a.DefaultAlias() {
			return bad("alias %q", a.Alias)
		}
	}
	if len(p.Columns) != len(p.Dimensions)+len(p.Aggregates) {
		return bad("output columns do not match the select list")
	}
	seenDim := make([]bool, len(p.Dimensions))
	seenAgg := make([]bool, len(p.Aggregates))
	names := map[string]bool{}
	for _, c := range p.Columns {
		var name string
		if c.Dimension {
			if c.Index < 0 || c.Index >= len(p.Dimensions) || seenDim[c.Index] {
				return bad("output column %d", c.Index)
			}
			seenDim[c.Index] = true
			name = p.Dimensions[c.Index]
		} else {
			if c.Index < 0 || c.Index >= len(p.Aggregates) || seenAgg[c.Index] {
				return bad("output column %d", c.Index)
			}
			seenAgg[c.Index] = true
			name = p.Aggregates[c.Index].Alias
		}
		if c.Name != name || names[name] {
			return bad("output column %q", c.Name)
		}
		names[name] = true
	}
	if p.Where != nil {
		if err := validateExpr(p.Where, 1); err != nil {
			return bad("%s", err.Error())
		}
	}
	return nil
}

func validateExpr(e *Expr, depth int) error {
	if e == nil {
		return fmt.Errorf("nil node")
	}
	if depth > MaxDepth {
		return fmt.Errorf("predicate deeper than %d", MaxDepth)
	}
	leaf := func(nValues func(int) bool) error {
		if !wire.IsColumnName(e.Column) || len(e.Children) != 0 || !nValues(len(e.Values)) ||
			(e.Column2 != "") != (e.Op == OpWithin) || (e.Op == OpWithin && !wire.IsColumnName(e.Column2)) {
			return fmt.Errorf("%s node", e.Op)
		}
		for _, v := range e.Values {
			if !v.valid() {
				return fmt.Errorf("literal %v", v.Value)
			}
		}
		return nil
	}
	switch e.Op {
	case OpAnd, OpOr, OpNot:
		if e.Column != "" || len(e.Values) != 0 || len(e.Children) == 0 ||
			(e.Op == OpNot) != (len(e.Children) == 1) {
			return fmt.Errorf("%s node", e.Op)
		}
		for _, c := range e.Children {
			if err := validateExpr(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		return leaf(func(n int) bool { return n == 1 })
	case OpIn, OpNotIn:
		return leaf(func(n int) bool { return n >= 1 && n <= MaxInValues })
	case OpBetween:
		return leaf(func(n int) bool { return n == 2 })
	case OpWithin:
		if err := leaf(func(n int) bool { return n == 2 }); err != nil {
			return err
		}
		for _, v := range e.Values {
			if v.Kind != KindInt {
				return fmt.Errorf("within: days %v", v.Value)
			}
		}
		return nil
	case OpIsNull, OpIsNotNull:
		return leaf(func(n int) bool { return n == 0 })
	}
	return fmt.Errorf("operator %q", e.Op)
}

// ReadColumns returns every column the plan reads (dimensions, metrics and
// WHERE columns), sorted, without repeats.
func (p *Plan) ReadColumns() []string {
	set := map[string]bool{}
	for _, d := range p.Dimensions {
		if p.Step == nil || d != p.Step.Agg.Alias {
			set[d] = true
		}
	}
	for _, a := range p.Aggregates {
		if a.Column != "" {
			set[a.Column] = true
		}
	}
	if p.Step != nil {
		set[p.Step.Agg.Column] = true
	}
	var walk func(e *Expr)
	walk = func(e *Expr) {
		if e == nil {
			return
		}
		for _, c := range []string{e.Column, e.Column2} {
			if c != "" {
				set[c] = true
			}
		}
		for _, c := range e.Children {
			walk(c)
		}
	}
	walk(p.Where)
	return sortedKeys(set)
}
