package audience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/cleanroom/cleanroom/psi"
)

// EncodeParquet reads a Parquet file and writes the Arrow IPC stream of the
// upload to w, as EncodeCSV does. It reads only the columns it sends, one
// record batch at a time, never the whole file.
//
// Attribute types come from the file unless AttrSpec.Type says otherwise:
// integers become int (unsigned 64-bit values must fit), floats and
// decimals float, strings string, bool bool, dates date, timestamps
// timestamp (time zone kept, to microseconds). Other Parquet types must be
// left out. The identifier column must hold strings or integers; the
// consent column a list of strings or a string of ';'-separated purposes.
//
// Errors about the data are *PositionError naming the row (from 1) and,
// for attributes, the column; they never contain a value. EncodeParquet
// does not close f.
func EncodeParquet(ctx context.Context, f parquet.ReaderAtSeeker, w io.Writer, key *psi.Key, opts EncodeOptions) (EncodeStats, error) {
	ids, err := newIDPipeline(key, opts)
	if err != nil {
		return EncodeStats{}, err
	}
	batch := opts.BatchSize
	if batch <= 0 {
		batch = defaultBatchSize
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return EncodeStats{}, fmt.Errorf("reading the Parquet file: %w", err)
	}
	// Not pf.Close: it would close f, which the caller owns.
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(batch)}, memory.DefaultAllocator)
	if err != nil {
		return EncodeStats{}, fmt.Errorf("reading the Parquet schema: %w", err)
	}
	fields := fr.Manifest.Fields
	names := make([]string, len(fields))
	for i := range fields {
		names[i] = fields[i].Field.Name
	}
	id, consent, attrs, err := resolve(columnFinder{names: names, what: "the Parquet file"}, opts)
	if err != nil {
		return EncodeStats{}, err
	}

	// Read only the leaf columns of the fields sent: the others may be
	// large, and have no business being read.
	want := []int{id}
	if consent >= 0 {
		want = append(want, consent)
	}
	for _, a := range attrs {
		want = append(want, a.src)
	}
	included := map[int]bool{}
	for _, i := range want {
		included[i] = true
	}
	var leaves []int
	ps := pf.MetaData().Schema
	for leaf := 0; leaf < ps.NumColumns(); leaf++ {
		if included[ps.Root().FieldIndexByField(ps.ColumnRoot(leaf))] {
			leaves = append(leaves, leaf)
		}
	}
	rr, err := fr.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return EncodeStats{}, fmt.Errorf("reading the Parquet file: %w", err)
	}
	defer rr.Release()

	// The record reader's schema holds the chosen fields only, in its own
	// order: find each by name.
	rs := rr.Schema()
	at := func(i int) (int, arrow.DataType) {
		j := rs.FieldIndices(names[i])[0]
		return j, rs.Field(j).Type
	}
	src := &parquetSource{rr: rr, skipBlank: opts.SkipBlankIDs, consent: -1}
	var dt arrow.DataType
	src.id, dt = at(id)
	if src.idOf, err = idGetter(dt); err != nil {
		return EncodeStats{}, fmt.Errorf("identifier column %q: %w", names[id], err)
	}
	if consent >= 0 {
		src.consent, dt = at(consent)
		if src.purposesOf, err = purposesGetter(dt); err != nil {
			return EncodeStats{}, fmt.Errorf("consent column %q: %w", names[consent], err)
		}
	}
	for i := range attrs {
		a := &attrs[i]
		a.src, dt = at(a.src)
		if a.kind == kindInfer {
			if a.kind, err = kindOfType(dt); err != nil {
				return EncodeStats{}, fmt.Errorf("column %q: %w", a.column, err)
			}
		}
		if a.kind == kindTimestamp {
			a.tz = "UTC"
			if ts, ok := dt.(*arrow.TimestampType); ok {
				a.tz = ts.TimeZone
			}
		}
		conv, err := converter(dt, a.kind)
		if err != nil {
			return EncodeStats{}, fmt.Errorf("column %q: %w", a.column, err)
		}
		src.convs = append(src.convs, conv)
	}
	src.attrs = attrs
	e, err := newEncoder(src, "row", attrs, w, opts)
	if err != nil {
		return EncodeStats{}, err
	}
	return e.run(ctx, ids, key, opts)
}

type parquetSource struct {
	rr         pqarrow.RecordReader
	rec        arrow.Record
	pos        int   // next row of rec
	row        int64 // rows consumed, for errors
	id         int
	idOf       func(a arrow.Array, i int) string
	consent    int // -1: none
	purposesOf func(a arrow.Array, i int) []string
	attrs      []attr
	convs      []convert
	skipBlank  bool
	nSkipped   int64
}

