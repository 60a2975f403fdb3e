package audience

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/cleanroom/cleanroom/psi"
)

// Reader validates an upload as it is read. It is an array.RecordReader,
// so it can be handed to DuckDB's Arrow scan: DuckDB then only ever sees
// records whose every column is well formed (buffers large enough, offsets
// in range, strings valid UTF-8, null counts true) and whose every pid is a
// valid blinded point. On the first bad row it stops: Next returns false
// and Err says which row and why.
//
// A Reader is not safe for concurrent use, except Rows.
type Reader struct {
	refs    atomic.Int64
	src     array.RecordReader
	schema  *arrow.Schema
	pid     int
	cur     arrow.Record
	rows    atomic.Int64
	records int64
	err     error
	done    bool

	// srcSchema is the wrapped reader's schema when its pid column is
	// binary (a Parquet BLOB), converted to schema's; nil otherwise.
	srcSchema *arrow.Schema
}

var _ array.RecordReader = (*Reader)(nil)

// NewReader wraps r and checks its schema with ValidateSchema. The Reader
// takes its own reference to r (r.Retain), released with the Reader's last
// Release; the caller still releases its own.
//
// A pid column of binary or large_binary is accepted too, as Parquet
// writers such as DuckDB write 32 bytes (a BLOB, Parquet BYTE_ARRAY): the
// Reader's schema and records then have it as fixed_size_binary[32], and
// a value of any other length stops the Reader with an error naming its
// row.
func NewReader(r array.RecordReader) (*Reader, error) {
	return newReader(r, true)
}

// newReader is NewReader; binaryPID says whether a binary pid column is
// accepted. An Arrow IPC stream, the wire format, must send
// fixed_size_binary[32].
func newReader(r array.RecordReader, binaryPID bool) (*Reader, error) {
	s := r.Schema()
	if s == nil {
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("reading the upload's schema: %w", err)
		}
	}
	var srcSchema *arrow.Schema
	if binaryPID {
		if fixed, ok := withFixedPID(s); ok {
			s, srcSchema = fixed, s
		}
	}
	if err := ValidateSchema(s); err != nil {
		return nil, err
	}
	r.Retain()
	rd := &Reader{src: r, schema: s, srcSchema: srcSchema, pid: s.FieldIndices(PIDColumn)[0]}
	rd.refs.Store(1)
	return rd, nil
}

// Retain adds a reference to the Reader.
func (r *Reader) Retain() { r.refs.Add(1) }

// Release drops a reference; the last one releases the current record and
// the wrapped reader.
func (r *Reader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.src != nil {
		r.src.Release()
		r.src = nil
	}
	r.done = true
}

// Schema returns the upload's schema, which ValidateSchema accepted.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// Record returns the current record, valid until the next call to Next.
// It is nil before the first Next and after Next returns false.
func (r *Reader) Record() arrow.Record { return r.cur }

// Err returns the error that stopped the Reader, or nil after a clean end.
func (r *Reader) Err() error { return r.err }

// Rows returns how many rows Next has delivered so far; after the end, the
// upload's row count.
func (r *Reader) Rows() int64 { return r.rows.Load() }

// Next advances to the next record and validates it. It returns false at
// the end of the stream or at the first bad row (see Err), and every time
// after that.
func (r *Reader) Next() (ok bool) {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.done {
		return false
	}
	// Next runs inside DuckDB's scan callbacks, where a Go panic would take
	// the whole server down: a malformed record becomes an error instead.
	defer func() {
		if p := recover(); p != nil {
			r.fail(fmt.Errorf("record %d (after row %d): malformed record: %v", r.records+1, r.Rows(), p))
			ok = false
		}
	}()
	if !r.src.Next() {
		err := r.src.Err()
		if errors.Is(err, io.EOF) && !errors.Is(err, ErrTruncated) {
			// pqarrow's reader reports its clean end as io.EOF.
			err = nil
		}
		if err != nil {
			r.fail(fmt.Errorf("after row %d: %w", r.Rows(), err))
		}
		r.done = true
		return false
	}
	rec := r.src.Record()
	r.records++
	if r.srcSchema != nil {
		fixed, err := r.fixPID(rec)
		if err != nil {
			r.fail(err)
			return false
		}
		rec = fixed // ours to release
	} else {
		rec.Retain()
	}
	if err := r.check(rec); err != nil {
		rec.Release()
		r.fail(err)
		return false
	}
	r.cur = rec
	r.rows.Add(rec.NumRows())
	return true
}

