package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
)

// exported builds a log of n entries and exports it with a signed head.
func exported(t *testing.T, n int) ([]audit.Entry, audit.Head, ed25519.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < n; i++ {
		err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := Append(ctx, tx, "k_1", "p_1", "c_1", "test.action", map[string]any{"i": i, "note": "<&>"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	priv, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateSigner(dir)
	if err != nil || !again.Equal(priv) {
		t.Fatal("the signing key is not kept across starts")
	}
	head, err := SignedHead(ctx, db.SQL(), priv)
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through the export format.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := Export(ctx, db.SQL(), nil, head.Seq, func(e *audit.Entry) error { return enc.Encode(e) }); err != nil {
		t.Fatal(err)
	}
	enc.Encode(map[string]any{"head": head})
	entries, h, err := audit.ReadExport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return entries, h, priv
}

func TestVerifyDetectsTampering(t *testing.T) {
	entries, head, priv := exported(t, 6)
	pub := priv.Public().(ed25519.PublicKey)
	if err := audit.Verify(entries, head, pub); err != nil {
		t.Fatalf("an intact export fails: %v", err)
	}
	clone := func() []audit.Entry { return append([]audit.Entry(nil), entries...) }

	edited := clone()
	edited[2].Details = json.RawMessage(`{"i":2,"note":"changed"}`)
	removed := append(clone()[:3], entries[4:]...)
	reordered := clone()
	reordered[1], reordered[2] = reordered[2], reordered[1]
	truncated := clone()[:5]
	forged := head
	forged.Seq = 5
	otherKey, _, _ := ed25519.GenerateKey(nil)
	for _, c := range []struct {
		name    string
		entries []audit.Entry
		head    audit.Head
		pub     ed25519.PublicKey
		want    string
	}{
		{"edited entry", edited, head, pub, "entry seq 3: content does not match"},
		{"removed entry", removed, head, pub, "entry 4: has sequence number 5"},
		{"reordered entries", reordered, head, pub, "entry 2: has sequence number 3"},
		{"truncated tail", truncated, head, pub, "ends at entry 5 but the signed head is at 6"},
		{"forged head", truncated, forged, pub, "signature"},
		{"another server's key", entries, head, otherKey, "signature"},
	} {
		err := audit.Verify(c.entries, c.head, c.pub)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// Rewriting an entry and every hash after it still fails at the head.
	rewritten := clone()
	rewritten[4].Details = json.RawMessage(`{"i":4}`)
	prev := rewritten[3].Hash
	for i := 4; i < len(rewritten); i++ {
		rewritten[i].PrevHash = prev
		rewritten[i].ContentHash = audit.ContentHash(&rewritten[i])
		rewritten[i].Hash = audit.Hash(&rewritten[i])
		prev = rewritten[i].Hash
	}
	if err := audit.Verify(rewritten, head, pub); err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("rewritten chain: %v", err)
	}
}

func TestSigningKeyFileChecks(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateSigner(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SigningKeyFile)
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o", st.Mode().Perm())
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateSigner(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("loose key file: %v", err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	got, err := audit.ParsePublicKey(audit.EncodePublicKey(pub))
	if err != nil || !got.Equal(pub) {
		t.Errorf("public key round trip: %v", err)
	}
	if _, err := audit.ParsePublicKey("ssh-ed25519 AAAA"); err == nil {
		t.Error("a foreign key format was accepted")
	}
}
