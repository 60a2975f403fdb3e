package backup

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/marcboeker/go-duckdb"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// OpenReadOnly opens a database file that nothing else has open, read
// only: a snapshot being summarised, a backup being checked. Reading it
// changes nothing, not even its mode or a WAL beside it.
func OpenReadOnly(path string) (*sql.DB, func() error, error) {
	c, err := duckdb.NewConnector(path+"?access_mode=READ_ONLY&memory_limit=512MB", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", filepath.Base(path), err)
	}
	db := sql.OpenDB(c)
	return db, func() error {
		err := db.Close()
		if cerr := c.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

// FileSHA256 is the SHA-256 of a file's content, and its size.
func FileSHA256(path string) (FileSum, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileSum{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return FileSum{}, err
	}
	return FileSum{Name: filepath.Base(path), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Restored is what a restore checked.
type Restored struct {
	Manifest Manifest
	Entries  int64 // audit entries verified
	Tables   int
	Keys     bool // the signing key was restored
}

// CheckError lists every check a backup failed, each naming what.
type CheckError struct{ Failures []string }

func (e *CheckError) Error() string {
	return "the backup fails its checks, nothing was restored:\n  - " + strings.Join(e.Failures, "\n  - ")
}

// Restore builds the data directory to (which must not exist, or be
// empty) from the backup in from, and checks it: the manifest's
// signature, the database file's SHA-256, the audit chain up to the
// manifest's head (hashes and the head's signature), the ledger's totals
// and every table's rows against the manifest, and that every live
// audience's and cohort's tables are there. pub, when set, is the audit
// key the operator expects (else the backup's key file's, else the
// manifest's own). On any failure nothing is left in to.
func Restore(ctx context.Context, from, to string, pub ed25519.PublicKey) (Restored, error) {
	var r Restored
	if err := checkEmpty(to); err != nil {
		return r, err
	}
	m, err := ReadManifest(from)
	if err != nil {
		return r, err
	}
	r.Manifest = m
	var fails []string
	fail := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }

	// The key that checks the manifest and the log.
	manifestPub, err := audit.ParsePublicKey(m.AuditPublicKey)
	if err != nil {
		return r, fmt.Errorf("%s: audit_public_key: %w", ManifestFile, err)
	}
	var keyPub ed25519.PublicKey
	keyPath := filepath.Join(from, KeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		priv, err := auditlog.LoadOrCreateSigner(from)
		if err != nil {
			return r, err
		}
		keyPub = priv.Public().(ed25519.PublicKey)
		r.Keys = true
	} else if m.WithKeys {
		return r, fmt.Errorf("the manifest says the backup holds the signing key, and %s is missing", KeyFile)
	}
	check := manifestPub
	switch {
	case pub != nil:
		check = pub
	case keyPub != nil:
		check = keyPub
	}
	if keyPub != nil && !keyPub.Equal(check) {
		fail("%s is not the audit key the manifest (or --pubkey) names", KeyFile)
	}
	if err := m.Verify(check); err != nil {
		fail("%v", err)
	}

	// Build the directory; on failure, leave it as it was.
	created := false
	if _, err := os.Stat(to); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(to, 0o700); err != nil {
			return r, err
		}
		created = true
	}
	ok := false
	defer func() {
		if ok {
			return
		}
		if created {
			os.RemoveAll(to)
			return
		}
		entries, _ := os.ReadDir(to)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(to, e.Name()))
		}
	}()
	dbPath := filepath.Join(to, store.FileName)
	sum, err := copyFile(filepath.Join(from, DatabaseFile), dbPath)
	if err != nil {
		return r, fmt.Errorf("copying the database: %w", err)
	}
	if sum.SHA256 != m.Database.SHA256 || sum.Bytes != m.Database.Bytes {
		fail("database file %s: %d bytes, sha256 %s; the manifest says %d bytes, sha256 %s", DatabaseFile, sum.Bytes, sum.SHA256, m.Database.Bytes, m.Database.SHA256)
	}
	if err := checkDatabase(ctx, dbPath, m, check, fail, &r); err != nil {
		return r, err
	}
	if len(fails) > 0 {
		return r, &CheckError{Failures: fails}
	}
	if r.Keys {
		if _, err := copyFile(keyPath, filepath.Join(to, KeyFile)); err != nil {
			return r, fmt.Errorf("copying the signing key: %w", err)
		}
	}
	if err := syncDir(to); err != nil {
		return r, err
	}
	ok = true
	return r, nil
}

