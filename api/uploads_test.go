package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// Regression tests of issue 25, findings 10 (disk) and 11 (wrong key,
// silent damage).

// restartWith restarts e's server with cfg's upload settings.
func (e *env) restartWith(cfg api.Config) {
	e.t.Helper()
	e.stop()
	e.tune = func(c *api.Config) {
		c.TempDir, c.UploadsPerPartner, c.SpoolBytesPerPartner = cfg.TempDir, cfg.UploadsPerPartner, cfg.SpoolBytesPerPartner
	}
	e.start()
}

// rawUpload posts body as p's engineer with a content type and a query.
func (e *env) rawUpload(p party, body io.Reader, contentType, query string) (int, wire.Error) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/collaborations/"+e.collab+"/audiences"+query, body)
	req.Header.Set("Authorization", "Bearer "+p.eng.Key)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb wire.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Error
}

// spooled lists the files in a spool directory.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// zeros is n zero bytes after a prefix; each Read notes whether the
// spool directory holds a file at that moment.
type zeros struct {
	t      *testing.T
	dir    string
	left   int
	prefix string
	sawAny atomic.Bool
}

func (z *zeros) Read(p []byte) (int, error) {
	if len(spooled(z.t, z.dir)) > 0 {
		z.sawAny.Store(true)
	}
	if z.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, z.prefix)
	z.prefix = z.prefix[n:]
	for n < len(p) && z.left-n > 0 {
		p[n] = 0
		n++
	}
	if n > z.left {
		n = z.left
	}
	z.left -= n
	return n, nil
}

// TestParquetWithoutMagicIsRefusedBeforeSpooling: a "Parquet" body of
// zeros is refused from its first bytes; nothing reaches the disk.
func TestParquetWithoutMagicIsRefusedBeforeSpooling(t *testing.T) {
	e := newEnv(t, testRules)
	spool := t.TempDir()
	e.restartWith(api.Config{TempDir: spool})
	body := &zeros{t: t, dir: spool, left: 16 << 20}
	st, er := e.rawUpload(e.brand, body, "application/vnd.apache.parquet", "")
	if st != 400 || er.Code != wire.CodeInvalid || !strings.Contains(er.Message, "does not start with PAR1") {
		t.Fatalf("zeros as Parquet: %d %+v, want 400 naming the missing PAR1", st, er)
	}
	if body.sawAny.Load() {
		t.Errorf("the body was spooled to disk before it was refused")
	}
	if left := spooled(t, spool); len(left) > 0 {
		t.Errorf("spool holds %v", left)
	}
}

// holdParquet starts a Parquet upload of p that sends the magic and n
// bytes, then waits; it returns once the server spooled them, and a
// function that ends the upload (and waits for its answer).
func (e *env) holdParquet(p party, spool string, n int) (end func()) {
	e.t.Helper()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Its end is the client's doing: the answer does not matter.
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/collaborations/"+e.collab+"/audiences", pr)
		req.Header.Set("Authorization", "Bearer "+p.eng.Key)
		req.Header.Set("Content-Type", "application/vnd.apache.parquet")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	go pw.Write(append([]byte("PAR1"), make([]byte, n)...))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var size int64
		for _, f := range spooled(e.t, spool) {
			if st, err := os.Stat(filepath.Join(spool, f)); err == nil {
				size += st.Size()
			}
		}
		if size >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the held upload spooled %d bytes of %d", size, n)
		}
	}
	return func() {
		pw.CloseWithError(errors.New("held upload ends"))
		<-done
	}
}

