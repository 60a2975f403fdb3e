package backup

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/audit"
)

// TestBackupManifestSignature: a manifest verifies with the key that
// signed it, and not once any field changed or under another key.
func TestBackupManifestSignature(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	m := Manifest{Format: Format, SchemaVersion: 11, AuditHead: audit.Head{Seq: 7, Hash: "ab"},
		Ledger: []LedgerTotal{{CollabID: "c_1", PartnerID: "p_1", Charges: 2, EpsilonUnits: 300000}}, Tables: map[string]int64{"partners": 3}}
	if err := m.Sign(priv); err != nil {
		t.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	if err := m.Verify(pub); err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(other.Public().(ed25519.PublicKey)); err == nil {
		t.Error("a manifest verifies under another key")
	}
	for _, change := range []func(*Manifest){
		func(m *Manifest) { m.Ledger[0].EpsilonUnits-- },
		func(m *Manifest) { m.Tables["partners"] = 4 },
		func(m *Manifest) { m.AuditHead.Seq = 6 },
	} {
		c := m
		c.Ledger = append([]LedgerTotal(nil), m.Ledger...)
		c.Tables = map[string]int64{"partners": 3}
		change(&c)
		if err := c.Verify(pub); err == nil {
			t.Errorf("a changed manifest verifies: %+v", c)
		}
	}
}

// TestRestoreRefusesWhatIsNotABackup: a directory with no manifest, and a
// target that holds something, are refused before anything is written.
func TestRestoreRefusesWhatIsNotABackup(t *testing.T) {
	dir := t.TempDir()
	to := filepath.Join(dir, "new")
	if _, err := Restore(context.Background(), dir, to, nil); err == nil || !strings.Contains(err.Error(), "not a cleanroom backup") {
		t.Errorf("restoring a directory with no manifest: %v", err)
	}
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Error("a refused restore made the directory")
	}
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o600)
	if _, err := Restore(context.Background(), t.TempDir(), dir, nil); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("restoring into a directory that holds a file: %v", err)
	}
}
