//go:build cgo

package audience

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/cleanroom/cleanroom/psi"
	_ "github.com/marcboeker/go-duckdb"
)

// blindedEmails returns n points as a party uploads them: emails
// normalized, hashed to the curve and blinded with its key.
func blindedEmails(t *testing.T, n int) []psi.Point {
	t.Helper()
	key, err := psi.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := psi.NewHasher(psi.Email)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pts := make([]psi.Point, n)
	for i := range pts {
		d, err := norm.Digest(fmt.Sprintf("Person%d@Example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		if pts[i], err = key.Blind(h.Hash(d[:])); err != nil {
			t.Fatal(err)
		}
	}
	return pts
}

// duckdbParquet has DuckDB write pids (hex; a BLOB column, as DuckDB
// writes any bytes) with the wire format's other columns to a Parquet
// file, and returns its path.
func duckdbParquet(t *testing.T, pids []string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE people (n BIGINT, pid_hex VARCHAR)`); err != nil {
		t.Fatal(err)
	}
	for i, p := range pids {
		if _, err := db.ExecContext(ctx, `INSERT INTO people VALUES (?, ?)`, i, p); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "audience.parquet")
	_, err = db.ExecContext(ctx, `COPY (
		SELECT unhex(pid_hex) AS pid, ['measurement'] AS consent, CAST(n * 1.5 AS DOUBLE) AS spend, 'r' || (n % 3) AS region
		FROM people ORDER BY n) TO '`+strings.ReplaceAll(path, "'", "''")+`' (FORMAT PARQUET)`)
	if err != nil {
		t.Fatal(err)
	}
	var typ string
	if err := db.QueryRowContext(ctx, `SELECT typeof(pid) FROM read_parquet(?) LIMIT 1`, path).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "BLOB" {
		t.Fatalf("DuckDB wrote pid as %s, want BLOB", typ)
	}
	return path
}

// openParquet reads a Parquet upload as the server does (cohort.Upload):
// pqarrow's record reader wrapped in NewReader, in batches of batch rows.
func openParquet(t *testing.T, path string, batch int64, mem memory.Allocator) (*Reader, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Close() })
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: batch}, mem)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	return NewReader(rr)
}

// A Parquet file written by DuckDB holds pid as a BLOB (Parquet
// BYTE_ARRAY, Arrow binary): accepted when every value is 32 bytes, read
// as fixed_size_binary[32] with the same points.
func TestReaderAcceptsDuckDBParquet(t *testing.T) {
	pts := blindedEmails(t, 23)
	hexes := make([]string, len(pts))
	for i := range pts {
		hexes[i] = hex.EncodeToString(pts[i][:])
	}
	path := duckdbParquet(t, hexes)

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	r, err := openParquet(t, path, 10, mem)
	if err != nil {
		t.Fatalf("a DuckDB Parquet file is refused: %v", err)
	}
	if got := r.Schema().Field(r.Schema().FieldIndices(PIDColumn)[0]).Type; !arrow.TypeEqual(got, PIDType) {
		t.Errorf("pid reads as %s, want %s", got, PIDType)
	}
	var got []psi.Point
	for r.Next() {
		rec := r.Record()
		if !rec.Schema().Equal(r.Schema()) {
			t.Fatalf("record schema %s differs from the reader's %s", rec.Schema(), r.Schema())
		}
		col := rec.Column(r.pid).(*array.FixedSizeBinary)
		for i := 0; i < col.Len(); i++ {
			got = append(got, psi.Point(col.Value(i)))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pts) || r.Rows() != int64(len(pts)) {
		t.Fatalf("read %d points (Rows %d), want %d", len(got), r.Rows(), len(pts))
	}
	for i := range pts {
		if got[i] != pts[i] {
			t.Fatalf("row %d: point %x, want %x", i+1, got[i], pts[i])
		}
	}
	r.Release()
	mem.AssertSize(t, 0)

	// A value of another length is refused, naming its row (in the second
	// batch here: rows count over the whole file).
	short := append([]string(nil), hexes...)
	short[13] = short[13][:62]
	r, err = openParquet(t, duckdbParquet(t, short), 10, mem)
	if err != nil {
		t.Fatal(err)
	}
	readAll(r)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "row 14: pid is 31 bytes, want 32") {
		t.Errorf("a 31-byte pid: %v", err)
	}
	r.Release()
	mem.AssertSize(t, 0)
}
