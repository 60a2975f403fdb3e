package audience

// Column kinds and the typed values of cells, parsed strictly.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

// kind is an attribute's type.
type kind int

const (
	kindInfer kind = iota
	kindString
	kindInt
	kindFloat
	kindBool
	kindDate
	kindTimestamp
)

var kindNames = []string{kindString: "string", kindInt: "int", kindFloat: "float", kindBool: "bool", kindDate: "date", kindTimestamp: "timestamp"}

func (k kind) String() string {
	if k > kindInfer && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "inferred"
}

func parseKind(s string) (kind, error) {
	if s == "" {
		return kindInfer, nil
	}
	for k, name := range kindNames {
		if name != "" && strings.EqualFold(strings.TrimSpace(s), name) {
			return kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (want string, int, float, bool, date or timestamp)", s)
}

// attr is one attribute of the upload being encoded.
type attr struct {
	name   string // in the upload
	column string // in the input
	src    int    // input column index
	kind   kind
	tz     string // for timestamps
}

func (a *attr) arrowType() arrow.DataType {
	switch a.kind {
	case kindInt:
		return arrow.PrimitiveTypes.Int64
	case kindFloat:
		return arrow.PrimitiveTypes.Float64
	case kindBool:
		return arrow.FixedWidthTypes.Boolean
	case kindDate:
		return arrow.FixedWidthTypes.Date32
	case kindTimestamp:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: a.tz}
	}
	return arrow.BinaryTypes.String
}

// outputSchema is the upload's schema for attrs; it checks the names.
func outputSchema(attrs []attr, consent bool) (*arrow.Schema, error) {
	fields := []arrow.Field{{Name: PIDColumn, Type: PIDType}}
	if consent {
		fields = append(fields, arrow.Field{Name: ConsentColumn, Type: ConsentType, Nullable: true})
	}
	seen := map[string]string{}
	for _, a := range attrs {
		if prev, dup := seen[a.name]; dup {
			return nil, fmt.Errorf("input columns %q and %q would both be sent as attribute %q; name them with Attributes", prev, a.column, a.name)
		}
		seen[a.name] = a.column
		if a.name == PIDColumn || a.name == ConsentColumn || a.name == uidColumn {
			hint := ""
			if a.name == ConsentColumn {
				hint = "name it as the consent column, or "
			}
			return nil, fmt.Errorf("input column %q: attribute name %q is reserved; %srename it with Attributes", a.column, a.name, hint)
		}
		fields = append(fields, arrow.Field{Name: a.name, Type: a.arrowType(), Nullable: true})
	}
	s := arrow.NewSchema(fields, nil)
	if err := ValidateSchema(s); err != nil {
		return nil, err
	}
	return s, nil
}

// colValues holds one attribute's values for the rows of a chunk; null rows
// hold a zero value so that indexes line up.
type colValues struct {
	valid []bool
	ints  []int64 // int, date (days since 1970-01-01), timestamp (µs)
	flts  []float64
	strs  []string
	bools []bool
}

func (c *colValues) truncate(n int) {
	c.valid = c.valid[:min(n, len(c.valid))]
	c.ints = c.ints[:min(n, len(c.ints))]
	c.flts = c.flts[:min(n, len(c.flts))]
	c.strs = c.strs[:min(n, len(c.strs))]
	c.bools = c.bools[:min(n, len(c.bools))]
}

func (c *colValues) appendNull(k kind) {
	c.valid = append(c.valid, false)
	switch k {
	case kindInt, kindDate, kindTimestamp:
		c.ints = append(c.ints, 0)
	case kindFloat:
		c.flts = append(c.flts, 0)
	case kindBool:
		c.bools = append(c.bools, false)
	default:
		c.strs = append(c.strs, "")
	}
}

func (c *colValues) appendInt(v int64) {
	c.valid = append(c.valid, true)
	c.ints = append(c.ints, v)
}

// appendFinite appends v, refusing NaN and infinities: a release must
// never fail, or not, on what one person holds.
func (c *colValues) appendFinite(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return errNotFinite
	}
	c.valid = append(c.valid, true)
	c.flts = append(c.flts, v)
	return nil
}

