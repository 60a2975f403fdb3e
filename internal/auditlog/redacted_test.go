package auditlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
)

// partnerExport builds a log of actions by p_1 and p_2 (p_2's in a
// collaboration p_1 is not part of) and exports it for p_1, as the server
// does: p_2's entries are redacted. It returns the export's lines, the
// head line last.
func partnerExport(t *testing.T) ([]string, ed25519.PublicKey) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Write(ctx, func(tx *sql.Tx) error {
		for i, p := range []string{"p_1", "p_2", "p_2", "p_1", "p_2", "p_1"} {
			if p == "p_1" {
				_, err = AppendPrivate(ctx, tx, "k_1", p, "c_1", "audience.upload", map[string]any{"i": i}, map[string]any{"rows": 10 + i})
			} else {
				_, err = Append(ctx, tx, "k_2", p, "c_2", "query.run", map[string]any{"i": i})
			}
			if err != nil {
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
	head, err := SignedHead(ctx, db.SQL(), priv)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := Export(ctx, db.SQL(), []string{"p_1"}, head.Seq, func(e *audit.Entry) error { return enc.Encode(e) }); err != nil {
		t.Fatal(err)
	}
	enc.Encode(map[string]any{"head": head})
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"), priv.Public().(ed25519.PublicKey)
}

func verifyLines(lines []string, pub ed25519.PublicKey) error {
	entries, head, err := audit.ReadExport(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		return err
	}
	return audit.Verify(entries, head, pub)
}

// A redacted entry gives its place in the chain and nothing else; one that
// carries anything else is refused, naming the entry and what it carries.
func TestVerifyRefusesRedactedEntriesWithContent(t *testing.T) {
	lines, pub := partnerExport(t)
	if err := verifyLines(lines, pub); err != nil {
		t.Fatalf("an intact export fails: %v", err)
	}
	stubLine := regexp.MustCompile(`^\{"v":2,"seq":[0-9]+,"prev_hash":"[0-9a-f]{64}","content_hash":"[0-9a-f]{64}","hash":"[0-9a-f]{64}","redacted":true\}$`)
	for i, seq := range []int{2, 3, 5} {
		if !stubLine.MatchString(lines[seq-1]) {
			t.Errorf("redacted entry %d (stub %d) is written as %s, want its place in the chain only", seq, i, lines[seq-1])
		}
	}
	edit := func(seq int, f func(string) string) []string {
		out := append([]string(nil), lines...)
		out[seq-1] = f(out[seq-1])
		return out
	}
	markRedacted := func(s string) string { return strings.Replace(s, `{`, `{"redacted":true,`, 1) }
	addToStub := func(field string) func(string) string {
		return func(s string) string { return strings.TrimSuffix(s, "}") + "," + field + "}" }
	}
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"a readable entry marked redacted", edit(4, markRedacted),
			"entry seq 4: is marked redacted but carries action, actor, at, collab_id, details, partner_id, private"},
		{"an edited entry marked redacted", edit(4, func(s string) string {
			return markRedacted(strings.Replace(s, `"audience.upload"`, `"audience.delete"`, 1))
		}), "entry seq 4: is marked redacted but carries action,"},
		{"a stub given details", edit(2, addToStub(`"details":{"i":1}`)), "entry seq 2: is marked redacted but carries details"},
		{"a stub given a private part", edit(3, addToStub(`"private":{"rows":3}`)), "entry seq 3: is marked redacted but carries private"},
		{"a stub given an action", edit(5, addToStub(`"action":"query.run"`)), "entry seq 5: is marked redacted but carries action"},
		{"a stub given a field Entry does not have", edit(5, addToStub(`"note":"approved"`)), "entry seq 5: is marked redacted but carries note"},
		{"a stub given an actor in another case", edit(2, addToStub(`"Actor":"k_2"`)), "entry seq 2: is marked redacted but carries Actor"},
		{"a stub with an empty but non-null details", edit(2, addToStub(`"details":""`)), "entry seq 2: is marked redacted but carries details"},
		{"a readable entry stripped of its details, marked redacted", edit(6, func(s string) string {
			var e map[string]any
			json.Unmarshal([]byte(s), &e)
			b, _ := json.Marshal(map[string]any{"v": e["v"], "seq": e["seq"], "prev_hash": e["prev_hash"], "content_hash": e["content_hash"], "hash": e["hash"], "redacted": true, "actor": e["actor"]})
			return string(b)
		}), "entry seq 6: is marked redacted but carries actor"},
	} {
		err := verifyLines(c.lines, pub)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}

	// Exports written before stubs were cut to their place carried empty
	// fields; they say nothing, and those exports still verify.
	legacy := edit(2, func(s string) string {
		var e audit.Entry
		json.Unmarshal([]byte(s), &e)
		type plain audit.Entry
		e.Redacted = true
		b, _ := json.Marshal(plain(e))
		return string(b)
	})
	if !strings.Contains(legacy[1], `"actor":"","partner_id":"","action":"","details":null`) {
		t.Fatalf("not the old form of a stub: %s", legacy[1])
	}
	if err := verifyLines(legacy, pub); err != nil {
		t.Errorf("an export with stubs of the old form: %v", err)
	}

	// Entries built in Go rather than read: the same rule.
	entries, head, err := audit.ReadExport(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	entries[2].Private = json.RawMessage(`{"rows":1}`)
	if err := audit.Verify(entries, head, pub); err == nil || !strings.Contains(err.Error(), "entry seq 3: is marked redacted but carries private") {
		t.Errorf("a redacted Entry with a private part: %v", err)
	}

	// The documented limit: a readable entry stripped to an exact stub
	// looks like one the server redacted, and the export still verifies.
	stripped := edit(6, func(s string) string {
		var e audit.Entry
		json.Unmarshal([]byte(s), &e)
		e.Redacted = true
		b, _ := json.Marshal(e)
		return string(b)
	})
	if !stubLine.MatchString(stripped[5]) {
		t.Fatalf("stripped line: %s", stripped[5])
	}
	if err := verifyLines(stripped, pub); err != nil {
		t.Errorf("an exact stub (undetectable by design): %v", err)
	}
}