func (r *Reader) fail(err error) {
	r.err = err
	r.done = true
}

// check validates the next record. Errors name rows by their number in the
// whole upload, counting from 1.
func (r *Reader) check(rec arrow.Record) error {
	first := r.Rows() + 1
	n := rec.NumRows()
	where := func() string {
		if n == 0 {
			return fmt.Sprintf("record %d (no rows, after row %d)", r.records, first-1)
		}
		return fmt.Sprintf("record %d (rows %d-%d)", r.records, first, first+n-1)
	}
	if !rec.Schema().Equal(r.schema) {
		return fmt.Errorf("%s: schema differs from the stream's", where())
	}
	for i, col := range rec.Columns() {
		name := r.schema.Field(i).Name
		if int64(col.Len()) != n {
			return fmt.Errorf("%s: column %s has %d rows, the record %d", where(), quoteName(name), col.Len(), n)
		}
		if err := checkData(col.Data()); err != nil {
			return fmt.Errorf("%s: column %s: %w", where(), quoteName(name), err)
		}
	}
	for i, col := range rec.Columns() {
		if j, what := unanswerable(col); j >= 0 {
			return fmt.Errorf("row %d: column %s %s", first+int64(j), quoteName(r.schema.Field(i).Name), what)
		}
	}
	pids := rec.Column(r.pid).(*array.FixedSizeBinary)
	for i := 0; i < pids.Len(); i++ {
		row := first + int64(i)
		if pids.IsNull(i) {
			return fmt.Errorf("row %d: %s is null", row, PIDColumn)
		}
		p := (*psi.Point)(pids.Value(i))
		if err := p.Validate(); err != nil {
			return fmt.Errorf("row %d: %s: %w", row, PIDColumn, err)
		}
	}
	return nil
}

// Dates and timestamps within years 1 to 9999, the range an answer (JSON,
// RFC 3339) can state.
const (
	minDay    = -719162 // 0001-01-01, in days since 1970-01-01
	maxDay    = 2932896 // 9999-12-31
	minMicros = -62135596800_000000
	maxMicros = 253402300799_999999
)

// unanswerable returns the first row of col (from 0) holding a value no
// answer could state, and what is wrong with it, or -1: NaN and
// infinities (a sum with one is not a number), and dates and timestamps
// outside years 1 to 9999. Either would make a release fail, or not, on
// what one person holds. The error shows NaN and infinities, which say
// nothing of anyone, never a date.
func unanswerable(col arrow.Array) (int, string) {
	switch a := col.(type) {
	case *array.Float64:
		for j, v := range a.Float64Values() {
			if (math.IsNaN(v) || math.IsInf(v, 0)) && a.IsValid(j) {
				return j, fmt.Sprintf("is %v; attributes must be finite numbers (or null)", v)
			}
		}
	case *array.Date32:
		for j, v := range a.Date32Values() {
			if (v < minDay || v > maxDay) && a.IsValid(j) {
				return j, "is a date outside the years 1 to 9999"
			}
		}
	case *array.Timestamp:
		for j, v := range a.TimestampValues() {
			if (v < minMicros || v > maxMicros) && a.IsValid(j) {
				return j, "is a timestamp outside the years 1 to 9999"
			}
		}
	}
	return -1, ""
}

