package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// mountTmpfs mounts a file system of size bytes for a test of a full
// disk, and skips the test where mounting is not allowed (not root, or
// no mount in the sandbox).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", mnt).CombinedOutput()
	if err != nil {
		t.Skipf("a full disk is tested on a small tmpfs, and mounting one is not allowed here (%v: %s); run as root to test it", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last pages, in smaller writes.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// diskState is what a failed write must leave as it was: the audit log,
// the ledger, the tables and their records, the keys.
func (e *env) diskState() string {
	e.t.Helper()
	var s strings.Builder
	for _, q := range []string{
		`SELECT count(*) FROM audit_log`,
		`SELECT coalesce(sum(epsilon_units), 0) FROM budget_ledger`,
		`SELECT count(*) FROM budget_ledger`,
		`SELECT count(*) FROM audiences WHERE deleted_at IS NULL`,
		`SELECT count(*) FROM matches`,
		`SELECT count(*) FROM receipts`,
		`SELECT count(*) FROM api_keys`,
		`SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()`,
	} {
		fmt.Fprintf(&s, "%d ", e.count(q))
	}
	return s.String()
}

// writes are the five kinds of work a full disk must refuse cleanly: an
// upload, a match, a query, a deletion, and an audit entry alone (a key).
func (e *env) writes() []struct {
	name string
	do   func(context.Context) error
} {
	brand, _, _ := audiences()
	upload := encode(e.t, e.brand.key, brand)
	parquet := toParquet(e.t, upload)
	raw, _ := base64.StdEncoding.DecodeString(blinded(e.t, e.brand.key, 3))
	p, err := psi.DecodePoint(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return []struct {
		name string
		do   func(context.Context) error
	}{
		{"query", func(ctx context.Context) error {
			return e.brand.analyst.Query(ctx, e.collab, "SELECT COUNT(*) FROM cohort", 0.1, "json", &wire.Answer{})
		}},
		{"deletion", func(ctx context.Context) error {
			_, err := e.brand.eng.DeleteIDs(ctx, e.collab, e.brand.key, []psi.Point{p}, false)
			return err
		}},
		{"audit entry", func(ctx context.Context) error {
			_, err := e.brand.admin.CreateKey(ctx, e.brand.id, "analyst", "disk")
			return err
		}},
		{"upload", func(ctx context.Context) error {
			_, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(upload), client.UploadOptions{Replace: true})
			return err
		}},
		{"parquet upload", func(ctx context.Context) error {
			_, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(parquet), client.UploadOptions{Parquet: true, Replace: true})
			return err
		}},
		{"match", func(ctx context.Context) error {
			_, err := e.brand.eng.StartMatch(ctx, e.collab)
			return err
		}},
	}
}

// reads checks the server still answers reads.
func (e *env) reads(ctx context.Context) {
	e.t.Helper()
	if _, err := e.brand.admin.Collaboration(ctx, e.collab); err != nil {
		e.t.Errorf("a read on a full disk: %v", err)
	}
	if _, err := e.brand.analyst.QueryHistory(ctx, e.collab, 10); err != nil {
		e.t.Errorf("the query history on a full disk: %v", err)
	}
	var buf bytes.Buffer
	if err := e.op.AuditExport(ctx, &buf); err != nil {
		e.t.Errorf("the audit export on a full disk: %v", err)
	}
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Errorf("/readyz on a full disk: %d", resp.StatusCode)
	}
	// The operator sees the disk in /metrics.
	req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.op.Key)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"cleanroom_disk_free_bytes ", "cleanroom_disk_reserve_bytes ", "cleanroom_database_bytes "} {
		if !bytes.Contains(body, []byte("\n"+m)) {
			e.t.Errorf("/metrics has no %s", m)
		}
	}
}

// TestDiskFullRefusesWritesCleanly fills a small file system holding the
// data directory and the upload spool: an upload, a match, a query, a
// deletion and an audit entry each answer 507 insufficient_storage and
// change nothing, reads go on, and each succeeds once space returns.
// First under the server's reserve (the disk fills to it: refused before
// any write), then with no reserve, where an upload meets the full disk
// itself in DuckDB, and a Parquet upload in the spool. (Without a reserve, a write small enough to fit in
// pages DuckDB's files already hold may succeed: a match's start, a key.
// That, and DuckDB's fatal checkpoints on a full disk, are why the
// reserve exists.)
func TestDiskFullRefusesWritesCleanly(t *testing.T) {
	mnt := mountTmpfs(t, 48<<20)
	ctx := context.Background()
	reserve := int64(4 << 20)
	e := &env{t: t, dir: mnt, maxBody: 64 << 20, tune: func(c *api.Config) { c.TempDir = mnt; c.MinFreeBytes = reserve }}
	e.start()
	t.Cleanup(func() { e.srv.Close(); e.db.Close() })
	e.setUp(testRules, "Brand Co", "Publisher")
	e.uploadBoth()
	e.matchBoth()

	check := func(phase string, onlyUpload bool) {
		t.Helper()
		// Leave the reserve's worth less a little: under it.
		filler := fill(t, mnt)
		if reserve > 0 {
			if err := os.Truncate(filler, mustSize(t, filler)-reserve/2); err != nil {
				t.Fatal(err)
			}
		}
		before := e.diskState()
		for _, w := range e.writes() {
			if onlyUpload && !strings.HasSuffix(w.name, "upload") {
				continue
			}
			err := w.do(ctx)
			if client.CodeOf(err) != wire.CodeInsufficientStorage {
				t.Errorf("%s: %s on a full disk: %v, want 507 insufficient_storage", phase, w.name, err)
				continue
			}
			var ce *client.Error
			if errors.As(err, &ce) && (ce.Status != http.StatusInsufficientStorage || strings.Contains(ce.Message, mnt)) {
				t.Errorf("%s: %s: status %d, message %q (a 507 that names no file)", phase, w.name, ce.Status, ce.Message)
			}
		}
		if after := e.diskState(); after != before {
			t.Errorf("%s: the failed writes changed the state: %s, was %s", phase, after, before)
		}
		e.reads(ctx)
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		for _, w := range e.writes() {
			if onlyUpload && !strings.HasSuffix(w.name, "upload") {
				continue
			}
			if err := w.do(ctx); err != nil {
				t.Errorf("%s: %s once space returned: %v", phase, w.name, err)
			}
		}
	}
	check("under the reserve", false)

	// No reserve: the writes meet the full disk itself.
	e.stop()
	reserve = -1
	e.start()
	check("no reserve", true)
	// The database survived it: the log verifies and a query answers.
	e.reads(ctx)
	if err := e.brand.analyst.Query(ctx, e.collab, "SELECT COUNT(*) FROM cohort", 0.1, "json", &wire.Answer{}); err != nil && client.CodeOf(err) != wire.CodeNoCohort {
		t.Errorf("a query after the full disk: %v", err)
	}
}

func mustSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
