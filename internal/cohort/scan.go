package cohort

import (
	"context"
	"database/sql/driver"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/marcboeker/go-duckdb"
)

// scan registers r as the view named view on a connection of its own,
// runs stmt (which reads the view: CREATE TABLE ... AS SELECT, or INSERT
// INTO a table created with its column types and compression)
// with args, and drops the view. Bulk data thus goes from an Arrow stream
// to a table as DuckDB reads it, never held whole in memory.
//
// DuckDB is handed a shim, not r: go-duckdb's RegisterView exports the
// reader through the Arrow C stream interface, whose exporter takes a
// reference (Retain) that only the C stream's release callback gives
// back, and neither DuckDB nor RegisterView's own release ever calls it.
// Handed r itself, that reference, and the cgo handle holding it, would
// keep r and everything it reads from (the request body included) alive
// for the life of the process, and r's last record would never be
// released. The shim owns nothing (its Retain and Release are rightly
// no-ops), and is cut loose from r when the scan ends; r stays its
// caller's, to release as usual.
func (s *Service) scan(ctx context.Context, r array.RecordReader, view, stmt string, args ...any) error {
	sh := &scanShim{r: r, schema: r.Schema()}
	defer sh.detach()
	return s.DB.Raw(ctx, func(conn driver.Conn) error {
		ar, err := duckdb.NewArrowFromConn(conn)
		if err != nil {
			return err
		}
		release, err := ar.RegisterView(sh, view)
		if err != nil {
			return err
		}
		defer release()
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		ex := conn.(driver.ExecerContext)
		_, err = ex.ExecContext(ctx, stmt, named)
		_, _ = ex.ExecContext(ctx, `DROP VIEW IF EXISTS `+view, nil)
		return err
	})
}

// scanShim is the reader DuckDB holds during a scan: r's records until
// detach, then an ended stream.
type scanShim struct {
	mu     sync.Mutex
	r      array.RecordReader // nil once detached
	schema *arrow.Schema
}

func (s *scanShim) Retain()  {}
func (s *scanShim) Release() {}

func (s *scanShim) Schema() *arrow.Schema { return s.schema }

func (s *scanShim) Next() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r != nil && s.r.Next()
}

func (s *scanShim) Record() arrow.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil {
		return nil
	}
	return s.r.Record()
}

func (s *scanShim) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil {
		return nil
	}
	return s.r.Err()
}

func (s *scanShim) detach() {
	s.mu.Lock()
	s.r = nil
	s.mu.Unlock()
}