// checkDatabase checks the restored file against the manifest.
func checkDatabase(ctx context.Context, path string, m Manifest, pub ed25519.PublicKey, fail func(string, ...any), r *Restored) error {
	db, closeDB, err := OpenReadOnly(path)
	if err != nil {
		fail("the database does not open: %v", err)
		return nil
	}
	defer closeDB()
	s, err := Summarize(ctx, db)
	if err != nil {
		fail("the database cannot be read: %v", err)
		return nil
	}
	if s.SchemaVersion != m.SchemaVersion {
		fail("schema version %d; the manifest says %d", s.SchemaVersion, m.SchemaVersion)
	}

	// The audit chain, up to the manifest's head.
	if s.HeadSeq != m.AuditHead.Seq || s.HeadHash != m.AuditHead.Hash {
		fail("audit log: its last entry is %d (hash %s); the manifest's head is %d (hash %s)", s.HeadSeq, s.HeadHash, m.AuditHead.Seq, m.AuditHead.Hash)
	}
	var entries []audit.Entry
	err = auditlog.Export(ctx, db, nil, m.AuditHead.Seq, func(e *audit.Entry) error {
		entries = append(entries, *e)
		return nil
	})
	if err != nil {
		fail("audit log cannot be read: %v", err)
	} else if err := audit.Verify(entries, m.AuditHead, pub); err != nil {
		fail("audit log does not verify up to the manifest's head (entry %d): %v", m.AuditHead.Seq, err)
	}
	r.Entries = int64(len(entries))

	// The ledger.
	want := map[[2]string]LedgerTotal{}
	for _, t := range m.Ledger {
		want[[2]string{t.CollabID, t.PartnerID}] = t
	}
	for _, t := range s.Ledger {
		k := [2]string{t.CollabID, t.PartnerID}
		w, ok := want[k]
		delete(want, k)
		if !ok {
			fail("ledger: collaboration %s, partner %s has %d charges the manifest does not list", t.CollabID, t.PartnerID, t.Charges)
		} else if w != t {
			fail("ledger: collaboration %s, partner %s: %d charges, epsilon %g, delta %g; the manifest says %d, %g, %g", t.CollabID, t.PartnerID,
				t.Charges, wire.EpsilonOf(t.EpsilonUnits), wire.DeltaOf(t.DeltaUnits), w.Charges, wire.EpsilonOf(w.EpsilonUnits), wire.DeltaOf(w.DeltaUnits))
		}
	}
	for _, w := range want {
		fail("ledger: collaboration %s, partner %s: no charges; the manifest says %d", w.CollabID, w.PartnerID, w.Charges)
	}

	// Every table, and its rows.
	for _, n := range sortedKeys(m.Tables) {
		got, ok := s.Tables[n]
		switch {
		case !ok:
			fail("table %s is missing", n)
		case got != m.Tables[n]:
			fail("table %s has %d rows; the manifest says %d", n, got, m.Tables[n])
		}
	}
	for _, n := range sortedKeys(s.Tables) {
		if _, ok := m.Tables[n]; !ok {
			fail("table %s is not in the manifest", n)
		}
	}
	r.Tables = len(s.Tables)

	// Every live audience's table and every current cohort's tables.
	need, err := store.QueryStrings(ctx, db, `SELECT table_name FROM audiences WHERE deleted_at IS NULL
		UNION ALL SELECT m.cohort_table FROM matches m WHERE m.state = ? AND m.cohort_table IS NOT NULL
		UNION ALL SELECT t.link_table FROM match_tables t JOIN matches m ON m.id = t.match_id WHERE m.state = ? AND t.link_table IS NOT NULL`,
		wire.MatchDone, wire.MatchDone)
	if err != nil {
		fail("audiences and cohorts cannot be read: %v", err)
		return nil
	}
	for _, n := range need {
		if _, ok := s.Tables[n]; !ok {
			fail("table %s, which a live audience or cohort refers to, is missing", n)
		}
	}
	return nil
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkEmpty refuses a data directory that holds anything: a restore
// never mixes a backup with what is there.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty; restore builds a new data directory (give one that does not exist)", dir)
	}
	return nil
}

// copyFile copies src to dst (created, 0600), synced, and sums it.
func copyFile(src, dst string) (FileSum, error) {
	in, err := os.Open(src)
	if err != nil {
		return FileSum{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return FileSum{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return FileSum{}, err
	}
	return FileSum{Name: filepath.Base(dst), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
