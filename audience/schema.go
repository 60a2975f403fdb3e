// Package audience is the wire format of an audience upload: an Arrow IPC
// stream that the CLI encodes on the party's machine (EncodeCSV,
// EncodeParquet) and the server validates while streaming it into DuckDB
// (NewStreamReader, NewReader).
//
// An upload has one row per identifier occurrence:
//
//   - pid: fixed_size_binary[32], never null. The identifier normalized,
//     hashed to Curve25519 and blinded with the party's key (a psi.Point).
//   - consent (optional): list<utf8>, the consent purposes the row carries,
//     such as ["measurement", "marketing"]. A null list, or no consent
//     column at all, means no purposes: such rows are never matched.
//   - any other column is an attribute: int64, float64, utf8, bool, date32
//     or timestamp[us] (any or no time zone), possibly null, named like
//     ^[a-z][a-z0-9_]{0,62}$. Floats are finite, dates and timestamps
//     within the years 1 to 9999.
//
// At most MaxColumns columns. Record batches are not compressed (points are
// random bytes; compress the transport if needed) and carry no
// dictionaries.
package audience

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/apache/arrow/go/v17/arrow"
	"golang.org/x/text/unicode/norm"

	"github.com/cleanroom/cleanroom/wire"
)

// Column names with a fixed meaning in an upload.
const (
	// PIDColumn holds each row's blinded identifier.
	PIDColumn = "pid"
	// ConsentColumn holds each row's consent purposes.
	ConsentColumn = "consent"
	// uidColumn is reserved: cohorts name their privacy unit uid, so an
	// attribute of that name would be ambiguous once joined.
	uidColumn = "uid"
)

// MaxColumns is the most columns an upload may have, pid and consent
// included. It bounds the schema the server stores and scans per audience.
const MaxColumns = 1000

// attrNamePattern is the rule for attribute names: they become SQL column
// names that analysts type, so they stay lower case and need no quoting.
const attrNamePattern = wire.ColumnNamePattern

var attrName = regexp.MustCompile(attrNamePattern)

// PIDType is the Arrow type of the pid column.
var PIDType = &arrow.FixedSizeBinaryType{ByteWidth: 32}

// ConsentType is the Arrow type of the consent column.
var ConsentType = arrow.ListOf(arrow.BinaryTypes.String)

const allowedAttrTypes = "int64, float64, utf8, bool, date32, timestamp[us] (any time zone)"

// ValidateSchema checks an upload's schema. The error names the offending
// column and says what is allowed there.
func ValidateSchema(s *arrow.Schema) error {
	if s == nil {
		return fmt.Errorf("upload has no schema")
	}
	fields := s.Fields()
	if len(fields) > MaxColumns {
		return fmt.Errorf("upload has %d columns, more than the %d allowed (the first one over is column %d %s)",
			len(fields), MaxColumns, MaxColumns+1, quoteName(fields[MaxColumns].Name))
	}
	seen := make(map[string]int, len(fields))
	hasPID := false
	for i, f := range fields {
		if j, dup := seen[f.Name]; dup {
			return fmt.Errorf("column %s appears twice (columns %d and %d); column names must be unique", quoteName(f.Name), j+1, i+1)
		}
		seen[f.Name] = i
		switch f.Name {
		case PIDColumn:
			if !arrow.TypeEqual(f.Type, PIDType) {
				return fmt.Errorf("column %q: type %s, want %s (the 32-byte blinded point)", PIDColumn, f.Type, PIDType)
			}
			hasPID = true
		case ConsentColumn:
			if !arrow.TypeEqual(f.Type, ConsentType) {
				return fmt.Errorf("column %q: type %s, want list<utf8> (the row's consent purposes)", ConsentColumn, f.Type)
			}
		case uidColumn:
			return fmt.Errorf("column %q: the name is reserved; rename the attribute", uidColumn)
		default:
			if !attrName.MatchString(f.Name) {
				return fmt.Errorf("column %s: attribute names must match %s (a lower-case letter, then lower-case letters, digits or _, at most 63 in all)",
					quoteName(f.Name), attrNamePattern)
			}
			if !AttributeTypeAllowed(f.Type) {
				return fmt.Errorf("column %q: type %s is not allowed for attributes; allowed: %s", f.Name, f.Type, allowedAttrTypes)
			}
		}
	}
	if !hasPID {
		return fmt.Errorf("upload has no %q column; it must have one of type %s holding the blinded identifiers", PIDColumn, PIDType)
	}
	return nil
}

// AttributeTypeAllowed reports whether an attribute column may have type t.
func AttributeTypeAllowed(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT64, arrow.FLOAT64, arrow.STRING, arrow.BOOL, arrow.DATE32:
		return true
	case arrow.TIMESTAMP:
		return t.(*arrow.TimestampType).Unit == arrow.Microsecond
	}
	return false
}

// Attributes returns the attribute fields of a valid schema (every column
// but pid and consent), in order.
func Attributes(s *arrow.Schema) []arrow.Field {
	var out []arrow.Field
	for _, f := range s.Fields() {
		if f.Name != PIDColumn && f.Name != ConsentColumn {
			out = append(out, f)
		}
	}
	return out
}

// quoteName quotes a column name for an error, shortened so that a hostile
// or mistaken schema cannot flood logs.
func quoteName(name string) string {
	const max = 80
	if len(name) > max {
		cut := max
		for cut > 0 && !isRuneStart(name[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", name[:cut])
	}
	return fmt.Sprintf("%q", name)
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }

// SanitizeName turns an input column header into an attribute name: lower
// case, accents dropped, runs of other characters as one _, a leading digit
// prefixed with c_, cut to 63 characters. It returns "" if nothing usable
// is left.
func SanitizeName(header string) string {
	var b strings.Builder
	pendingSep := false
	for _, r := range norm.NFD.String(strings.ToLower(strings.TrimSpace(header))) {
		if unicode.Is(unicode.Mn, r) {
			continue // a combining accent: é is e + U+0301
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if pendingSep && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingSep = false
			b.WriteRune(r)
			continue
		}
		pendingSep = true
	}
	s := b.String()
	if s == "" {
		return ""
	}
	if s[0] >= '0' && s[0] <= '9' {
		s = "c_" + s
	}
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "_")
	}
	return s
}

// PointsSchema is the schema of the points a party re-blinds during a
// match, both ways: one column pid of 32-byte points.
var PointsSchema = arrow.NewSchema([]arrow.Field{
	{Name: PIDColumn, Type: PIDType},
}, nil)
