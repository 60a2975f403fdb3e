package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/internal/backup"
	"github.com/cleanroom/cleanroom/wire"
)

// takeBackupTo streams a backup from the server into dir.
func takeBackupTo(t *testing.T, op *client.Client, dir string, withKeys bool) error {
	t.Helper()
	var buf bytes.Buffer
	if err := op.Backup(context.Background(), withKeys, &buf); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if strings.ContainsAny(h.Name, "/\\") || h.Name == ".." {
			return fmt.Errorf("tar entry %q", h.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, h.Name), b, 0o600); err != nil {
			return err
		}
	}
}

// ledgerMatchesLog checks, in a restored database, that the ledger is the
// sum of the charges the audit log records: each query.run its epsilon,
// each match.complete its epsilon from both partners. Nothing half
// written: no debit without its entry, no entry without its debit.
func ledgerMatchesLog(t *testing.T, db *sql.DB) (queries int64) {
	t.Helper()
	var ledgerUnits, ledgerRows, runUnits, runs, matchUnits, matches int64
	if err := db.QueryRow(`SELECT coalesce(sum(epsilon_units), 0)::BIGINT, count(*) FROM budget_ledger`).Scan(&ledgerUnits, &ledgerRows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT coalesce(sum(round(CAST(json_extract(details, '$.epsilon') AS DOUBLE) * 1e6)), 0)::BIGINT, count(*)
		FROM audit_log WHERE action = 'query.run'`).Scan(&runUnits, &runs); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT coalesce(sum(round(CAST(json_extract(details, '$.epsilon') AS DOUBLE) * 1e6)), 0)::BIGINT, count(*)
		FROM audit_log WHERE action = 'match.complete'`).Scan(&matchUnits, &matches); err != nil {
		t.Fatal(err)
	}
	if ledgerUnits != runUnits+2*matchUnits || ledgerRows != runs+2*matches {
		t.Errorf("the ledger holds %d charges, %d units; the log %d answers (%d units) and %d matches (%d units, from both partners)",
			ledgerRows, ledgerUnits, runs, runUnits, matches, matchUnits)
	}
	return runs
}

// TestBackupDuringLoadRestoresAStateClientsSaw takes backups while both
// analysts ask questions and the publisher replaces its table and the
// parties match again; each restores (its checks pass), holds every
// answer released before the backup was asked for and none after it
// ended, and its ledger is the log's charges.
func TestBackupDuringLoadRestoresAStateClientsSaw(t *testing.T) {
	e := newEnv(t, `{"purpose": "measurement", "min_upload_users": 1000, "dimensions": ["brand_co_label"], "metrics": {"brand_co_value": [0, 100]}, "epsilon_budget": 10000, "max_query_epsilon": 1}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.uploadBoth()
	e.matchBoth()
	// Uploads and matches churn in a second collaboration: a query racing
	// a replacement of its own collaboration's table can meet the dropped
	// cohort (a 500 of its own, outside backups).
	co, err := e.brand.admin.Propose(ctx, "churn", e.pub.id, json.RawMessage(testRules))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.admin.Approve(ctx, co.ID, co.RulesVersion); err != nil {
		t.Fatal(err)
	}
	brandRows, pubRows, _ := audiences()
	brandUpload, pubUpload := encode(t, e.brand.key, brandRows), encode(t, e.pub.key, pubRows)
	if _, err := e.brand.eng.Upload(ctx, co.ID, bytes.NewReader(brandUpload)); err != nil {
		t.Fatal(err)
	}

	var answered atomic.Int64 // fresh answers received
	var loadErr atomic.Value
	var wg sync.WaitGroup
	for i, a := range []*client.Client{e.brand.analyst, e.pub.analyst} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				eps := float64(10+(n*7+i*3)%990) / 1000 // mostly new questions: fresh charges
				var ans wire.Answer
				err := a.Query(ctx, e.collab, "SELECT COUNT(*) FROM cohort", eps, "json", &ans)
				switch {
				case err == nil && !ans.Cached:
					answered.Add(1)
				case err == nil, ctx.Err() != nil:
				case client.CodeOf(err) == wire.CodeNoCohort, client.CodeOf(err) == wire.CodeStaleMatch:
				default:
					loadErr.Store(err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := e.pub.eng.UploadTable(ctx, co.ID, bytes.NewReader(pubUpload), client.UploadOptions{Replace: true}); err != nil {
				if ctx.Err() == nil {
					loadErr.Store(err)
				}
				return
			}
			var mwg sync.WaitGroup
			for _, p := range []party{e.brand, e.pub} {
				mwg.Add(1)
				go func() {
					defer mwg.Done()
					if _, err := p.eng.DoMatch(ctx, co.ID, p.key, client.MatchOptions{Poll: 20e6}); err != nil && ctx.Err() == nil && client.CodeOf(err) != wire.CodeStaleMatch {
						loadErr.Store(err)
					}
				}()
			}
			mwg.Wait()
		}
	}()

	for i := 0; i < 3; i++ {
		time.Sleep(700 * time.Millisecond)
		dir := filepath.Join(t.TempDir(), "backup")
		before := answered.Load()
		if err := takeBackupTo(t, e.op, dir, i == 0); err != nil {
			t.Fatalf("backup %d under load: %v", i, err)
		}
		after := answered.Load()
		data := filepath.Join(t.TempDir(), "restored")
		r, err := backup.Restore(context.Background(), dir, data, nil)
		if err != nil {
			t.Fatalf("restoring backup %d taken under load: %v", i, err)
		}
		db, closeDB, err := backup.OpenReadOnly(filepath.Join(data, backup.DatabaseFile))
		if err != nil {
			t.Fatal(err)
		}
		runs := ledgerMatchesLog(t, db)
		closeDB()
		// Fresh answers before the first test query are none; every one
		// received before the backup was asked for is in it.
		if runs < before || runs > after+2 {
			t.Errorf("backup %d holds %d answers; clients had %d before it and %d after", i, runs, before, after)
		}
		t.Logf("backup %d: audit head %d, %d answers (clients had %d before, %d after), %d tables", i, r.Manifest.AuditHead.Seq, runs, before, after, r.Tables)
	}
	cancel()
	wg.Wait()
	if err, _ := loadErr.Load().(error); err != nil {
		t.Errorf("the load failed beside the backups: %v", err)
	}
	if answered.Load() == 0 {
		t.Error("no answers under load: the test tested nothing")
	}
}

// TestBackupRestoresAndServes: a restored data directory serves the same
// partners and answers, keeps the server's identity with the key, and
// the log says a backup was taken (the operator's entry, which partners
// read redacted).
func TestBackupRestoresAndServes(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	e.uploadBoth()
	e.matchBoth()
	var want wire.Answer
	if err := e.brand.analyst.Query(ctx, e.collab, "SELECT COUNT(*) FROM cohort", 0.1, "json", &want); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	if err := takeBackupTo(t, e.op, dir, true); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{backup.DatabaseFile, backup.KeyFile, backup.ManifestFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o", f, st.Mode().Perm())
		}
	}
	// backup.taken: the operator's entry; a partner's auditor reads it redacted.
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'backup.taken' AND collab_id = ''`); n != 1 {
		t.Errorf("%d backup.taken entries, want 1", n)
	}
	var export bytes.Buffer
	if err := e.brand.audit.AuditExport(ctx, &export); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(export.String(), "backup.taken") {
		t.Error("a partner's auditor reads the operator's backup.taken entry")
	}

	data := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, dir, data, nil); err != nil {
		t.Fatal(err)
	}
	// A non-empty directory is refused, and left as it was.
	if _, err := backup.Restore(ctx, dir, data, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a restore into a non-empty directory: %v", err)
	}
	srv, err := api.New(ctx, api.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	analyst := client.New(ts.URL, e.brand.analyst.Key)
	var got wire.Answer
	if err := analyst.Query(ctx, e.collab, "SELECT COUNT(*) FROM cohort", 0.1, "json", &got); err != nil {
		t.Fatal(err)
	}
	if !got.Cached || fmt.Sprint(got.Rows) != fmt.Sprint(want.Rows) {
		t.Errorf("the restored server answers %v (cached %v), want the cached %v", got.Rows, got.Cached, want.Rows)
	}
	pub, err := client.New(ts.URL, "").AuditPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := e.op.AuditPublicKey(ctx)
	if pub != old {
		t.Error("restored with its key, the server has another audit key")
	}
}