// appendTime appends a date (days) or timestamp (µs), refusing one the
// server would (years 1 to 9999) before anything is sent.
func (c *colValues) appendTime(k kind, v int64) error {
	lo, hi := int64(minMicros), int64(maxMicros)
	if k == kindDate {
		lo, hi = minDay, maxDay
	}
	if v < lo || v > hi {
		return errYears
	}
	c.appendInt(v)
	return nil
}

func (c *colValues) appendString(v string) {
	c.valid = append(c.valid, true)
	c.strs = append(c.strs, v)
}

func (c *colValues) appendBool(v bool) {
	c.valid = append(c.valid, true)
	c.bools = append(c.bools, v)
}

// Value errors name the expected type only: the cell may be personal data.
var (
	errNotInt       = errors.New("not an int")
	errIntRange     = errors.New("int out of the 64-bit range")
	errNotFloat     = errors.New("not a number")
	errNotFinite    = errors.New("not a finite number (NaN and infinities are refused: leave the cell empty for no value)")
	errFloatRange   = errors.New("number out of the 64-bit float range")
	errNotBool      = errors.New("not a bool (true or false)")
	errNotDate      = errors.New("not a date (YYYY-MM-DD)")
	errNotTimestamp = errors.New("not a timestamp (RFC 3339, e.g. 2024-05-01T12:00:00Z)")
	errTimeRange    = errors.New("timestamp out of range")
	errYears        = errors.New("outside the years 1 to 9999, which answers can state")
)

// appendText parses a text cell as kind k; a blank cell is null.
func (c *colValues) appendText(k kind, s string) error {
	t := strings.TrimSpace(s)
	if t == "" {
		c.appendNull(k)
		return nil
	}
	switch k {
	case kindInt:
		v, err := parseIntStrict(t)
		if err != nil {
			return err
		}
		c.appendInt(v)
	case kindFloat:
		v, ok := parseDecimalFloat(t)
		if !ok {
			return floatError(t)
		}
		if err := c.appendFinite(v); err != nil {
			return err
		}
	case kindBool:
		v, ok := parseBool(t)
		if !ok {
			return errNotBool
		}
		c.appendBool(v)
	case kindDate:
		d, ok := parseDate(t)
		if !ok {
			return errNotDate
		}
		return c.appendTime(kindDate, d)
	case kindTimestamp:
		us, err := parseTimestamp(t)
		if err != nil {
			return err
		}
		return c.appendTime(kindTimestamp, us)
	default:
		c.appendString(s)
	}
	return nil
}

func parseIntStrict(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, errIntRange
		}
		return 0, errNotInt
	}
	return v, nil
}

// parseDecimalFloat accepts plain decimal and exponent notation only, so
// that words such as "Infinity" or "nan" stay strings when inferring.
func parseDecimalFloat(s string) (float64, bool) {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789+-.eE", rune(s[i])) {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// floatError says why s, which parseDecimalFloat refused, is no float:
// a number beyond float64, NaN or an infinity, or not a number at all.
func floatError(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return errFloatRange
	case err == nil && (math.IsNaN(v) || math.IsInf(v, 0)):
		return errNotFinite
	}
	return errNotFloat
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

const secondsPerDay = 86400

func parseDate(s string) (int64, bool) {
	if len(s) != len("2006-01-02") {
		return 0, false
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, false
	}
	return floorDiv(t.Unix(), secondsPerDay), true
}

var timestampLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

// parseTimestamp returns microseconds since the Unix epoch; a value without
// an offset is taken as UTC.
func parseTimestamp(s string) (int64, error) {
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return timeToMicros(t)
		}
	}
	return 0, errNotTimestamp
}

func timeToMicros(t time.Time) (int64, error) {
	sec := t.Unix()
	if sec > math.MaxInt64/1_000_000-1 || sec < math.MinInt64/1_000_000+1 {
		return 0, errTimeRange
	}
	return sec*1e6 + int64(t.Nanosecond()/1e3), nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// normalizePurposes trims, lower-cases and de-duplicates consent purposes,
// dropping empty ones. It returns nil for none.
func normalizePurposes(ps []string) []string {
	var out []string
	for _, p := range ps {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}