// TestSpoolIsCountedPerPartner: a partner's Parquet bodies on disk count
// against its own limit, alone (413) and together (429); the other
// partner's do not.
func TestSpoolIsCountedPerPartner(t *testing.T) {
	e := newEnv(t, testRules)
	spool := t.TempDir()
	e.restartWith(api.Config{TempDir: spool, SpoolBytesPerPartner: 1 << 20})
	parquetish := func(n int) io.Reader { return &zeros{t: t, dir: spool, left: n, prefix: "PAR1"} }

	st, er := e.rawUpload(e.brand, parquetish(2<<20), "application/vnd.apache.parquet", "")
	if st != 413 || er.Code != wire.CodeTooLarge || !strings.Contains(er.Message, "spool-per-partner") {
		t.Fatalf("a body over the spool limit: %d %+v, want 413 naming --spool-per-partner", st, er)
	}
	if left := spooled(t, spool); len(left) > 0 {
		t.Fatalf("spool holds %v after the refusal", left)
	}

	end := e.holdParquet(e.brand, spool, 600<<10)
	st, er = e.rawUpload(e.brand, parquetish(600<<10), "application/vnd.apache.parquet", "")
	if st != 429 || er.Code != wire.CodeTooManyUploads || !strings.Contains(er.Message, "other Parquet uploads in progress") {
		t.Errorf("a second body over the partner's spool: %d %+v, want 429 too_many_uploads", st, er)
	}
	// The publisher's spool is its own: its body is read (and found not
	// to be Parquet), not refused for the brand's.
	if st, er = e.rawUpload(e.pub, parquetish(600<<10), "application/vnd.apache.parquet", ""); st != 400 || er.Code != wire.CodeInvalid {
		t.Errorf("the other partner's body: %d %+v, want 400 for its content", st, er)
	}
	end()
	if st, er = e.rawUpload(e.brand, parquetish(600<<10), "application/vnd.apache.parquet", ""); st != 400 || er.Code != wire.CodeInvalid {
		t.Errorf("after the held upload ended: %d %+v, want its spool given back", st, er)
	}
	if left := spooled(t, spool); len(left) > 0 {
		t.Errorf("spool holds %v", left)
	}
}

// TestUploadsPerPartnerAreBounded: a partner over its uploads in
// progress is told to wait (429); the other partner uploads.
func TestUploadsPerPartnerAreBounded(t *testing.T) {
	e := newEnv(t, testRules)
	spool := t.TempDir()
	e.restartWith(api.Config{TempDir: spool, UploadsPerPartner: 1})
	brand, pub, _ := audiences()
	ctx := context.Background()
	end := e.holdParquet(e.brand, spool, 64<<10)
	_, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand)))
	if !errors.Is(err, client.ErrTooManyUploads) || status(err) != 429 || !strings.Contains(err.Error(), "uploads-per-partner") {
		t.Errorf("a second upload in progress: %v, want 429 too_many_uploads", err)
	}
	if _, err := e.pub.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.pub.key, pub))); err != nil {
		t.Errorf("the other partner's upload: %v", err)
	}
	end()
	if _, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand))); err != nil {
		t.Errorf("after the first upload ended: %v", err)
	}
}

