package backup

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/store"
)

// The files of a backup directory.
const (
	ManifestFile = "manifest.json"
	DatabaseFile = store.FileName
	KeyFile      = auditlog.SigningKeyFile
)

// Format is the manifest's format; a restore refuses another.
const Format = 1

// Manifest says what a backup holds. The server signs it with the audit
// key, so a restore can tell a backup it wrote from one changed since.
type Manifest struct {
	Format        int       `json:"format"`
	ServerVersion string    `json:"server_version"`
	SchemaVersion int       `json:"schema_version"`
	TakenAt       time.Time `json:"taken_at"`
	// Database is the snapshot file: its name, size and SHA-256.
	Database FileSum `json:"database"`
	// AuditHead is the last entry the snapshot holds, signed.
	AuditHead      audit.Head `json:"audit_head"`
	AuditPublicKey string     `json:"audit_public_key"`
	// Ledger is the budget ledger's totals by collaboration and partner.
	Ledger []LedgerTotal `json:"ledger"`
	// Tables is every table's row count.
	Tables map[string]int64 `json:"tables"`
	// WithKeys: the audit signing key is in the backup (KeyFile).
	WithKeys  bool   `json:"with_keys"`
	Signature string `json:"signature"`
}

// FileSum names a file of the backup and its content.
type FileSum struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// LedgerTotal is one collaboration's charges to one partner, in the
// ledger's exact units.
type LedgerTotal struct {
	CollabID     string `json:"collab_id"`
	PartnerID    string `json:"partner_id"`
	Charges      int64  `json:"charges"`
	EpsilonUnits int64  `json:"epsilon_units"`
	DeltaUnits   int64  `json:"delta_units"`
}

// Summary is what a database holds that a manifest states.
type Summary struct {
	SchemaVersion int
	HeadSeq       int64
	HeadHash      string
	Ledger        []LedgerTotal
	Tables        map[string]int64
}

// Summarize reads q's summary; in one snapshot (a Read, or a database
// nothing writes) it is the state of one instant.
func Summarize(ctx context.Context, q store.Querier) (Summary, error) {
	var s Summary
	if err := q.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&s.SchemaVersion); err != nil {
		return s, fmt.Errorf("backup: schema version: %w", err)
	}
	s.HeadHash = audit.GenesisHash
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&s.HeadSeq, &s.HeadHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("backup: audit head: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT collab_id, partner_id, count(*), coalesce(sum(epsilon_units), 0)::BIGINT, coalesce(sum(delta_units), 0)::BIGINT
		FROM budget_ledger GROUP BY ALL ORDER BY ALL`)
	if err != nil {
		return s, fmt.Errorf("backup: ledger: %w", err)
	}
	for rows.Next() {
		var t LedgerTotal
		if err := rows.Scan(&t.CollabID, &t.PartnerID, &t.Charges, &t.EpsilonUnits, &t.DeltaUnits); err != nil {
			rows.Close()
			return s, fmt.Errorf("backup: ledger: %w", err)
		}
		s.Ledger = append(s.Ledger, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("backup: ledger: %w", err)
	}
	names, err := store.QueryStrings(ctx, q, `SELECT table_name FROM duckdb_tables()
		WHERE database_name = current_database() AND NOT temporary ORDER BY table_name`)
	if err != nil {
		return s, fmt.Errorf("backup: tables: %w", err)
	}
	s.Tables = make(map[string]int64, len(names))
	for _, n := range names {
		var c int64
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+store.QuoteIdent(n)).Scan(&c); err != nil {
			return s, fmt.Errorf("backup: rows of %s: %w", n, err)
		}
		s.Tables[n] = c
	}
	return s, nil
}

func (m *Manifest) message() ([]byte, error) {
	c := *m
	c.Signature = ""
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte("cleanroom-backup-manifest-v1\n"), b...), nil
}

// Sign signs m with the audit key, whose public key it records.
func (m *Manifest) Sign(priv ed25519.PrivateKey) error {
	m.AuditPublicKey = audit.EncodePublicKey(priv.Public().(ed25519.PublicKey))
	msg, err := m.message()
	if err != nil {
		return err
	}
	m.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
	return nil
}

// Verify checks m's signature with pub.
func (m *Manifest) Verify(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return errors.New("the manifest's signature is not base64")
	}
	msg, err := m.message()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, sig) {
		return errors.New("the manifest's signature does not verify with the audit key: it was changed since the server signed it, or another key signed it")
	}
	return nil
}

// ReadManifest reads dir's manifest.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, fmt.Errorf("not a cleanroom backup (no readable %s): %w", ManifestFile, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s is not a backup manifest: %w", ManifestFile, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("%s has format %d; this cleanroom reads format %d", ManifestFile, m.Format, Format)
	}
	return m, nil
}
