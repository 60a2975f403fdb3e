package audience

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/cleanroom/cleanroom/psi"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	pidField,
	field(ConsentColumn, ConsentType),
	field("region", arrow.BinaryTypes.String),
	field("spend", arrow.PrimitiveTypes.Float64),
}, nil)

// validPoints returns n blinded points, as a party would upload them.
func validPoints(t testing.TB, n int) []psi.Point {
	t.Helper()
	key, err := psi.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := psi.NewHasher(psi.Email)
	if err != nil {
		t.Fatal(err)
	}
	pts := make([]psi.Point, n)
	for i := range pts {
		if pts[i], err = key.Blind(h.Hash([]byte{byte(i), byte(i >> 8)})); err != nil {
			t.Fatal(err)
		}
	}
	return pts
}

// record builds a record of testSchema; a nil point is a null pid.
func record(mem memory.Allocator, pts []*psi.Point) arrow.Record {
	return recordSpending(mem, pts, func(i int) float64 { return float64(i) })
}

// recordSpending is record with row i's spend.
func recordSpending(mem memory.Allocator, pts []*psi.Point, spend func(i int) float64) arrow.Record {
	b := array.NewRecordBuilder(mem, testSchema)
	defer b.Release()
	for i, p := range pts {
		if p == nil {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.FixedSizeBinaryBuilder).Append(p[:])
		}
		lb := b.Field(1).(*array.ListBuilder)
		if i%3 == 0 {
			lb.AppendNull()
		} else {
			lb.Append(true)
			lb.ValueBuilder().(*array.StringBuilder).AppendValues([]string{"measurement", "marketing"}[:i%3], nil)
		}
		b.Field(2).(*array.StringBuilder).Append("région")
		b.Field(3).(*array.Float64Builder).Append(spend(i))
	}
	return b.NewRecord()
}

func ptrs(pts []psi.Point) []*psi.Point {
	out := make([]*psi.Point, len(pts))
	for i := range pts {
		out[i] = &pts[i]
	}
	return out
}

// stream writes records of the given rows each as an Arrow IPC stream.
func stream(t testing.TB, mem memory.Allocator, records ...[]*psi.Point) []byte {
	t.Helper()
	recs := make([]arrow.Record, len(records))
	for i, pts := range records {
		recs[i] = record(mem, pts)
	}
	return streamOf(t, mem, recs...)
}

// streamOf writes records as an Arrow IPC stream and releases them.
func streamOf(t testing.TB, mem memory.Allocator, recs ...arrow.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema), ipc.WithAllocator(mem))
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads a Reader to the end and returns the rows seen.
func readAll(r *Reader) int64 {
	var n int64
	for r.Next() {
		n += r.Record().NumRows()
	}
	return n
}

func TestReaderReadsAndCounts(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	pts := validPoints(t, 15)
	data := stream(t, mem, ptrs(pts[:5]), ptrs(pts[5:10]), ptrs(pts[10:]))

	for _, open := range []struct {
		name string
		fn   func() (*Reader, error)
	}{
		{"ipc.NewReader", func() (*Reader, error) {
			ir, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(mem))
			if err != nil {
				return nil, err
			}
			defer ir.Release()
			return NewReader(ir)
		}},
		{"NewStreamReader", func() (*Reader, error) {
			return NewStreamReader(bytes.NewReader(data), StreamOptions{Allocator: mem})
		}},
	} {
		t.Run(open.name, func(t *testing.T) {
			r, err := open.fn()
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(r); got != 15 || r.Rows() != 15 {
				t.Errorf("read %d rows, Rows() = %d, want 15", got, r.Rows())
			}
			if r.Err() != nil {
				t.Errorf("Err after a clean end: %v", r.Err())
			}
			if r.Next() || r.Next() || r.Record() != nil {
				t.Error("Next after the end returned a record")
			}
			r.Release()
			mem.AssertSize(t, 0)
		})
	}
}

func TestReaderStopsAtBadPoint(t *testing.T) {
	lowOrder := psi.Point{} // 32 zero bytes: order 2
	var nonCanonical psi.Point
	for i := range nonCanonical {
		nonCanonical[i] = 0xff
	}
	nonCanonical[31] = 0x7f
	pts := validPoints(t, 15)
	for _, tc := range []struct {
		name string
		bad  *psi.Point
		want error
		msg  string
	}{
		{"low order", &lowOrder, psi.ErrPointLowOrder, "row 13: pid: point has low order"},
		{"non-canonical", &nonCanonical, psi.ErrPointNonCanonical, "row 13: pid: point encoding is not canonical"},
		{"null", nil, nil, "row 13: pid is null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			third := ptrs(pts[10:])
			third[2] = tc.bad
			data := stream(t, memory.DefaultAllocator, ptrs(pts[:5]), ptrs(pts[5:10]), third)
			r, err := NewStreamReader(bytes.NewReader(data), StreamOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			if got := readAll(r); got != 10 {
				t.Errorf("delivered %d rows before the bad one, want 10", got)
			}
			err = r.Err()
			if err == nil || !strings.HasPrefix(err.Error(), tc.msg) {
				t.Fatalf("Err = %v, want %q", err, tc.msg)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.want)
			}
			if r.Rows() != 10 || r.Next() || r.Record() != nil {
				t.Errorf("after the error: Rows %d, Next or Record still gives data", r.Rows())
			}
		})
	}
}

