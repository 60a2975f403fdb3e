package cohort

import (
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/psi"
)

// pointsReader is a stream of n valid points in records of size per.
func pointsReader(t *testing.T, n, per int) array.RecordReader {
	t.Helper()
	h, err := psi.NewHasher(psi.Email)
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.Record
	for start := 0; start < n; start += per {
		b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: psi.PointSize})
		for i := start; i < min(start+per, n); i++ {
			p := h.Hash([]byte{byte(i), byte(i >> 8)})
			b.Append(p[:])
		}
		arr := b.NewArray()
		recs = append(recs, array.NewRecord(audience.PointsSchema, []arrow.Array{arr}, int64(arr.Len())))
		arr.Release()
		b.Release()
	}
	rr, err := array.NewRecordReader(audience.PointsSchema, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	return rr
}

// The token reader hands DuckDB one record at a time. Whoever drops the
// last reference (the scan may stop before the end) frees the record
// last handed out; references taken by Retain are honoured until released.
func TestTokenReaderReleasesItsRecord(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	src := pointsReader(t, 10, 4)
	defer src.Release()
	tr := &tokenReader{src: src, want: 10, mem: mem}
	tr.Retain() // the Arrow C stream's reference, as RegisterView takes it
	if !tr.Next() || tr.Record().NumRows() != 4 {
		t.Fatalf("first record: %v", tr.Err())
	}
	tr.Release() // the stream is done with it, early
	if mem.CurrentAlloc() == 0 {
		t.Fatal("the record was freed while the owner still holds the reader")
	}
	tr.Release() // the owner's reference
	mem.AssertSize(t, 0)

	// Read to the end: nothing is left either, and the count is checked.
	src2 := pointsReader(t, 10, 4)
	defer src2.Release()
	tr = &tokenReader{src: src2, want: 10, mem: mem}
	n := int64(0)
	for tr.Next() {
		n += tr.Record().NumRows()
	}
	if tr.Err() != nil || n != 10 {
		t.Fatalf("read %d tokens, %v", n, tr.Err())
	}
	tr.Release()
	mem.AssertSize(t, 0)

	src3 := pointsReader(t, 10, 4)
	defer src3.Release()
	tr = &tokenReader{src: src3, want: 11, mem: mem}
	for tr.Next() {
	}
	if tr.Err() == nil {
		t.Error("a short stream was accepted")
	}
	tr.Release()
	mem.AssertSize(t, 0)
}

// A scan lets go of its reader: once it ends, the reader's owner holds
// the only reference, and releasing it frees everything, even when DuckDB
// stopped reading early. (Handed to go-duckdb directly, the reader keeps a
// reference that is never given back.)
func TestScanLetsGoOfTheReader(t *testing.T) {
	f := newFixture(t)
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	src := pointsReader(t, 20000, 100)
	defer src.Release()
	tr := &tokenReader{src: src, want: 20000, mem: mem}
	if err := f.s.scan(f.ctx, tr, "v_scan_test", `CREATE TABLE scan_test AS SELECT * FROM v_scan_test LIMIT 5`); err != nil {
		t.Fatal(err)
	}
	if tr.pos == 20000 {
		t.Log("DuckDB read the whole stream")
	}
	tr.Release()
	mem.AssertSize(t, 0)
	var n int
	if err := f.db.SQL().QueryRow(`SELECT count(*) FROM scan_test`).Scan(&n); err != nil || n != 5 {
		t.Errorf("scanned %d rows, %v", n, err)
	}
}
