package cohort

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/marcboeker/go-duckdb"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/psi"
)

// buildPoints writes table tbl of a match: the distinct consented points
// of a party's tables, numbered (pos, from 0) in the order of their
// bytes, so that the order the other party sees says nothing about the
// uploads' row order. It returns how many there are.
//
// Consent is read where the party put it: a person takes part when a row
// of theirs in a table with a consent column carries the purpose (tables
// without one add no one; their rows follow their people's consent).
//
// DuckDB de-duplicates (a hash aggregate over the consented rows of all
// the party's tables), so Go receives each person's point once, however
// many rows they have: an exposure log's 30 rows a person cost no more
// memory here than a customer table's one. The distinct points arrive in
// parts by a hash of the point, each part a query of its own with its
// whole result in memory (go-duckdb's Arrow queries hold it), so no part
// holds more than about pointsPerPart points. They are then sorted in Go
// and written back in order: DuckDB's ORDER BY and row_number() over 10M
// 32-byte blobs took about 20 s a side (its numbering runs on one thread,
// its sort spills under the memory limit); this takes about half.
func (s *Service) buildPoints(ctx context.Context, tables []Audience, purpose, tbl string) (int64, error) {
	var sources []string
	var args []any
	var people int64
	for _, aud := range tables {
		if has, err := aud.hasColumn(audience.ConsentColumn); err != nil {
			return 0, err
		} else if has {
			sources = append(sources, `SELECT pid FROM `+aud.table+` WHERE list_contains(consent, ?)`)
			args = append(args, purpose)
			people += aud.PeopleMatchable
		}
	}
	var pts []psi.Point
	if len(sources) > 0 {
		// The parties' own counts of people who can match bound the
		// distinct points: room for them, and the number of parts.
		pts = make([]psi.Point, 0, people)
		parts := 1 + people/pointsPerPart
		union := strings.Join(sources, " UNION ALL ")
		err := s.DB.Raw(ctx, func(conn driver.Conn) error {
			return readSnapshot(ctx, conn, func(ar *duckdb.Arrow) error {
				for part := range parts {
					rr, err := ar.QueryContext(ctx, fmt.Sprintf(`SELECT DISTINCT pid FROM (%s) WHERE hash(pid) %% %d = %d`, union, parts, part), args...)
					if err != nil {
						return err
					}
					for rr.Next() {
						rec := rr.Record()
						col, ok := rec.Column(0).(interface{ Value(int) []byte })
						if !ok {
							rr.Release()
							return fmt.Errorf("unexpected pid column type %s", rec.Column(0).DataType())
						}
						for i := range int(rec.NumRows()) {
							pts = append(pts, psi.Point(col.Value(i)))
						}
					}
					err = rr.Err()
					rr.Release()
					if err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return 0, fmt.Errorf("cohort: reading the points of %s: %w", tbl, err)
		}
	}
	pts = sortPoints(pts)
	r := &sortedPoints{pts: pts}
	defer r.Release()
	view := "v_" + tbl
	if _, err := s.DB.SQL().ExecContext(ctx, `CREATE TABLE `+tbl+` (pos BIGINT, pid `+randomBlob+`)`); err != nil {
		return 0, fmt.Errorf("cohort: creating points table %s: %w", tbl, err)
	}
	if err := s.scan(ctx, r, view, `INSERT INTO `+tbl+` SELECT * FROM `+view); err != nil {
		return 0, fmt.Errorf("cohort: writing points table %s: %w", tbl, err)
	}
	return int64(len(pts)), nil
}

// pointsPerPart bounds the distinct points one query of buildPoints
// returns: 8M points, 256 MiB.
const pointsPerPart = 8 << 20

// randomBlob is the column type of points and tokens in match tables.
// They are uniformly random bytes: DuckDB's string compressions
// (dictionary, FSST) cannot shrink them, and trying costs more than half
// of writing them (10M points: 3.6 s with, 1.6 s without).
const randomBlob = "BLOB USING COMPRESSION uncompressed"

// readRange is how many rows one query of readRanges covers: go-duckdb's
// Arrow queries hold their whole result in memory, so a table is read in
// ranges of its rows, about 40 MB of points each. (A variable for tests.)
var readRange int64 = 1 << 20

// readSnapshot runs fn in one read transaction on conn, so that queries
// by row ranges see one state of the table (and its row ids).
func readSnapshot(ctx context.Context, conn driver.Conn, fn func(ar *duckdb.Arrow) error) error {
	ex := conn.(driver.ExecerContext)
	if _, err := ex.ExecContext(ctx, `BEGIN TRANSACTION`, nil); err != nil {
		return err
	}
	defer ex.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`, nil)
	ar, err := duckdb.NewArrowFromConn(conn)
	if err != nil {
		return err
	}
	return fn(ar)
}

// queryInts scans one row of integers.
func queryInts(ctx context.Context, ar *duckdb.Arrow, q string, args []any, dst ...*int64) error {
	rr, err := ar.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rr.Release()
	if !rr.Next() {
		return fmt.Errorf("no row from %q", q)
	}
	for i, d := range dst {
		col, ok := rr.Record().Column(i).(*array.Int64)
		if !ok || col.Len() != 1 {
			return fmt.Errorf("unexpected column %d of %q", i, q)
		}
		*d = col.Value(0)
	}
	return nil
}

// readRanges runs q, whose last two parameters bound a range [lo, hi) of
// some ordered key, over [0, end) in ranges of readRange, passing each
// record to fn in order.
func readRanges(ctx context.Context, ar *duckdb.Arrow, q string, args []any, end int64, fn func(arrow.Record) error) error {
	for lo := int64(0); lo < end; lo += readRange {
		rr, err := ar.QueryContext(ctx, q, append(slices.Clone(args), lo, lo+readRange)...)
		if err != nil {
			return err
		}
		for rr.Next() {
			if err := fn(rr.Record()); err != nil {
				rr.Release()
				return err
			}
		}
		err = rr.Err()
		rr.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// comparePoints orders points by their bytes. The first eight almost
// always decide: they are compared as one number before the rest.
func comparePoints(a, b *psi.Point) int {
	x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return bytes.Compare(a[8:], b[8:])
}

// sortPoints sorts pts by their bytes and drops repeats, in place: one
// pass moves each point to the range of its first byte (an American flag
// sort's), then the 256 ranges sort on all cores.
func sortPoints(pts []psi.Point) []psi.Point {
	var count [257]int
	for i := range pts {
		count[int(pts[i][0])+1]++
	}
	for b := 1; b <= 256; b++ {
		count[b] += count[b-1] // count[b] is now where range b starts
	}
	var next [256]int
	copy(next[:], count[:256])
	for b := range 256 {
		for next[b] < count[b+1] {
			d := pts[next[b]][0]
			if int(d) == b {
				next[b]++
				continue
			}
			pts[next[b]], pts[next[d]] = pts[next[d]], pts[next[b]]
			next[d]++
		}
	}
	var wg sync.WaitGroup
	var bucket atomic.Int32
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := int(bucket.Add(1) - 1); b < 256; b = int(bucket.Add(1) - 1) {
				part := pts[count[b]:count[b+1]]
				slices.SortFunc(part, func(x, y psi.Point) int { return comparePoints(&x, &y) })
			}
		}()
	}
	wg.Wait()
	return slices.Compact(pts)
}

// pointsSchema is a match's points table: each point and its position.
var pointsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "pos", Type: arrow.PrimitiveTypes.Int64},
	{Name: audience.PIDColumn, Type: &arrow.FixedSizeBinaryType{ByteWidth: psi.PointSize}},
}, nil)

// sortedPoints hands sorted points to DuckDB as (pos, pid) records.
type sortedPoints struct {
	pts []psi.Point
	off int
	rec arrow.Record
}

// pointsBatch is DuckDB's row group size: one record fills one.
const pointsBatch = 122880

func (r *sortedPoints) Retain()               {}
func (r *sortedPoints) Schema() *arrow.Schema { return pointsSchema }
func (r *sortedPoints) Record() arrow.Record  { return r.rec }
func (r *sortedPoints) Err() error            { return nil }

func (r *sortedPoints) Release() {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
}

func (r *sortedPoints) Next() bool {
	r.Release()
	if r.off >= len(r.pts) {
		return false
	}
	n := min(pointsBatch, len(r.pts)-r.off)
	pb := array.NewInt64Builder(memory.DefaultAllocator)
	bb := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: psi.PointSize})
	defer pb.Release()
	defer bb.Release()
	pb.Reserve(n)
	bb.Reserve(n)
	for i := range n {
		pb.UnsafeAppend(int64(r.off + i))
		bb.Append(r.pts[r.off+i][:])
	}
	r.off += n
	cols := []arrow.Array{pb.NewArray(), bb.NewArray()}
	r.rec = array.NewRecord(pointsSchema, cols, int64(n))
	cols[0].Release()
	cols[1].Release()
	return true
}