// spendStream is a stream of 15 rows in three records whose row bad
// (from 1) spends v.
func spendStream(t testing.TB, pts []psi.Point, bad int, v float64) []byte {
	var recs []arrow.Record
	for start := 0; start < 15; start += 5 {
		recs = append(recs, recordSpending(memory.DefaultAllocator, ptrs(pts[start:start+5]), func(i int) float64 {
			if start+i+1 == bad {
				return v
			}
			return float64(start + i)
		}))
	}
	return streamOf(t, memory.DefaultAllocator, recs...)
}

// NaN and infinities would make a release fail, or not, on what one
// person holds: an upload with one stops at its row, naming the column.
func TestReaderRefusesNonFiniteNumbers(t *testing.T) {
	pts := validPoints(t, 15)
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		r, err := NewStreamReader(bytes.NewReader(spendStream(t, pts, 13, v)), StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(r); got != 10 {
			t.Errorf("%v: delivered %d rows before the bad one, want 10", v, got)
		}
		want := fmt.Sprintf(`row 13: column "spend" is %v; attributes must be finite numbers (or null)`, v)
		if err := r.Err(); err == nil || err.Error() != want {
			t.Errorf("Err = %v, want %q", err, want)
		}
		r.Release()
	}
	// The largest finite numbers are numbers: per-person sums clamp them.
	r, err := NewStreamReader(bytes.NewReader(spendStream(t, pts, 13, math.MaxFloat64)), StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if got := readAll(r); got != 15 || r.Err() != nil {
		t.Errorf("MaxFloat64: %d rows, %v", got, r.Err())
	}
}

// A date or timestamp no answer could state (JSON's RFC 3339 has years 0
// to 9999) is refused at its row too, without showing it.
func TestReaderRefusesDatesNoAnswerStates(t *testing.T) {
	pts := validPoints(t, 3)
	schema := arrow.NewSchema([]arrow.Field{pidField, field("d", arrow.FixedWidthTypes.Date32), field("ts", arrow.FixedWidthTypes.Timestamp_us)}, nil)
	for _, tc := range []struct {
		d    arrow.Date32
		ts   arrow.Timestamp
		want string
	}{
		{maxDay + 1, 0, `row 2: column "d" is a date outside the years 1 to 9999`},
		{minDay - 1, 0, `row 2: column "d" is a date outside the years 1 to 9999`},
		{0, math.MaxInt64, `row 2: column "ts" is a timestamp outside the years 1 to 9999`},
		{maxDay, maxMicros, ""},
	} {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := range pts {
			b.Field(0).(*array.FixedSizeBinaryBuilder).Append(pts[i][:])
			d, ts := arrow.Date32(i), arrow.Timestamp(i)
			if i == 1 {
				d, ts = tc.d, tc.ts
			}
			b.Field(1).(*array.Date32Builder).Append(d)
			b.Field(2).(*array.TimestampBuilder).Append(ts)
		}
		rec := b.NewRecord()
		b.Release()
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		w.Close()
		rec.Release()
		r, err := NewStreamReader(&buf, StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		readAll(r)
		if err := r.Err(); tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("Err = %v, want %q", err, tc.want)
		}
		r.Release()
	}
}

func TestReaderReportsTruncatedStream(t *testing.T) {
	pts := validPoints(t, 300)
	data := stream(t, memory.DefaultAllocator, ptrs(pts[:100]), ptrs(pts[100:200]), ptrs(pts[200:]))

	t.Run("cut in half, ipc.NewReader", func(t *testing.T) {
		ir, err := ipc.NewReader(bytes.NewReader(data[:len(data)/2]))
		if err != nil {
			t.Fatal(err)
		}
		defer ir.Release()
		r, err := NewReader(ir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		n := readAll(r)
		if r.Err() == nil {
			t.Fatalf("half a stream read as a clean end of %d rows", n)
		}
		if !strings.Contains(r.Err().Error(), "after row") {
			t.Errorf("error %q does not say where", r.Err())
		}
	})

	// Every cut, including those between messages, where ipc.Reader alone
	// sees a clean end.
	for cut := 0; cut < len(data); cut++ {
		r, err := NewStreamReader(bytes.NewReader(data[:cut]), StreamOptions{})
		if err != nil {
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("cut at %d: NewStreamReader: %v, want ErrTruncated", cut, err)
			}
			continue
		}
		n := readAll(r)
		if !errors.Is(r.Err(), ErrTruncated) {
			t.Fatalf("cut at %d of %d: read %d rows, Err = %v, want ErrTruncated", cut, len(data), n, r.Err())
		}
		r.Release()
	}
}

func TestStreamReaderRefusesBeforeAllocating(t *testing.T) {
	pts := validPoints(t, 2)
	valid := stream(t, memory.DefaultAllocator, ptrs(pts))

	huge := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f} // a 2 GiB header
	if _, err := NewStreamReader(bytes.NewReader(huge), StreamOptions{}); err == nil || !strings.Contains(err.Error(), "header of 2147483647 bytes") {
		t.Errorf("2 GiB header: %v", err)
	}

	// A record batch larger than the limit.
	big := make([]*psi.Point, 5000)
	all := validPoints(t, 5000)
	for i := range big {
		big[i] = &all[i]
	}
	r, err := NewStreamReader(bytes.NewReader(stream(t, memory.DefaultAllocator, big)), StreamOptions{MaxMessageBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	readAll(r)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "at most 65536 are accepted") {
		t.Errorf("oversized record: %v", err)
	}
	r.Release()

	// Compressed batches: their declared sizes are allocated blindly.
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema), ipc.WithLZ4())
	rec := record(memory.DefaultAllocator, ptrs(pts))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	w.Close()
	r, err = NewStreamReader(&buf, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	readAll(r)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "compressed record batches are not accepted") {
		t.Errorf("compressed: %v", err)
	}
	r.Release()

	// Other formats are named.
	file := append([]byte("ARROW1\x00\x00"), valid...) // the file format's magic, then a stream
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"arrow file": {file, "Arrow IPC file"},
		"parquet":    {[]byte("PAR1\x15\x04"), "Parquet file"},
		"csv":        {[]byte("email,age\na@b.c,3\n"), "not an Arrow IPC stream"},
		"empty":      {nil, "truncated"},
	} {
		if _, err := NewStreamReader(bytes.NewReader(tc.data), StreamOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := NewStreamReader(bytes.NewReader(valid), StreamOptions{}); err != nil {
		t.Errorf("valid stream: %v", err)
	}
}

func TestReaderRejectsMalformedColumns(t *testing.T) {
	pts := validPoints(t, 3)
	good := record(memory.DefaultAllocator, ptrs(pts))
	defer good.Release()
	region := good.Column(2).Data()
	offsets := []int32{0, 7, 3, 21} // goes backwards
	bad := array.NewData(region.DataType(), 3,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets)), region.Buffers()[2]}, nil, 0, 0)
	defer bad.Release()
	badCol := array.MakeFromData(bad)
	defer badCol.Release()
	cols := append([]arrow.Array(nil), good.Columns()...)
	cols[2] = badCol
	rec := array.NewRecord(testSchema, cols, 3)
	defer rec.Release()

	rr, err := array.NewRecordReader(testSchema, []arrow.Record{good, rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	r, err := NewReader(rr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if got := readAll(r); got != 3 {
		t.Errorf("read %d rows before the bad record, want 3", got)
	}
	want := `record 2 (rows 4-6): column "region": offsets decrease at value 2`
	if r.Err() == nil || r.Err().Error() != want {
		t.Errorf("Err = %v, want %q", r.Err(), want)
	}
}

func TestReaderRejectsBadSchemaUpFront(t *testing.T) {
	for _, typ := range []arrow.DataType{arrow.BinaryTypes.String, &arrow.FixedSizeBinaryType{ByteWidth: 31}} {
		s := arrow.NewSchema([]arrow.Field{field(PIDColumn, typ)}, nil)
		rr, err := array.NewRecordReader(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer rr.Release()
		if _, err := NewReader(rr); err == nil || !strings.Contains(err.Error(), `column "pid": type `+typ.String()) {
			t.Errorf("NewReader, pid of type %s: %v", typ, err)
		}
	}
	// NewReader takes a binary pid (Parquet files hold one, see
	// TestReaderAcceptsDuckDBParquet); the Arrow IPC wire format does not.
	s := arrow.NewSchema([]arrow.Field{field(PIDColumn, arrow.BinaryTypes.Binary)}, nil)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewStreamReader(&buf, StreamOptions{}); err == nil || !strings.Contains(err.Error(), `column "pid": type binary`) {
		t.Errorf("NewStreamReader, pid of type binary: %v", err)
	}
}

// A binary or large_binary pid is read as fixed_size_binary[32]; a null
// stays null (and is refused as such), a value of another length is
// refused, naming its row.
func TestReaderConvertsBinaryPID(t *testing.T) {
	pts := validPoints(t, 5)
	for _, typ := range []arrow.DataType{arrow.BinaryTypes.Binary, arrow.BinaryTypes.LargeBinary} {
		s := arrow.NewSchema([]arrow.Field{field(PIDColumn, typ), field("spend", arrow.PrimitiveTypes.Float64)}, nil)
		records := func(vals ...[]byte) array.RecordReader {
			var recs []arrow.Record
			for start := 0; start < len(vals); start += 3 {
				b := array.NewRecordBuilder(memory.DefaultAllocator, s)
				for _, v := range vals[start:min(start+3, len(vals))] {
					if v == nil {
						b.Field(0).AppendNull()
					} else {
						b.Field(0).(*array.BinaryBuilder).Append(v)
					}
					b.Field(1).(*array.Float64Builder).Append(1)
				}
				recs = append(recs, b.NewRecord())
				b.Release()
			}
			rr, err := array.NewRecordReader(s, recs)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				r.Release()
			}
			return rr
		}
		read := func(rr array.RecordReader) ([]psi.Point, error) {
			defer rr.Release()
			r, err := NewReader(rr)
			if err != nil {
				return nil, err
			}
			defer r.Release()
			if !arrow.TypeEqual(r.Schema().Field(0).Type, PIDType) {
				t.Errorf("%s: the Reader's pid is %s", typ, r.Schema().Field(0).Type)
			}
			var out []psi.Point
			for r.Next() {
				col := r.Record().Column(0).(*array.FixedSizeBinary)
				for i := 0; i < col.Len(); i++ {
					out = append(out, psi.Point(col.Value(i)))
				}
			}
			return out, r.Err()
		}
		var vals [][]byte
		for i := range pts {
			vals = append(vals, pts[i][:])
		}
		got, err := read(records(vals...))
		if err != nil || len(got) != len(pts) {
			t.Fatalf("%s: read %d points: %v", typ, len(got), err)
		}
		for i := range pts {
			if got[i] != pts[i] {
				t.Errorf("%s: row %d: another point", typ, i+1)
			}
		}
		long := append(append([]byte(nil), pts[4][:]...), 0)
		for _, c := range []struct {
			vals [][]byte
			want string
		}{
			{[][]byte{vals[0], vals[1], vals[2], vals[3], long}, "row 5: pid is 33 bytes, want 32"},
			{[][]byte{vals[0], {}}, "row 2: pid is 0 bytes, want 32"},
			{[][]byte{vals[0], vals[1], vals[2], nil}, "row 4: pid is null"},
		} {
			if _, err := read(records(c.vals...)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: got %v, want %q", typ, err, c.want)
			}
		}
	}
}

// FuzzReader feeds arbitrary bytes to NewStreamReader: it must never panic
// or allocate what the input merely claims, and every record it lets
// through must be safe to read in full, with a valid pid in every row.
func FuzzReader(f *testing.F) {
	pts := validPoints(f, 6)
	valid := stream(f, memory.DefaultAllocator, ptrs(pts[:2]), ptrs(pts[2:6]))
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:len(valid)-8])
	low := ptrs(pts[:3])
	low[1] = &psi.Point{}
	f.Add(stream(f, memory.DefaultAllocator, low))
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/3] ^= 0x40
	f.Add(flipped)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0})
	f.Add(spendStream(f, validPoints(f, 15), 4, math.NaN()))
	f.Add(spendStream(f, validPoints(f, 15), 15, math.Inf(-1)))

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewStreamReader(bytes.NewReader(data), StreamOptions{MaxMessageBytes: 1 << 20})
		if err != nil {
			return
		}
		defer r.Release()
		var rows int64
		for r.Next() {
			rec := r.Record()
			rows += rec.NumRows()
			pid := rec.Column(r.pid).(*array.FixedSizeBinary)
			for i := 0; i < pid.Len(); i++ {
				if pid.IsNull(i) {
					t.Fatalf("null pid delivered")
				}
				if _, err := psi.DecodePoint(pid.Value(i)); err != nil {
					t.Fatalf("invalid pid delivered: %v", err)
				}
			}
			// What DuckDB would do: read every value of every column.
			for _, col := range rec.Columns() {
				for i := 0; i < col.Len(); i++ {
					_ = col.ValueStr(i)
					if f, ok := col.(*array.Float64); ok && f.IsValid(i) && (math.IsNaN(f.Value(i)) || math.IsInf(f.Value(i), 0)) {
						t.Fatalf("non-finite number delivered")
					}
				}
			}
		}
		if rows != r.Rows() {
			t.Fatalf("Rows() = %d, delivered %d", r.Rows(), rows)
		}
		// A clean end needs an end-of-stream marker: four zero bytes.
		if r.Err() == nil && !bytes.Contains(data, []byte{0, 0, 0, 0}) {
			t.Fatalf("clean end without an end-of-stream marker")
		}
	})
}