func (s *parquetSource) skipped() int64 { return s.nSkipped }

func (s *parquetSource) read(ids []string, c *chunk) (int, error) {
	for c.n < len(ids) {
		if s.rec == nil || s.pos >= int(s.rec.NumRows()) {
			// Next releases the previous record: rows already read hold
			// copies, never arrow memory.
			if !s.rr.Next() {
				s.rec = nil
				if err := s.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
					return c.n, fmt.Errorf("reading the Parquet file after row %d: %w", s.row, err)
				}
				return c.n, io.EOF
			}
			s.rec, s.pos = s.rr.Record(), 0
			continue
		}
		i := s.pos
		s.pos++
		s.row++
		id := s.idOf(s.rec.Column(s.id), i)
		if s.skipBlank && strings.TrimSpace(id) == "" {
			s.nSkipped++
			continue
		}
		c.pos = append(c.pos, s.row)
		if s.consent >= 0 {
			c.consent = append(c.consent, s.purposesOf(s.rec.Column(s.consent), i))
		}
		for j := range s.attrs {
			if err := s.convs[j](s.rec.Column(s.attrs[j].src), i, &c.cols[j]); err != nil {
				c.truncate()
				return c.n, &PositionError{Unit: "row", N: s.row, Column: s.attrs[j].column, Err: err}
			}
		}
		ids[c.n] = id
		c.n++
	}
	return c.n, nil
}

// stringValuer is an array of strings of either offset width.
type stringValuer interface {
	arrow.Array
	Value(int) string
}

// idGetter returns how to read an identifier as text; a null reads as "",
// a blank identifier.
func idGetter(dt arrow.DataType) (func(a arrow.Array, i int) string, error) {
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return func(a arrow.Array, i int) string {
			if a.IsNull(i) {
				return ""
			}
			// A copy: the blinding goroutines may still read it after the
			// record is released.
			return strings.Clone(a.(stringValuer).Value(i))
		}, nil
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return func(a arrow.Array, i int) string {
			if a.IsNull(i) {
				return ""
			}
			return a.ValueStr(i)
		}, nil
	}
	return nil, fmt.Errorf("type %s; identifiers must be strings or integers", dt)
}

func purposesGetter(dt arrow.DataType) (func(a arrow.Array, i int) []string, error) {
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
		return func(a arrow.Array, i int) []string {
			if a.IsNull(i) {
				return nil
			}
			return normalizePurposes(strings.Split(a.(stringValuer).Value(i), ";"))
		}, nil
	case arrow.LIST, arrow.LARGE_LIST:
		switch dt.(arrow.ListLikeType).Elem().ID() {
		case arrow.STRING, arrow.LARGE_STRING:
			return func(a arrow.Array, i int) []string {
				if a.IsNull(i) {
					return nil
				}
				l := a.(array.ListLike)
				vals := l.ListValues().(stringValuer)
				start, end := l.ValueOffsets(i)
				ps := make([]string, 0, end-start)
				for j := start; j < end; j++ {
					if !vals.IsNull(int(j)) {
						ps = append(ps, vals.Value(int(j)))
					}
				}
				return normalizePurposes(ps)
			}, nil
		}
	}
	return nil, fmt.Errorf("type %s; consent must be a list of strings, or a string of purposes separated by ';'", dt)
}

// kindOfType is the attribute kind a Parquet column gets by default.
func kindOfType(dt arrow.DataType) (kind, error) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return kindInt, nil
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.DECIMAL256:
		return kindFloat, nil
	case arrow.STRING, arrow.LARGE_STRING:
		return kindString, nil
	case arrow.BOOL:
		return kindBool, nil
	case arrow.DATE32, arrow.DATE64:
		return kindDate, nil
	case arrow.TIMESTAMP:
		return kindTimestamp, nil
	}
	return 0, fmt.Errorf("type %s cannot be sent as an attribute (integers, floats, decimals, strings, bools, dates and timestamps can); leave it out by listing the attributes to send", dt)
}

// convert appends row i of a to c, as the attribute's kind.
type convert func(a arrow.Array, i int, c *colValues) error

var errUint64Range = errors.New("unsigned value too large for a 64-bit int")

