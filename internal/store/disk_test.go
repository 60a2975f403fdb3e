package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFullCheckpointRecovers: on a full disk a checkpoint invalidates
// DuckDB's instance (1.1), and closing that instance would lose the
// commits in its WAL. The store reopens instead, once space returns:
// every committed row is there, and the database takes writes again.
// Run on a small tmpfs; skipped where mounting one is not allowed.
func TestDiskFullCheckpointRecovers(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("a full disk is tested on a small tmpfs, and mounting one is not allowed here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	ctx := context.Background()
	db, err := OpenWith(ctx, mnt, Options{MemoryLimit: "256MB"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL().Exec(`CREATE TABLE t (i BIGINT, s VARCHAR)`); err != nil {
		t.Fatal(err)
	}
	// Commits go to the WAL (about 1 MB); then the disk fills, and the
	// checkpoint cannot write.
	var committed int64
	for i := 0; i < 10; i++ {
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO t SELECT range, repeat('x', 40) || range FROM range(2000)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		committed += 2000
	}
	filler := filepath.Join(mnt, "filler")
	fillUp(t, filler)
	// A commit that cannot write the WAL fails alone.
	err = db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO t SELECT range, repeat('y', 100) FROM range(20000)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "No space left on device") || Invalidated(err) {
		t.Fatalf("a commit on a full disk: %v, want no space left, not fatal", err)
	}
	_, err = db.SQL().Exec(`CHECKPOINT`) // not Checkpoint, which would wait for room
	if !Invalidated(err) {
		t.Fatalf("a checkpoint on a full disk: %v; want DuckDB's fatal error (has DuckDB changed? then this store's recovery may be moot)", err)
	}
	if db.Healthy(ctx) == nil {
		t.Fatal("the invalidated database is healthy with the disk still full")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := db.Healthy(ctx); err != nil {
		t.Fatalf("once space returned the database did not recover: %v", err)
	}
	var n int64
	if err := db.SQL().QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != committed {
		t.Fatalf("after the reopen %d rows (%v), want the %d committed", n, err, committed)
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO t VALUES (1, 'after')`)
		return err
	}); err != nil {
		t.Fatalf("a write after the recovery: %v", err)
	}
	// Closed on a full disk, it leaves the WAL for the next start rather
	// than checkpoint (and lose it).
	fillUp(t, filler)
	if err := db.Close(); err != nil {
		t.Fatalf("closing on a full disk: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(ctx, mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.SQL().QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != committed+1 {
		t.Fatalf("after a restart %d rows (%v), want %d", n, err, committed+1)
	}
}

// fillUp writes path until the file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for buf := make([]byte, 4096); ; {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