// TestDataFilesAreTheServersOnly: in a data directory the operator made
// 0755, the database and the key files are 0600, and an older version's
// 0644 database becomes so.
func TestDataFilesAreTheServersOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	check := func() {
		t.Helper()
		for _, name := range []string{store.FileName, store.FileName + ".wal", "audit-signing.key", api.OperatorKeyFile} {
			st, err := os.Stat(filepath.Join(dir, name))
			if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(name, ".wal") {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", name, st.Mode().Perm())
			}
		}
	}
	s, err := api.New(context.Background(), api.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	check()
	s.Close()
	os.Chmod(filepath.Join(dir, store.FileName), 0o644)
	if s, err = api.New(context.Background(), api.Config{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check()
}

// auditCount is the number of entries in the log; ledgerCount the
// budget ledger's rows.
func (e *env) auditCount() int64  { return e.count(`SELECT count(*) FROM audit_log`) }
func (e *env) ledgerCount() int64 { return e.count(`SELECT count(*) FROM budget_ledger`) }

// TestMatchWithAnotherKeyIsRefusedBeforeAnyCharge: a party's match half
// run with the other party's key is refused, at start and at its points,
// naming both fingerprints, before anything is charged; the party's
// fingerprint is its own to read.
func TestMatchWithAnotherKeyIsRefusedBeforeAnyCharge(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	brand, pub, _ := audiences()
	for _, x := range []struct {
		p    party
		rows []row
	}{{e.brand, brand}, {e.pub, pub}} {
		a, err := x.p.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, x.p.key, x.rows)), client.UploadOptions{Key: x.p.key})
		if err != nil {
			t.Fatal(err)
		}
		if a.KeyFingerprint != x.p.key.Fingerprint() {
			t.Fatalf("upload answered fingerprint %q, want the key's", a.KeyFingerprint)
		}
	}
	brandFP, pubFP := psi.ShortFingerprint(e.brand.key.Fingerprint()), psi.ShortFingerprint(e.pub.key.Fingerprint())
	wantRefusal := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, client.ErrKeyMismatch) || status(err) != 409 ||
			!strings.Contains(err.Error(), "fingerprint "+pubFP) || !strings.Contains(err.Error(), "fingerprint "+brandFP) {
			t.Fatalf("%s: %v, want 409 key_mismatch naming %s and %s", what, err, pubFP, brandFP)
		}
	}
	ledger, log := e.ledgerCount(), e.auditCount()

	// At start: nothing is built or recorded.
	_, err := e.brand.eng.DoMatch(ctx, e.collab, e.pub.key, client.MatchOptions{NoWait: true})
	wantRefusal("a match run with the other party's key", err)
	if n := e.count(`SELECT count(*) FROM matches`); n != 0 {
		t.Errorf("%d matches recorded", n)
	}
	// The publisher's correct half, then the brand's completing half with
	// the publisher's key: refused before the cohort or its charge.
	if _, err := e.pub.eng.DoMatch(ctx, e.collab, e.pub.key, client.MatchOptions{NoWait: true}); err != nil {
		t.Fatal(err)
	}
	m, err := e.brand.eng.StartMatch(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	wantRefusal("a completing half re-blinded with the other party's key", e.brand.eng.ReblindPoints(ctx, e.collab, m.ID, e.pub.key, client.MatchOptions{}))
	if got := e.ledgerCount(); got != ledger {
		t.Errorf("the ledger has %d rows after the refusals, %d before", got, ledger)
	}
	if m, _ = e.brand.eng.Match(ctx, e.collab, m.ID); m.State != wire.MatchWaiting || m.NoisySize != nil {
		t.Errorf("after the refused half the match is %+v", m)
	}
	// Only the publisher's start and half were logged.
	if got := e.auditCount(); got != log+2 {
		t.Errorf("%d entries logged, want the publisher's 2", got-log)
	}
	// The right key completes it.
	if m, err = e.brand.eng.DoMatch(ctx, e.collab, e.brand.key, client.MatchOptions{Poll: 20e6}); err != nil || m.State != wire.MatchDone {
		t.Fatalf("the brand's own key: %+v %v", m, err)
	}
	if e.ledgerCount() == ledger {
		t.Errorf("the completed match charged nothing")
	}

	// Each partner reads its own fingerprint, never the other's.
	auds, err := e.brand.eng.Audiences(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if got := auds.Tables[e.brand.id][0].KeyFingerprint; got != e.brand.key.Fingerprint() {
		t.Errorf("the brand reads its fingerprint as %q", got)
	}
	if got := auds.Tables[e.pub.id][0].KeyFingerprint; got != "" {
		t.Errorf("the brand reads the publisher's fingerprint %q", got)
	}
	var export bytes.Buffer
	if err := e.brand.audit.AuditExport(ctx, &export); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(export.String(), e.pub.key.Fingerprint()) || !strings.Contains(export.String(), e.brand.key.Fingerprint()) {
		t.Errorf("the brand's audit export shows the publisher's fingerprint, or not its own")
	}
}

// TestOlderUploadsTakeTheFirstHalfsKey: tables uploaded without a
// fingerprint (an older client, an existing data directory) match as
// before; the first half records its key, and a later half with another
// is refused.
func TestOlderUploadsTakeTheFirstHalfsKey(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	e.uploadBoth()
	e.matchBoth()
	brand, pub, _ := audiences()
	if _, err := e.pub.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.pub.key, pub[:1500])), client.UploadOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	other, _ := psi.GenerateKey(nil)
	_, err := e.brand.eng.DoMatch(ctx, e.collab, other, client.MatchOptions{NoWait: true})
	if !errors.Is(err, client.ErrKeyMismatch) || !strings.Contains(err.Error(), psi.ShortFingerprint(e.brand.key.Fingerprint())) {
		t.Fatalf("a half with another key than the first half's: %v", err)
	}
	// An upload with another key than the party's recorded one replaces
	// its only table: nothing else it would fail to join.
	if _, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, other, brand)), client.UploadOptions{Key: other, Replace: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.brand.eng.DoMatch(ctx, e.collab, other, client.MatchOptions{NoWait: true}); err != nil {
		t.Errorf("the new key after uploading with it: %v", err)
	}
}

