package api

import (
	"archive/tar"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/backup"
	"github.com/cleanroom/cleanroom/internal/errs"
)

// backupDir, in the data directory, holds a snapshot while it is sent;
// whatever a killed server left there is removed at start.
const backupDir = "backup-tmp"

// mtTar is a backup's media type.
const mtTar = "application/x-tar"

// backup streams a snapshot of the database to the operator as a tar:
// the database file, the audit signing key when keys=true, and the signed
// manifest last (a stream cut short has none, so the client knows it is
// incomplete). Streaming rather than writing on the server's disk: the
// operator's machine need not be the server's, a backup left beside the
// data it protects is lost with that disk, and no caller names a path on
// the server. The snapshot sits in DATA/backup-tmp while it is sent.
func (s *Server) backup(c echo.Context) error {
	ctx := c.Request().Context()
	priv, err := s.signer()
	if err != nil {
		return err
	}
	if s.opts.DataDir == "" {
		return errs.New(errs.Unavailable, "this server has no data directory to hold a snapshot")
	}
	// One at a time: each snapshot is the database's size on disk.
	if !s.backupMu.TryLock() {
		return errs.New(errs.Conflict, "a backup is being taken; retry once it has finished")
	}
	defer s.backupMu.Unlock()
	withKeys, err := boolParam(c, "keys")
	if err != nil {
		return err
	}
	dir := filepath.Join(s.opts.DataDir, backupDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	path := filepath.Join(dir, "snapshot-"+hex.EncodeToString(b)+".duckdb")
	defer os.Remove(path)
	defer os.Remove(path + ".wal")
	// The snapshot is about the database's size: refuse it rather than
	// fill the disk the database needs.
	if err := s.checkRoomFor(s.db.Path(), dir); err != nil {
		return err
	}
	start := time.Now()
	if err := s.db.Snapshot(ctx, path); err != nil {
		return err
	}
	m := backup.Manifest{Format: backup.Format, ServerVersion: s.opts.Version, TakenAt: time.Now().UTC(), WithKeys: withKeys}
	if err := summarizeSnapshot(c, path, priv, &m); err != nil {
		return err
	}
	snapTime := time.Since(start)
	// No copy of the data leaves without its entry: the operator's own
	// (partners read its place in the chain, redacted), naming the head
	// the backup holds.
	p := principal(c)
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := auditlog.Append(ctx, tx, p.KeyID, p.PartnerID, "", audit.BackupTaken, map[string]any{
			"audit_seq": m.AuditHead.Seq, "with_keys": withKeys, "tables": len(m.Tables),
		})
		return err
	})
	if err != nil {
		return err
	}

	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Type", mtTar)
	c.Response().WriteHeader(http.StatusOK)
	tw := tar.NewWriter(c.Response())
	now := time.Now()
	h := sha256.New()
	if err := tw.WriteHeader(&tar.Header{Name: backup.DatabaseFile, Mode: 0o600, Size: st.Size(), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(io.MultiWriter(tw, h), f); err != nil {
		return err
	}
	m.Database = backup.FileSum{Name: backup.DatabaseFile, Bytes: st.Size(), SHA256: hex.EncodeToString(h.Sum(nil))}
	if withKeys {
		key, err := os.ReadFile(filepath.Join(s.opts.DataDir, auditlog.SigningKeyFile))
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: backup.KeyFile, Mode: 0o600, Size: int64(len(key)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(key); err != nil {
			return err
		}
	}
	if err := m.Sign(priv); err != nil {
		return err
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mb = append(mb, '\n')
	if err := tw.WriteHeader(&tar.Header{Name: backup.ManifestFile, Mode: 0o600, Size: int64(len(mb)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	s.opts.Logger.Info("backup sent", "audit_seq", m.AuditHead.Seq, "bytes", st.Size(), "snapshot", snapTime.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
}

// summarizeSnapshot fills the manifest from the snapshot itself: what it
// states is what the file holds.
func summarizeSnapshot(c echo.Context, path string, priv ed25519.PrivateKey, m *backup.Manifest) error {
	ctx := c.Request().Context()
	db, closeDB, err := backup.OpenReadOnly(path)
	if err != nil {
		return err
	}
	defer closeDB()
	sum, err := backup.Summarize(ctx, db)
	if err != nil {
		return err
	}
	head, err := auditlog.SignedHead(ctx, db, priv)
	if err != nil {
		return err
	}
	m.SchemaVersion, m.AuditHead, m.Ledger, m.Tables = sum.SchemaVersion, head, sum.Ledger, sum.Tables
	return nil
}

// removeStaleSnapshots removes what a backup cut short (a killed server)
// left in the data directory.
func removeStaleSnapshots(dataDir string) error {
	if dataDir == "" {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(dataDir, backupDir)); err != nil {
		return fmt.Errorf("removing an interrupted backup's snapshot: %w", err)
	}
	return nil
}
