package cohort

import (
	"fmt"
	"regexp"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/cleanroom/cleanroom/psi"
)

// Column names with a meaning in the upload format.
const (
	pidColumn     = "pid"
	consentColumn = "consent"
)

var attrName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// validateSchema checks an upload's schema: a pid column of 32-byte points,
// an optional consent list of strings, and attributes of plain types.
func validateSchema(s *arrow.Schema) error {
	if len(s.Fields()) > 1000 {
		return fmt.Errorf("schema: %d columns; at most 1000", len(s.Fields()))
	}
	seen := map[string]bool{}
	hasPID := false
	for _, f := range s.Fields() {
		if seen[f.Name] {
			return fmt.Errorf("schema: column %q appears twice", f.Name)
		}
		seen[f.Name] = true
		switch f.Name {
		case pidColumn:
			if t, ok := f.Type.(*arrow.FixedSizeBinaryType); !ok || t.ByteWidth != psi.PointSize {
				return fmt.Errorf("schema: column pid is %s; want fixed_size_binary[32] (blinded points)", f.Type)
			}
			hasPID = true
			continue
		case consentColumn:
			if l, ok := f.Type.(*arrow.ListType); !ok || l.Elem().ID() != arrow.STRING {
				return fmt.Errorf("schema: column consent is %s; want list<utf8> (purposes)", f.Type)
			}
			continue
		case "uid":
			return fmt.Errorf("schema: column name uid is reserved for the cohort")
		}
		if !attrName.MatchString(f.Name) {
			return fmt.Errorf("schema: column name %q: use lower case letters, digits and _, starting with a letter", f.Name)
		}
		switch f.Type.ID() {
		case arrow.INT64, arrow.FLOAT64, arrow.STRING, arrow.BOOL, arrow.DATE32, arrow.TIMESTAMP:
		default:
			return fmt.Errorf("schema: column %q is %s; attributes may be int64, float64, utf8, bool, date32 or timestamp", f.Name, f.Type)
		}
	}
	if !hasPID {
		return fmt.Errorf("schema: no pid column (fixed_size_binary[32] of blinded points)")
	}
	return nil
}

// uploadReader validates an upload while DuckDB scans it: every pid must
// be a valid point. It stops at the first bad row, with its number.
type uploadReader struct {
	src  array.RecordReader
	pid  int
	rows int64
	err  error
}

func newUploadReader(src array.RecordReader) (*uploadReader, error) {
	s := src.Schema()
	if err := validateSchema(s); err != nil {
		return nil, err
	}
	return &uploadReader{src: src, pid: s.FieldIndices(pidColumn)[0]}, nil
}

func (r *uploadReader) Retain()               {}
func (r *uploadReader) Release()              {}
func (r *uploadReader) Schema() *arrow.Schema { return r.src.Schema() }
func (r *uploadReader) Record() arrow.Record  { return r.src.Record() }
func (r *uploadReader) Err() error            { return r.err }
func (r *uploadReader) Rows() int64           { return r.rows }

func (r *uploadReader) Next() bool {
	if r.err != nil {
		return false
	}
	if !r.src.Next() {
		if err := r.src.Err(); err != nil {
			r.err = fmt.Errorf("after row %d: the stream is broken or truncated: %w", r.rows, err)
		}
		return false
	}
	col := r.src.Record().Column(r.pid).(*array.FixedSizeBinary)
	for i := 0; i < col.Len(); i++ {
		if col.IsNull(i) {
			r.err = fmt.Errorf("row %d: pid is null", r.rows+int64(i)+1)
			return false
		}
		var p psi.Point
		copy(p[:], col.Value(i))
		if err := p.Validate(); err != nil {
			r.err = fmt.Errorf("row %d: pid: %w", r.rows+int64(i)+1, err)
			return false
		}
	}
	r.rows += int64(col.Len())
	return true
}