// checkData checks that an array of one of the upload's types is safe to
// read: every buffer holds what its length and offsets say, offsets do not
// go backwards, strings are valid UTF-8 and the null count matches the
// validity bitmap. The arrow IPC reader trusts the sender on all of these,
// and DuckDB reads the buffers without bounds checks.
func checkData(d arrow.ArrayData) error {
	off, n := d.Offset(), d.Len()
	if off < 0 || n < 0 {
		return errors.New("negative offset or length")
	}
	end := off + n
	bufs := d.Buffers()
	buf := func(i int) []byte {
		if i < len(bufs) && bufs[i] != nil {
			return bufs[i].Bytes()
		}
		return nil
	}
	nulls := 0
	if bm := buf(0); bm != nil {
		if len(bm) < int(bitutil.BytesForBits(int64(end))) {
			return errors.New("validity bitmap shorter than the array")
		}
		nulls = n - bitutil.CountSetBits(bm, off, n)
	}
	switch claimed := d.NullN(); {
	case claimed < 0 && buf(0) == nil:
		return errors.New("unknown null count and no validity bitmap")
	case claimed >= 0 && claimed != nulls:
		// A negative count is "not computed yet" (array slices), and arrow
		// computes it from the bitmap checked above.
		return fmt.Errorf("null count %d does not match the validity bitmap (%d)", claimed, nulls)
	}
	valid := func(i int) bool { bm := buf(0); return bm == nil || bitutil.BitIsSet(bm, i) }

	switch dt := d.DataType(); dt.ID() {
	case arrow.INT64, arrow.FLOAT64, arrow.DATE32, arrow.TIMESTAMP:
		w := dt.(arrow.FixedWidthDataType).BitWidth() / 8
		if len(buf(1)) < end*w {
			return errors.New("values buffer shorter than the array")
		}
	case arrow.FIXED_SIZE_BINARY:
		if len(buf(1)) < end*dt.(*arrow.FixedSizeBinaryType).ByteWidth {
			return errors.New("values buffer shorter than the array")
		}
	case arrow.BOOL:
		if len(buf(1)) < int(bitutil.BytesForBits(int64(end))) {
			return errors.New("values buffer shorter than the array")
		}
	case arrow.BINARY:
		// Only a pid column read from Parquet, before fixPID.
		if _, err := checkOffsets(buf(1), off, n, len(buf(2))); err != nil {
			return err
		}
	case arrow.LARGE_BINARY:
		if err := checkLargeOffsets(buf(1), off, n, len(buf(2))); err != nil {
			return err
		}
	case arrow.STRING:
		offs, err := checkOffsets(buf(1), off, n, len(buf(2)))
		if err != nil {
			return err
		}
		data := buf(2)
		for i := 0; i < n; i++ {
			if valid(off+i) && !utf8.Valid(data[offs[i]:offs[i+1]]) {
				return fmt.Errorf("value %d is not valid UTF-8", i+1)
			}
		}
	case arrow.LIST:
		children := d.Children()
		if len(children) != 1 {
			return errors.New("list without its values")
		}
		child := children[0]
		if _, err := checkOffsets(buf(1), off, n, child.Len()); err != nil {
			return err
		}
		if err := checkData(child); err != nil {
			return fmt.Errorf("list values: %w", err)
		}
	default:
		return fmt.Errorf("unexpected type %s", dt)
	}
	return nil
}

// checkOffsets checks the int32 offsets of n values starting at off: the
// buffer has all n+1, they never decrease, and stay within [0, limit]. It
// returns them.
func checkOffsets(b []byte, off, n, limit int) ([]int32, error) {
	if n == 0 {
		return nil, nil
	}
	if len(b) < (off+n+1)*4 {
		return nil, errors.New("offsets buffer shorter than the array")
	}
	offs := arrow.Int32Traits.CastFromBytes(b)[off : off+n+1]
	if offs[0] < 0 {
		return nil, errors.New("negative offset")
	}
	for i := 1; i <= n; i++ {
		if offs[i] < offs[i-1] {
			return nil, fmt.Errorf("offsets decrease at value %d", i)
		}
	}
	if int(offs[n]) > limit {
		return nil, errors.New("offsets point past the values")
	}
	return offs, nil
}
