package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SigningKeyFile is the server's audit signing key in the data directory.
const SigningKeyFile = "audit-signing.key"

const signingKeyPrefix = "CLEANROOM-AUDIT-SIGNING-KEY-1-"

// LoadOrCreateSigner reads the server's Ed25519 signing key from dir,
// creating it (mode 0600) on first start. It refuses a key file others can
// read: whoever holds the key can sign a rewritten log.
func LoadOrCreateSigner(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, SigningKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		text := signingKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit: creating the signing key: %w", err)
		}
		if _, err := f.WriteString(text); err != nil {
			f.Close()
			return nil, err
		}
		return priv, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit: %s has mode %04o and is open to other users; run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), signingKeyPrefix)
	seed, err := base64.StdEncoding.DecodeString(s)
	if !ok || err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: %s is not a cleanroom audit signing key", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// EncodePublicKey gives a public key in the text form the CLI takes.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return "cleanroom-audit-ed25519:" + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads EncodePublicKey's form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), "cleanroom-audit-ed25519:")
	b, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("not a cleanroom audit public key (want cleanroom-audit-ed25519:<base64>)")
	}
	return ed25519.PublicKey(b), nil
}

// Head is the signed head of the chain: the last entry's sequence number
// and hash, when it was signed, and the server's signature over them.
type Head struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	At        time.Time `json:"at"`
	Signature string    `json:"signature"`
}

func (h *Head) message() []byte {
	return []byte("cleanroom-audit-head-v1\n" + strconv.FormatInt(h.Seq, 10) + "\n" + h.Hash + "\n" + h.At.UTC().Format(time.RFC3339Nano))
}

// SignedHead reads the current head and signs it.
func SignedHead(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, priv ed25519.PrivateKey) (Head, error) {
	h := Head{Hash: GenesisHash, At: time.Now().UTC()}
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("audit.SignedHead: %w", err)
	}
	h.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, h.message()))
	return h, nil
}

// VerifyHead checks a head's signature.
func VerifyHead(pub ed25519.PublicKey, h Head) error {
	sig, err := base64.StdEncoding.DecodeString(h.Signature)
	if err != nil || !ed25519.Verify(pub, h.message(), sig) {
		return errors.New("the head's signature is not the server's (forged or altered head)")
	}
	return nil
}

// Verify checks an export offline: entries from the start of the log, in
// order, each linking to the one before and matching its hash, ending
// exactly at the signed head. It names the first bad entry.
//
// An entry redacted for the reader (another partner's action) gives only
// its place in the chain: seq, prev_hash, hash and "redacted": true.
// Verify refuses a redacted entry that carries anything else (a time,
// actor, action, details or private part): no hash covers it, and a
// reader would take it for checked. What redaction leaves, by design, is
// an entry whose content nobody but the server can check; and since its
// hash cannot be recomputed, it limits what the export proves:
//
//   - Whoever passes an export on can strip any entry to a redacted stub
//     and hide it: nothing in a stub says whose entry it is, so a stub the
//     server wrote and one made later look the same. Only an export
//     fetched with the reader's own key shows what that key may read.
//   - A stub's prev_hash and hash are taken as given. The signed head is
//     bound, through each readable entry's hash, to the entries after the
//     last stub and to that stub's hash, not to what comes before it:
//     entries before a stub can be edited, made up or replaced (the stub's
//     prev_hash changed to match) without Verify noticing, as long as
//     their number stays the same. Only an export without stubs (the
//     operator's) proves every entry; a partner's proves its tail.
//   - So a receipt or other reference pointing at a stub is confirmed
//     only if the stub's hash is bound: the next entry is readable and
//     bound, or it is the last.
//
// Verify does catch, anywhere in an export without stubs and after the
// last stub in one with them, edited, removed, reordered and added
// entries; and everywhere a changed entry count, a stub that carries
// content and a head the server did not sign.
func Verify(entries []Entry, head Head, pub ed25519.PublicKey) error {
	if err := VerifyHead(pub, head); err != nil {
		return err
	}
	prev := GenesisHash
	for i := range entries {
		e := &entries[i]
		if e.Seq != int64(i)+1 {
			return fmt.Errorf("entry %d: has sequence number %d, want %d (entries removed or reordered)", i+1, e.Seq, i+1)
		}
		if e.PrevHash != prev {
			return fmt.Errorf("entry seq %d: does not follow the entry before it (removed, reordered or inserted entries)", e.Seq)
		}
		if e.Redacted {
			if err := checkRedacted(e); err != nil {
				return err
			}
		} else {
			if Hash(e) != e.Hash {
				return fmt.Errorf("entry seq %d: content does not match its hash (edited entry)", e.Seq)
			}
			if err := CheckPrivate(e); err != nil {
				return err
			}
		}
		prev = e.Hash
	}
	n := int64(len(entries))
	if n < head.Seq {
		return fmt.Errorf("the export ends at entry %d but the signed head is at %d (entries cut from the end)", n, head.Seq)
	}
	if n > head.Seq {
		return fmt.Errorf("the export has %d entries beyond the signed head (entry %d)", n-head.Seq, head.Seq)
	}
	if prev != head.Hash {
		return fmt.Errorf("entry seq %d: the chain does not end at the signed head's hash (the log was rewritten)", n)
	}
	return nil
}

// stubField reports whether a field may appear in a redacted entry: its
// place in the chain, or one of the empty fields that exports written
// before stubs were cut down to their place carried (the zero time, empty
// strings, null details), which say nothing.
func stubField(name string, value json.RawMessage) bool {
	switch name {
	case "seq", "prev_hash", "hash", "redacted":
		return true
	}
	empty := map[string]string{"at": `"0001-01-01T00:00:00Z"`, "actor": `""`, "partner_id": `""`, "action": `""`, "details": "null"}
	want, ok := empty[name]
	return ok && string(bytes.TrimSpace(value)) == want
}

// ReadExport parses an export: NDJSON entries, then the {"head": ...} line.
func ReadExport(r io.Reader) ([]Entry, Head, error) {
	dec := json.NewDecoder(r)
	var entries []Entry
	for line := 1; ; line++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return nil, Head{}, errors.New("the export has no signed head (truncated file?)")
		} else if err != nil {
			return nil, Head{}, fmt.Errorf("line %d: %w", line, err)
		}
		var h struct {
			Head *Head `json:"head"`
		}
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, Head{}, fmt.Errorf("line %d: %w", line, err)
		}
		if h.Head != nil {
			if dec.More() {
				return nil, Head{}, fmt.Errorf("line %d: entries after the head", line+1)
			}
			return entries, *h.Head, nil
		}
		// Details stay the exact bytes of the line, which the hash covers.
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, Head{}, fmt.Errorf("line %d: %w", line, err)
		}
		if e.Redacted {
			// What the line holds besides its place, for Verify to refuse:
			// the struct cannot tell an absent field from an empty one.
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				return nil, Head{}, fmt.Errorf("line %d: %w", line, err)
			}
			for k, v := range fields {
				if !stubField(k, v) {
					e.carried = append(e.carried, k)
				}
			}
		}
		entries = append(entries, e)
	}
}
