package cohort

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/cleanroom/cleanroom/psi"
)

// tokenReader turns a stream of re-blinded points into (pos, token)
// records, validating each point and the count as DuckDB scans it.
//
// It is an arrow.RecordReader with honest reference counting: its creator
// holds the first reference (the zero value is ready to use), Retain adds
// one, and whoever drops the last frees the record last handed out, so a
// scan stopped early leaves nothing behind. (DuckDB itself reads it
// through a shim that takes no reference: see Service.scan.) The source
// reader belongs to the caller.
type tokenReader struct {
	// refs counts references beyond the creator's.
	refs atomic.Int64
	src  array.RecordReader
	want int64
	pos  int64
	rec  arrow.Record
	err  error
	mem  memory.Allocator
}

var tokenSchema = arrow.NewSchema([]arrow.Field{
	{Name: "pos", Type: arrow.PrimitiveTypes.Int64},
	{Name: "token", Type: &arrow.FixedSizeBinaryType{ByteWidth: psi.TokenSize}},
}, nil)

func (t *tokenReader) Retain() { t.refs.Add(1) }

func (t *tokenReader) Release() {
	if t.refs.Add(-1) >= 0 {
		return
	}
	if t.rec != nil {
		t.rec.Release()
		t.rec = nil
	}
	t.err = errReaderReleased
}

// errReaderReleased stops a reader used after its last release.
var errReaderReleased = errors.New("cohort: token reader used after release")

func (t *tokenReader) Schema() *arrow.Schema { return tokenSchema }
func (t *tokenReader) Record() arrow.Record  { return t.rec }
func (t *tokenReader) Err() error            { return t.err }

func (t *tokenReader) Next() bool {
	if t.rec != nil {
		t.rec.Release()
		t.rec = nil
	}
	if t.err != nil {
		return false
	}
	if !t.src.Next() {
		if err := t.src.Err(); err != nil {
			t.err = fmt.Errorf("reading points: %w", err)
		} else if t.pos != t.want {
			t.err = fmt.Errorf("got %d points, want %d (the same points, in the same order)", t.pos, t.want)
		}
		return false
	}
	in := t.src.Record()
	col, ok := in.Column(0).(*array.FixedSizeBinary)
	if !ok || in.NumCols() != 1 || col.DataType().(*arrow.FixedSizeBinaryType).ByteWidth != psi.PointSize {
		t.err = fmt.Errorf("want one column pid of fixed_size_binary[32], got %s", in.Schema())
		return false
	}
	n := int(in.NumRows())
	if t.pos+int64(n) > t.want {
		t.err = fmt.Errorf("got more than the %d points sent", t.want)
		return false
	}
	pb := array.NewInt64Builder(t.mem)
	tb := array.NewFixedSizeBinaryBuilder(t.mem, &arrow.FixedSizeBinaryType{ByteWidth: psi.TokenSize})
	defer pb.Release()
	defer tb.Release()
	pb.Reserve(n)
	tb.Reserve(n)
	for i := 0; i < n; i++ {
		if col.IsNull(i) {
			t.err = fmt.Errorf("point %d is null", t.pos+int64(i)+1)
			return false
		}
		p, err := psi.DecodePoint(col.Value(i))
		if err != nil {
			t.err = fmt.Errorf("point %d: %w", t.pos+int64(i)+1, err)
			return false
		}
		tok := psi.TokenOf(&p)
		pb.UnsafeAppend(t.pos + int64(i))
		tb.Append(tok[:])
	}
	t.pos += int64(n)
	cols := []arrow.Array{pb.NewArray(), tb.NewArray()}
	t.rec = array.NewRecord(tokenSchema, cols, int64(n))
	cols[0].Release()
	cols[1].Release()
	return true
}