// converter returns the conversion of a Parquet column of type dt to an
// attribute of kind k, or says why there is none.
func converter(dt arrow.DataType, k kind) (convert, error) {
	nullable := func(f convert) convert {
		return func(a arrow.Array, i int, c *colValues) error {
			if a.IsNull(i) {
				c.appendNull(k)
				return nil
			}
			return f(a, i, c)
		}
	}
	if id := dt.ID(); id == arrow.STRING || id == arrow.LARGE_STRING {
		return nullable(func(a arrow.Array, i int, c *colValues) error {
			s := a.(stringValuer).Value(i)
			if k == kindString {
				s = strings.Clone(s)
			}
			return c.appendText(k, s)
		}), nil
	}
	switch k {
	case kindString:
		return nullable(func(a arrow.Array, i int, c *colValues) error {
			c.appendString(a.ValueStr(i))
			return nil
		}), nil
	case kindInt:
		if get := intGetter(dt); get != nil {
			return nullable(func(a arrow.Array, i int, c *colValues) error {
				v, err := get(a, i)
				if err != nil {
					return err
				}
				c.appendInt(v)
				return nil
			}), nil
		}
	case kindFloat:
		if get := floatGetter(dt); get != nil {
			return nullable(func(a arrow.Array, i int, c *colValues) error {
				return c.appendFinite(get(a, i))
			}), nil
		}
	case kindBool:
		if dt.ID() == arrow.BOOL {
			return nullable(func(a arrow.Array, i int, c *colValues) error {
				c.appendBool(a.(*array.Boolean).Value(i))
				return nil
			}), nil
		}
	case kindDate, kindTimestamp:
		if get := microsGetter(dt); get != nil {
			return nullable(func(a arrow.Array, i int, c *colValues) error {
				us, err := get(a, i)
				if err != nil {
					return err
				}
				if k == kindDate {
					us = floorDiv(us, secondsPerDay*1_000_000)
				}
				return c.appendTime(k, us)
			}), nil
		}
	}
	return nil, fmt.Errorf("type %s cannot be sent as %s", dt, k)
}

func intGetter(dt arrow.DataType) func(a arrow.Array, i int) (int64, error) {
	switch dt.ID() {
	case arrow.INT8:
		return func(a arrow.Array, i int) (int64, error) { return int64(a.(*array.Int8).Value(i)), nil }
	case arrow.INT16:
		return func(a arrow.Array, i int) (int64, error) { return int64(a.(*array.Int16).Value(i)), nil }
	case arrow.INT32:
		return func(a arrow.Array, i int) (int64, error) { return int64(a.(*array.Int32).Value(i)), nil }
	case arrow.INT64:
		return func(a arrow.Array, i int) (int64, error) { return a.(*array.Int64).Value(i), nil }
	case arrow.UINT8:
		return func(a arrow.Array, i int) (int64, error) { return int64(a.(*array.Uint8).Value(i)), nil }
	case arrow.UINT16:
		return func(a arrow.Array, i int) (int64, error) { return int64(a.(*array.Uint16).Value(i)), nil }
	case arrow.UINT32:
		return func(a arrow.Array, i int) (int64, error) { return int64(a.(*array.Uint32).Value(i)), nil }
	case arrow.UINT64:
		return func(a arrow.Array, i int) (int64, error) {
			v := a.(*array.Uint64).Value(i)
			if v > math.MaxInt64 {
				return 0, errUint64Range
			}
			return int64(v), nil
		}
	}
	return nil
}

func floatGetter(dt arrow.DataType) func(a arrow.Array, i int) float64 {
	if get := intGetter(dt); get != nil && dt.ID() != arrow.UINT64 {
		return func(a arrow.Array, i int) float64 { v, _ := get(a, i); return float64(v) }
	}
	switch t := dt.(type) {
	case *arrow.Uint64Type:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Uint64).Value(i)) }
	case *arrow.Float16Type:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Float16).Value(i).Float32()) }
	case *arrow.Float32Type:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Float32).Value(i)) }
	case *arrow.Float64Type:
		return func(a arrow.Array, i int) float64 { return a.(*array.Float64).Value(i) }
	case *arrow.Decimal128Type:
		return func(a arrow.Array, i int) float64 { return a.(*array.Decimal128).Value(i).ToFloat64(t.Scale) }
	case *arrow.Decimal256Type:
		return func(a arrow.Array, i int) float64 { return a.(*array.Decimal256).Value(i).ToFloat64(t.Scale) }
	}
	return nil
}

