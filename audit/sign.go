package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

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
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
	// V2From is the first version 2 entry (0: none). Every entry from it
	// on is version 2, whose links a reader checks even when redacted;
	// signing it stops an export from passing entries off as older ones.
	V2From    int64  `json:"v2_from,omitempty"`
	Signature string `json:"signature"`
}

func (h *Head) message() []byte {
	m := strconv.FormatInt(h.Seq, 10) + "\n" + h.Hash + "\n" + h.At.UTC().Format(time.RFC3339Nano)
	if h.V2From > 0 {
		return []byte("cleanroom-audit-head-v2\n" + m + "\n" + strconv.FormatInt(h.V2From, 10))
	}
	return []byte("cleanroom-audit-head-v1\n" + m)
}

// SignHead signs h with the server's key.
func SignHead(priv ed25519.PrivateKey, h Head) Head {
	h.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, h.message()))
	return h
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
// its place in the chain: version, seq, prev_hash, content_hash, hash and
// "redacted": true. Verify refuses a redacted entry that carries anything
// else (a time, actor, action, details or private part). For version 2
// entries, which the signed head says every entry from v2_from is, the
// stub's hash is recomputed from its prev_hash, seq and content hash, so
// every link of the chain is checked and the signed head binds every
// entry, readable or not: nothing before a stub can be edited, made up,
// removed or reordered without Verify noticing.
//
// What redaction leaves, by design: a redacted entry's content is not
// shown, only bound. Whoever passes an export on can strip a readable
// entry to a stub (hiding it, not changing it); only an export fetched
// with the reader's own key shows all that key may read. Entries written
// before version 2 (before v2_from) keep the first version's rule, under
// which a stub's hash was taken as given: in such a stretch, entries
// before a stub are bound only by their count.
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
		switch {
		case e.Version != 0 && e.Version != 2:
			return fmt.Errorf("entry seq %d: unknown entry version %d", e.Seq, e.Version)
		case head.V2From > 0 && e.Seq >= head.V2From && e.Version != 2:
			return fmt.Errorf("entry seq %d: is not a version 2 entry, though the signed head says every entry from %d is (downgraded or forged entry)", e.Seq, head.V2From)
		}
		if e.Redacted {
			if err := checkRedacted(e); err != nil {
				return err
			}
			// A version 2 stub's link is checked like any entry's: its
			// content hash, seq and prev_hash make its hash.
			if e.Version == 2 && Hash(e) != e.Hash {
				return fmt.Errorf("entry seq %d: redacted entry does not link to the one before it (edited, removed or forged entries)", e.Seq)
			}
		} else {
			if Hash(e) != e.Hash {
				return fmt.Errorf("entry seq %d: content does not match its hash (edited entry)", e.Seq)
			}
			if e.ContentHash != "" && e.ContentHash != ContentHash(e) {
				return fmt.Errorf("entry seq %d: content does not match its content hash (edited entry)", e.Seq)
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
	case "seq", "prev_hash", "hash", "redacted", "v", "content_hash":
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