// TestUploadWithAnotherKeyThanTheOtherTables: a party's tables must be
// blinded with one key, or its people's rows never join.
func TestUploadWithAnotherKeyThanTheOtherTables(t *testing.T) {
	e := newEnv(t, tablesRules)
	fp := func(k *psi.Key) string { return "&key_fingerprint=" + k.Fingerprint() }
	e.mustUploadTable(e.brand, "customers", tablesCSV("customers", nil), fp(e.brand.key))
	wrong := e.brand
	wrong.key = e.pub.key
	st, body := e.uploadTable(wrong, "purchases", tablesCSV("purchases", nil), fp(e.pub.key))
	if st != 409 || !strings.Contains(string(body), `"key_mismatch"`) ||
		!strings.Contains(string(body), "your table customers was blinded with the key of fingerprint "+psi.ShortFingerprint(e.brand.key.Fingerprint())) {
		t.Fatalf("purchases with the publisher's key: %d %s", st, body)
	}
	e.mustUploadTable(e.brand, "purchases", tablesCSV("purchases", nil), fp(e.brand.key))
}

// TestReplaceNeedsTheFlag: an upload of a table the party has changes
// nothing without replace=true, before its body is read.
func TestReplaceNeedsTheFlag(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	brand, _, _ := audiences()
	first, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand)))
	if err != nil {
		t.Fatal(err)
	}
	_, before := e.post(e.brand.eng.Key, "/v1/collaborations/"+e.collab+"/audiences", nil, "GET")
	log := e.auditCount()
	_, err = e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand[:1800])))
	if !errors.Is(err, client.ErrReplaceRequired) || status(err) != 409 ||
		!strings.Contains(err.Error(), "your table audience already holds audience "+first.ID) || !strings.Contains(err.Error(), "replace=true") {
		t.Fatalf("a second upload without replace: %v, want 409 replace_required naming the table and the flag", err)
	}
	_, after := e.post(e.brand.eng.Key, "/v1/collaborations/"+e.collab+"/audiences", nil, "GET")
	if !bytes.Equal(before, after) || e.auditCount() != log {
		t.Errorf("the refused upload changed the tables or the log:\n%s\n%s", before, after)
	}
	a, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand[:1800])), client.UploadOptions{Replace: true})
	if err != nil || a.Replaced != first.ID {
		t.Fatalf("with replace: %+v %v", a, err)
	}
	if st, er := e.rawUpload(e.brand, bytes.NewReader(nil), "application/vnd.apache.arrow.stream", "?replace=yes"); st != 400 || !strings.Contains(er.Message, "replace: want true or false") {
		t.Errorf("replace=yes: %d %+v", st, er)
	}
}

// TestDryRunStoresNothing: a dry run answers what an upload would store,
// meets the same refusals, and leaves no table, record or log entry.
func TestDryRunStoresNothing(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	brand, _, _ := audiences()
	tables := func() int64 { return e.count(`SELECT count(*) FROM duckdb_tables()`) }
	nTables, log := tables(), e.auditCount()
	dry := client.UploadOptions{DryRun: true}
	a, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand)), dry)
	if err != nil {
		t.Fatal(err)
	}
	if !a.DryRun || a.ID != "" || a.Rows != int64(len(brand)) || a.People == 0 || a.PeopleMatchable == 0 || len(a.Columns) == 0 {
		t.Errorf("dry run answered %+v", a)
	}
	auds, _ := e.brand.eng.Audiences(ctx, e.collab)
	if len(auds.Tables) != 0 || tables() != nTables || e.auditCount() != log {
		t.Errorf("a dry run stored something: tables %v, %d DuckDB tables (was %d), %d log entries (was %d)", auds.Tables, tables(), nTables, e.auditCount(), log)
	}
	// The same refusals as an upload: too few people.
	if _, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand[:10])), dry); status(err) != 400 || !strings.Contains(err.Error(), "min_upload_users") {
		t.Errorf("a dry run of too few people: %v", err)
	}
	// And replace: refused without it, answered with it, and the stored
	// table stays.
	first, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand[:1800])), dry); !errors.Is(err, client.ErrReplaceRequired) {
		t.Errorf("a dry run over a table without replace: %v", err)
	}
	dry.Replace = true
	a, err = e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand[:1800])), dry)
	if err != nil || a.Replaced != first.ID || a.Rows != 1800 {
		t.Errorf("a dry run with replace: %+v %v", a, err)
	}
	auds, _ = e.brand.eng.Audiences(ctx, e.collab)
	if got := auds.Tables[e.brand.id]; len(got) != 1 || got[0].ID != first.ID || got[0].Rows != int64(len(brand)) {
		t.Errorf("after the dry run the tables are %+v", got)
	}
}
