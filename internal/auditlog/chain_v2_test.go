package auditlog

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
)

// A partner's export hides other partners' entries, but every link of the
// chain is still checked: an entry before a stub cannot be edited or made
// up (the stub's content hash and seq make its hash from its prev_hash).
// Before version 2, a stub's hash was taken as given and entries before it
// could be forged; this test failed then.
func TestEntriesBeforeAStubCannotBeForged(t *testing.T) {
	lines, pub := partnerExport(t) // entry 1 readable, 2 and 3 stubs
	var e1 audit.Entry
	if err := json.Unmarshal([]byte(lines[0]), &e1); err != nil {
		t.Fatal(err)
	}
	// Forge entry 1 and relink the stub after it, as a forger would.
	e1.Details = json.RawMessage(strings.Replace(string(e1.Details), `"i":0`, `"i":99`, 1))
	e1.ContentHash = audit.ContentHash(&e1)
	e1.Hash = audit.Hash(&e1)
	forged := append([]string(nil), lines...)
	b, _ := json.Marshal(e1)
	forged[0] = string(b)
	var stub map[string]any
	json.Unmarshal([]byte(lines[1]), &stub)
	stub["prev_hash"] = e1.Hash
	b, _ = json.Marshal(stub)
	forged[1] = string(b)
	if err := verifyLines(forged, pub); err == nil || !strings.Contains(err.Error(), "entry seq 2: redacted entry does not link") {
		t.Errorf("an entry forged before a stub: %v", err)
	}
	// Nor can a stub be passed off as an old one whose link is not checked.
	downgraded := append([]string(nil), lines...)
	delete(stub, "v")
	delete(stub, "content_hash")
	b, _ = json.Marshal(stub)
	downgraded[0], downgraded[1] = forged[0], string(b)
	if err := verifyLines(downgraded, pub); err == nil || !strings.Contains(err.Error(), "is not a version 2 entry") {
		t.Errorf("a stub downgraded to the first version: %v", err)
	}
	// A stub's content hash is bound too: changing it breaks its link.
	var stub3 map[string]any
	json.Unmarshal([]byte(lines[2]), &stub3)
	stub3["content_hash"] = strings.Repeat("0", 64)
	b, _ = json.Marshal(stub3)
	edited := append([]string(nil), lines...)
	edited[2] = string(b)
	if err := verifyLines(edited, pub); err == nil || !strings.Contains(err.Error(), "entry seq 3: redacted entry does not link") {
		t.Errorf("a stub with another content hash: %v", err)
	}
}

// A log begun before version 2 keeps verifying: its old entries by the
// first version's rule, and the signed head says where version 2 begins.
func TestLogsFromBeforeVersion2StillVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Three entries as the first version wrote them.
	prev := audit.GenesisHash
	for i := int64(1); i <= 3; i++ {
		e := audit.Entry{Seq: i, At: time.Date(2026, 1, 1, 0, 0, int(i), 0, time.UTC), Actor: "k_1", PartnerID: "p_1", CollabID: "c_1",
			Action: "test.old", Details: json.RawMessage(`{"i":1}`), PrevHash: prev}
		e.Hash = audit.Hash(&e)
		if _, err := db.SQL().Exec(`INSERT INTO audit_log (seq, at, actor, partner_id, collab_id, action, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.At, e.Actor, e.PartnerID, e.CollabID, e.Action, string(e.Details), e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
	err = db.Write(ctx, func(tx *sql.Tx) error {
		for i := 0; i < 4; i++ {
			if _, err := Append(ctx, tx, "k_1", "p_1", "c_1", "test.new", map[string]any{"i": i}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, h := exportLog(t, db.SQL(), priv, nil)
	if h.V2From != 4 {
		t.Fatalf("signed head says version 2 begins at %d, want 4", h.V2From)
	}
	if err := audit.Verify(entries, h, priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("a log from before version 2: %v", err)
	}
	if entries[2].Version != 0 || entries[3].Version != 2 {
		t.Errorf("versions %d and %d at the switch", entries[2].Version, entries[3].Version)
	}
	// The head's v2_from is signed: moving it is a forged head.
	h.V2From = 6
	if err := audit.Verify(entries, h, priv.Public().(ed25519.PublicKey)); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a head with v2_from moved: %v", err)
	}
}
