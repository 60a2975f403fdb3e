package auditlog

import (
	"bytes"
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

// A partner's private part reaches its own readers and the operator, is
// committed to by the public details, and verifies; the other partner of
// the collaboration reads the entry without it.
func TestPrivatePartsReachOnlyTheirPartner(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO collaborations (id, name, proposer, partner, rules, rules_version, approved_by, state, created_at, updated_at) VALUES ('c_1', 'x', 'p_1', 'p_2', '{}', 1, '[]', 'active', ?, ?)`, time.Now(), time.Now()); err != nil {
			return err
		}
		if _, err := AppendPrivate(ctx, tx, "k_1", "p_1", "c_1", "audience.upload", map[string]any{"audience_id": "a_1"},
			map[string]any{"rows": 3}); err != nil {
			return err
		}
		_, err := Append(ctx, tx, "k_2", "p_2", "c_1", "match.start", map[string]any{"match_id": "m_1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	export := func(readers []string) []audit.Entry {
		entries, h := exportLog(t, db.SQL(), priv, readers)
		if err := audit.Verify(entries, h, priv.Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("export for %v does not verify: %v", readers, err)
		}
		return entries
	}
	own, other, op := export([]string{"p_1"}), export([]string{"p_2"}), export(nil)
	if !strings.Contains(string(own[0].Private), `"rows":3`) || !strings.Contains(string(op[0].Private), `"rows":3`) {
		t.Errorf("own partner or operator lacks the private part: %s / %s", own[0].Private, op[0].Private)
	}
	if len(other[0].Private) != 0 || other[0].Redacted || !strings.Contains(string(other[0].Details), `"audience_id":"a_1"`) {
		t.Errorf("the other partner reads %+v", other[0])
	}
	if strings.Contains(string(other[0].Details), "rows") {
		t.Errorf("the public details carry the private fact: %s", other[0].Details)
	}
	// Times both partners read are whole seconds, so the gap between two
	// entries cannot time work on the other's data; the exact time is in
	// the acting partner's private part.
	for _, e := range other {
		if e.At.Nanosecond() != 0 {
			t.Errorf("entry %d's shared time %s is finer than a second", e.Seq, e.At.Format(time.RFC3339Nano))
		}
	}
	var exact struct{ At time.Time }
	if err := json.Unmarshal(own[0].Private, &exact); err != nil || exact.At.Truncate(time.Second) != own[0].At {
		t.Errorf("the private part's exact time %v does not fall in the entry's second %v (%v)", exact.At, own[0].At, err)
	}
	// List agrees with Export.
	for readers, want := range map[string]bool{"p_1": true, "p_2": false} {
		es, err := List(ctx, db.SQL(), Filter{Partners: []string{readers}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(es[0].Private) > 0; got != want {
			t.Errorf("List for %s: private part present %v, want %v", readers, got, want)
		}
	}

	// An edited private part, or one the entry never committed to, fails.
	edited := append([]audit.Entry(nil), own...)
	edited[0].Private = json.RawMessage(strings.Replace(string(own[0].Private), `"rows":3`, `"rows":4`, 1))
	if err := audit.CheckPrivate(&edited[0]); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Errorf("an edited private part: %v", err)
	}
	edited[1].Private = json.RawMessage(`{"rows": 1}`)
	if err := audit.CheckPrivate(&edited[1]); err == nil || !strings.Contains(err.Error(), "does not commit") {
		t.Errorf("a private part the entry does not commit to: %v", err)
	}
}

// exportLog exports the log as readers see it, through the NDJSON form an
// auditor downloads, and reads it back.
func exportLog(t *testing.T, q store.Querier, priv ed25519.PrivateKey, readers []string) ([]audit.Entry, audit.Head) {
	t.Helper()
	ctx := context.Background()
	head, err := SignedHead(ctx, q, priv)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := Export(ctx, q, readers, head.Seq, func(e *audit.Entry) error { return enc.Encode(e) }); err != nil {
		t.Fatal(err)
	}
	enc.Encode(map[string]any{"head": head})
	entries, h, err := audit.ReadExport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return entries, h
}