// TestRestoreRefusesATamperedBackup: an audit entry changed, a ledger row
// changed, a table dropped, the manifest edited: each is named, and the
// new directory is left empty.
func TestRestoreRefusesATamperedBackup(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	e.uploadBoth()
	mid, _ := e.matchBoth()
	if err := e.brand.analyst.Query(ctx, e.collab, "SELECT COUNT(*) FROM cohort", 0.1, "json", &wire.Answer{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	if err := takeBackupTo(t, e.op, dir, false); err != nil {
		t.Fatal(err)
	}
	pristine, err := os.ReadFile(filepath.Join(dir, backup.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, backup.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, sql, manifest string
		want                []string
	}{
		{"an audit entry changed", `UPDATE audit_log SET details = '{"sql": "SELECT 1"}' WHERE action = 'query.run'`, "",
			[]string{"audit log does not verify", "sha256"}},
		{"a ledger row changed", `UPDATE budget_ledger SET epsilon_units = epsilon_units - 1 WHERE kind = 'query'`, "",
			[]string{"ledger: collaboration " + e.collab, "sha256"}},
		{"a cohort table dropped", `DROP TABLE cpeople_` + mid, "",
			[]string{"table cpeople_" + mid + " is missing", "a live audience or cohort refers to"}},
		{"the manifest edited", "", `"charges": 1,`, []string{"signature does not verify"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, backup.DatabaseFile), pristine, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, backup.ManifestFile), manifest, 0o600); err != nil {
				t.Fatal(err)
			}
			if c.sql != "" {
				db, err := sql.Open("duckdb", filepath.Join(dir, backup.DatabaseFile))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(c.sql); err != nil {
					t.Fatal(err)
				}
				db.Exec(`CHECKPOINT`)
				db.Close()
				os.Remove(filepath.Join(dir, backup.DatabaseFile) + ".wal")
			}
			if c.manifest != "" {
				m := strings.Replace(string(manifest), `"charges": 2,`, c.manifest, 1)
				if m == string(manifest) {
					t.Fatal("the manifest has no charges to edit")
				}
				os.WriteFile(filepath.Join(dir, backup.ManifestFile), []byte(m), 0o600)
			}
			data := filepath.Join(t.TempDir(), "restored")
			_, err := backup.Restore(ctx, dir, data, nil)
			var ce *backup.CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("restore of a backup with %s: %v, want the failed checks", c.name, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal does not name %q:\n%v", w, err)
				}
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s behind", data)
			}
		})
	}
}
