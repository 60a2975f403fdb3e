package api_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/internal/backup"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// untar extracts a .tgz into dir.
func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Clean(h.Name))
		if !strings.HasPrefix(dst, dir+string(filepath.Separator)) {
			t.Fatalf("tar entry %q leaves the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestOneTableDataDirectoryMigrates opens a data directory written before
// named tables (schema 7: `cleanroom demo --brand 1500 --publisher 1500
// --overlap 1100` at 6adb473, whose cohort is the product of both
// parties' rows), and checks the upgrade: the log still verifies, each
// party has one table named audience, the cohort is the person map and a
// linked table a side with no product left, the demo's own question is
// served from its cache at the same cohort version, and new questions
// answer on the linked tables.
func TestOneTableDataDirectoryMigrates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	untar(t, filepath.Join("testdata", "datadir-schema7.tgz"), dir)
	data := filepath.Join(dir, "data")
	db, err := store.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, err := api.New(ctx, api.Config{DataDir: data, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	opKey, err := os.ReadFile(filepath.Join(data, api.OperatorKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	op := client.New(ts.URL, strings.TrimSpace(string(opKey)))

	// The log written by the older version verifies, entry by entry.
	entries, err := verifiedExport(ctx, op)
	if err != nil {
		t.Fatalf("the migrated log does not verify: %v", err)
	}
	var demoSQL string
	var demoEps float64
	var version string
	for _, e := range entries {
		if e.Action == string(audit.QueryRun) && demoSQL == "" {
			var d struct {
				SQL           string  `json:"sql"`
				Epsilon       float64 `json:"epsilon"`
				CohortVersion string  `json:"cohort_version"`
			}
			if err := json.Unmarshal(e.Details, &d); err != nil {
				t.Fatal(err)
			}
			demoSQL, demoEps, version = d.SQL, d.Epsilon, d.CohortVersion
		}
	}
	if demoSQL == "" {
		t.Fatal("the fixture has no query.run entry")
	}

	cs, err := op.Collaborations(ctx)
	if err != nil || len(cs) != 1 {
		t.Fatalf("collaborations %v, %v; want the demo's one", cs, err)
	}
	c := cs[0]
	// Each party has its one table, named audience.
	req, _ := http.NewRequest("GET", ts.URL+"/v1/collaborations/"+c.ID+"/audiences", nil)
	req.Header.Set("Authorization", "Bearer "+op.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list wire.AudienceList
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Members() {
		if ts := list.Tables[p]; len(ts) != 1 || ts[0].Table != wire.DefaultTable || list.Audiences[p].ID != ts[0].ID || ts[0].Rows == 0 {
			t.Errorf("partner %s's tables after the upgrade: %+v", p, ts)
		}
	}
	// No product is left: the person map and a linked table a side.
	var products, links int64
	if err := db.SQL().QueryRow(`SELECT count(*) FILTER (WHERE starts_with(table_name, 'cohort_m_')), count(*) FILTER (WHERE starts_with(table_name, 'clink_')) FROM duckdb_tables()`).Scan(&products, &links); err != nil {
		t.Fatal(err)
	}
	if products != 0 || links != 2 {
		t.Errorf("after the upgrade: %d product cohort tables, %d linked tables; want 0 and 2", products, links)
	}

	// Brand Co's analyst (a new key: the demo's secrets were not kept)
	// gets the demo's answer from the cache, at the same cohort version.
	var brandID string
	for _, p := range c.Members() {
		if p == c.Proposer {
			brandID = p
		}
	}
	var secret string
	err = db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		_, secret, err = (&partners.Service{}).CreateKey(ctx, tx, partners.Principal{PartnerID: brandID, Role: wire.Admin, KeyID: "k_upgrade_test"},
			brandID, wire.Analyst, "after upgrade")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	an := client.New(ts.URL, secret)
	var ans wire.Answer
	if err := an.Query(ctx, c.ID, demoSQL, demoEps, "json", &ans); err != nil {
		t.Fatal(err)
	}
	if !ans.Cached || ans.CohortVersion != version {
		t.Errorf("the demo's question after the upgrade: cached %v at version %s; want its cached answer at %s", ans.Cached, ans.CohortVersion, version)
	}
	// A new question runs on the linked tables.
	if err := an.Query(ctx, c.ID, `SELECT publisher_exposed, COUNT(*) AS people, SUM(brand_co_spend) AS spend FROM cohort GROUP BY publisher_exposed`, 0.5, "json", &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Cached || len(ans.Rows) == 0 || ans.CohortVersion != version {
		t.Errorf("a new question after the upgrade: %+v", ans)
	}
}

// TestMigratesTheOldestDataDirectory opens a data directory of the oldest
// schema the migrations start from (schema 1, the first server's:
// written by its end-to-end test at 1483a11, uploads of both parties and
// a match whose cohort is the product of their rows; no signing key, no
// ledger, version 1 log entries), and checks the upgrade: every migration
// runs, the log verifies under the key the upgraded server makes, the
// cohort becomes the person map and linked tables, a question answers,
// and a backup of it restores.
func TestMigratesTheOldestDataDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	untar(t, filepath.Join("testdata", "datadir-schema1.tgz"), dir)
	data := filepath.Join(dir, "data")
	db, err := store.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	if err := db.SQL().QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil || version != store.SchemaVersion() {
		t.Fatalf("schema version %d after the upgrade (%v), want %d", version, err, store.SchemaVersion())
	}
	srv, err := api.New(ctx, api.Config{DataDir: data, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	// The fixture's secrets were not kept, and no route mints the
	// operator a key: the test stores one, as Authenticate reads it.
	opSum := sha256.Sum256([]byte("upgrade-test-secret"))
	if _, err := db.SQL().Exec(`INSERT INTO api_keys (id, partner_id, role, label, secret_sha256, created_at) VALUES ('k_upgrade_op', ?, 'admin', 'upgrade test', ?, now())`,
		partners.OperatorID, opSum[:]); err != nil {
		t.Fatal(err)
	}
	opSecret := "crk_k_upgrade_op.upgrade-test-secret"
	op := client.New(ts.URL, opSecret)

	entries, err := verifiedExport(ctx, op)
	if err != nil {
		t.Fatalf("the oldest log does not verify after the upgrade: %v", err)
	}
	if len(entries) < 10 {
		t.Errorf("the fixture's log has %d entries", len(entries))
	}

	cs, err := op.Collaborations(ctx)
	if err != nil || len(cs) != 1 {
		t.Fatalf("collaborations %v, %v; want the one", cs, err)
	}
	c := cs[0]
	var products, links int64
	if err := db.SQL().QueryRow(`SELECT count(*) FILTER (WHERE starts_with(table_name, 'cohort_m_')), count(*) FILTER (WHERE starts_with(table_name, 'clink_')) FROM duckdb_tables()`).Scan(&products, &links); err != nil {
		t.Fatal(err)
	}
	if products != 0 || links != 2 {
		t.Errorf("after the upgrade: %d product cohort tables, %d linked tables; want 0 and 2", products, links)
	}
	var secret string
	err = db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		_, secret, err = (&partners.Service{}).CreateKey(ctx, tx, partners.Principal{PartnerID: c.Proposer, Role: wire.Admin, KeyID: "k_upgrade_test"},
			c.Proposer, wire.Analyst, "after upgrade")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var ans wire.Answer
	if err := client.New(ts.URL, secret).Query(ctx, c.ID, `SELECT COUNT(*) FROM cohort`, 0.5, "json", &ans); err != nil {
		t.Fatalf("a question after the upgrade: %v", err)
	}
	if len(ans.Rows) != 1 {
		t.Errorf("a question after the upgrade: %+v", ans)
	}
	// A backup of the upgraded directory restores.
	bk := filepath.Join(dir, "backup")
	if err := takeBackupTo(t, op, bk, true); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, bk, filepath.Join(dir, "restored"), nil); err != nil {
		t.Fatalf("restoring the upgraded directory's backup: %v", err)
	}
}

// verifiedExport is the operator's audit export, verified against the
// server's own public key: what an upgrade must leave intact.
func verifiedExport(ctx context.Context, op *client.Client) ([]audit.Entry, error) {
	var export bytes.Buffer
	if err := op.AuditExport(ctx, &export); err != nil {
		return nil, err
	}
	entries, head, err := audit.ReadExport(&export)
	if err != nil {
		return nil, err
	}
	pubText, err := op.AuditPublicKey(ctx)
	if err != nil {
		return nil, err
	}
	pub, err := audit.ParsePublicKey(pubText)
	if err != nil {
		return nil, err
	}
	return entries, audit.Verify(entries, head, pub)
}
