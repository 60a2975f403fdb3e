package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"
)

// Snapshot copies the whole database, as one transaction sees it, into a
// new DuckDB file at path (which must not exist): an online backup.
//
// A copy of the live file is not one (DuckDB writes it in place, and a
// checkpoint cannot run while a bulk transaction, such as a cohort build,
// is open: CHECKPOINT fails with "other write transactions active", and
// FORCE CHECKPOINT aborts them). COPY FROM DATABASE reads one MVCC
// snapshot, beside every writer, without the write lock: what it copies
// is the state of one instant, committed transactions only, which is a
// state clients saw. Tables under construction (an upload in progress,
// which no record refers to yet) may be copied; the restored server's
// start-up cleanup drops them, as after a crash.
func (db *DB) Snapshot(ctx context.Context, path string) error {
	c, err := db.SQL().Conn(ctx)
	if err != nil {
		return fmt.Errorf("store.Snapshot: %w", err)
	}
	defer c.Close()
	var main string
	if err := c.QueryRowContext(ctx, `SELECT current_database()`).Scan(&main); err != nil {
		return fmt.Errorf("store.Snapshot: %w", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	alias := "snapshot_" + hex.EncodeToString(b)
	if _, err := c.ExecContext(ctx, `ATTACH '`+strings.ReplaceAll(path, "'", "''")+`' AS `+QuoteIdent(alias)); err != nil {
		return fmt.Errorf("store.Snapshot: %w", err)
	}
	// Detach whatever happens: an attached file stays open (and listed by
	// duckdb_tables()) until then.
	detached := false
	detach := func() error {
		if detached {
			return nil
		}
		detached = true
		_, err := c.ExecContext(context.Background(), `DETACH `+QuoteIdent(alias))
		return err
	}
	defer detach()
	// One explicit transaction: COPY FROM DATABASE runs a statement a
	// table, and autocommitted they would each see another instant (a
	// table dropped between them is then missing).
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store.Snapshot: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `COPY FROM DATABASE `+QuoteIdent(main)+` TO `+QuoteIdent(alias)); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("store.Snapshot: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store.Snapshot: %w", err)
	}
	if err := detach(); err != nil {
		return fmt.Errorf("store.Snapshot: %w", err)
	}
	// DETACH leaves the copy to close once nothing refers to it: then it
	// checkpoints (on shutdown) and removes its WAL. Wait for that.
	t0 := time.Now()
	for {
		st, err := os.Stat(path + ".wal")
		if err != nil || st.Size() == 0 {
			break
		}
		if time.Since(t0) > 30*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The copy is one file: a WAL left beside it would hold rows the file
	// does not.
	if st, err := os.Stat(path + ".wal"); err == nil && st.Size() > 0 {
		return fmt.Errorf("store.Snapshot: the copy kept a WAL of %d bytes", st.Size())
	}
	return nil
}