// microsGetter reads dates and timestamps as microseconds since the epoch.
func microsGetter(dt arrow.DataType) func(a arrow.Array, i int) (int64, error) {
	const usPerDay = secondsPerDay * 1_000_000
	switch t := dt.(type) {
	case *arrow.Date32Type:
		return func(a arrow.Array, i int) (int64, error) {
			return scale(int64(a.(*array.Date32).Value(i)), usPerDay, 1)
		}
	case *arrow.Date64Type:
		return func(a arrow.Array, i int) (int64, error) {
			return scale(int64(a.(*array.Date64).Value(i)), 1000, 1)
		}
	case *arrow.TimestampType:
		mul, div := int64(1), int64(1)
		switch t.Unit {
		case arrow.Second:
			mul = 1_000_000
		case arrow.Millisecond:
			mul = 1000
		case arrow.Nanosecond:
			div = 1000
		}
		return func(a arrow.Array, i int) (int64, error) {
			return scale(int64(a.(*array.Timestamp).Value(i)), mul, div)
		}
	}
	return nil
}

// scale returns v*mul/div rounded down, or errTimeRange on overflow.
func scale(v, mul, div int64) (int64, error) {
	if div > 1 {
		return floorDiv(v, div), nil
	}
	if v > math.MaxInt64/mul || v < math.MinInt64/mul {
		return 0, errTimeRange
	}
	return v * mul, nil
}

// withFixedPID returns s with its pid column's type fixed_size_binary[32]
// when it is binary or large_binary, as Parquet writers such as DuckDB
// write 32 bytes (a BLOB is a Parquet BYTE_ARRAY, read as Arrow binary).
func withFixedPID(s *arrow.Schema) (*arrow.Schema, bool) {
	if s == nil {
		return nil, false
	}
	idx := s.FieldIndices(PIDColumn)
	if len(idx) != 1 {
		return nil, false // ValidateSchema says what is wrong
	}
	switch s.Field(idx[0]).Type.ID() {
	case arrow.BINARY, arrow.LARGE_BINARY:
	default:
		return nil, false
	}
	fields := s.Fields() // a copy
	fields[idx[0]].Type = PIDType
	md := s.Metadata()
	return arrow.NewSchema(fields, &md), true
}

// binaryValues is an array of bytes of either offset width.
type binaryValues interface {
	arrow.Array
	Value(int) []byte
}

// fixPID returns rec with its binary pid column as fixed_size_binary[32],
// the Reader's schema. A value of another length is an error naming its
// row. The caller releases the record returned.
func (r *Reader) fixPID(rec arrow.Record) (arrow.Record, error) {
	first := r.Rows() + 1
	if !rec.Schema().Equal(r.srcSchema) {
		return nil, fmt.Errorf("record %d (rows from %d): schema differs from the stream's", r.records, first)
	}
	col := rec.Column(r.pid)
	if int64(col.Len()) != rec.NumRows() {
		return nil, fmt.Errorf("record %d (rows from %d): column %s has %d rows, the record %d", r.records, first, PIDColumn, col.Len(), rec.NumRows())
	}
	if err := checkData(col.Data()); err != nil {
		return nil, fmt.Errorf("record %d (rows from %d): column %s: %w", r.records, first, PIDColumn, err)
	}
	vals, ok := col.(binaryValues)
	if !ok {
		return nil, fmt.Errorf("record %d (rows from %d): column %s: type %s, want binary", r.records, first, PIDColumn, col.DataType())
	}
	b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, PIDType)
	defer b.Release()
	b.Reserve(vals.Len())
	for i := 0; i < vals.Len(); i++ {
		if vals.IsNull(i) {
			b.AppendNull() // check says which row
			continue
		}
		if v := vals.Value(i); len(v) == psi.PointSize {
			b.Append(v)
		} else {
			return nil, fmt.Errorf("row %d: %s is %d bytes, want %d (a blinded point; a Parquet BLOB or BYTE_ARRAY pid must hold exactly %d bytes in every row)",
				first+int64(i), PIDColumn, len(v), psi.PointSize, psi.PointSize)
		}
	}
	pids := b.NewArray()
	defer pids.Release()
	cols := append([]arrow.Array(nil), rec.Columns()...)
	cols[r.pid] = pids
	return array.NewRecord(r.schema, cols, rec.NumRows()), nil
}

// checkLargeOffsets is checkOffsets for int64 offsets.
func checkLargeOffsets(b []byte, off, n, limit int) error {
	if n == 0 {
		return nil
	}
	if len(b) < (off+n+1)*8 {
		return errors.New("offsets buffer shorter than the array")
	}
	offs := arrow.Int64Traits.CastFromBytes(b)[off : off+n+1]
	if offs[0] < 0 {
		return errors.New("negative offset")
	}
	for i := 1; i <= n; i++ {
		if offs[i] < offs[i-1] {
			return fmt.Errorf("offsets decrease at value %d", i)
		}
	}
	if offs[n] > int64(limit) {
		return errors.New("offsets point past the values")
	}
	return nil
}
