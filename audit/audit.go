package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Entry is one action in the log. Each entry's Hash covers its fields and
// the previous entry's hash, so changing, removing or reordering any entry
// breaks every hash after it.
//
// Version 2 entries (every entry written since version 2) hash in two
// steps: ContentHash covers the entry's fields, and Hash links ContentHash
// to the sequence number and the previous hash. An entry redacted for a
// reader then still shows its ContentHash, so the reader recomputes every
// link of the chain, through entries it may not read.
type Entry struct {
	// Version is 2 for entries hashed in two steps; 0 (left out) for the
	// first version's entries.
	Version   int             `json:"v,omitempty"`
	Seq       int64           `json:"seq"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"` // API key id, or "system"
	PartnerID string          `json:"partner_id"`
	CollabID  string          `json:"collab_id,omitempty"`
	Action    string          `json:"action"`
	Details   json.RawMessage `json:"details"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
	// Private holds what only the entry's own partner (and the operator)
	// may read: facts about that partner's data, such as exact row counts,
	// that the other partner of the collaboration must not learn. Details
	// commit to it by its SHA-256 (private_sha256); it carries a random
	// nonce so the commitment cannot be brute-forced from small counts.
	Private json.RawMessage `json:"private,omitempty"`
	// ContentHash is a version 2 entry's hash of its fields; a redacted
	// entry gives it so its link can be checked.
	ContentHash string `json:"content_hash,omitempty"`
	// Redacted marks an entry the reader may not see in an export: only
	// its place in the chain (seq, hashes, version) is given.
	Redacted bool `json:"redacted,omitempty"`

	// carried names what a redacted entry read by ReadExport carried
	// besides its place in the chain; Verify refuses such an entry.
	carried []string
}

// stub is the export form of a redacted entry: its place in the chain
// and nothing else.
type stub struct {
	Version     int    `json:"v,omitempty"`
	Seq         int64  `json:"seq"`
	PrevHash    string `json:"prev_hash"`
	ContentHash string `json:"content_hash,omitempty"`
	Hash        string `json:"hash"`
	Redacted    bool   `json:"redacted"`
}

// MarshalJSON writes a redacted entry as its place in the chain only
// (seq, prev_hash, hash and "redacted": true), the only form Verify
// accepts, and any other entry with all its fields.
func (e Entry) MarshalJSON() ([]byte, error) {
	if e.Redacted {
		return json.Marshal(stub{Version: e.Version, Seq: e.Seq, PrevHash: e.PrevHash, ContentHash: e.ContentHash, Hash: e.Hash, Redacted: true})
	}
	type plain Entry // without this method
	return json.Marshal(plain(e))
}

// checkRedacted refuses a redacted entry that carries anything besides
// its place in the chain: nothing covers such content, so a reader must
// not be shown it as part of a verified log.
func checkRedacted(e *Entry) error {
	carried := append([]string(nil), e.carried...)
	add := func(has bool, name string) {
		if has && !slices.ContainsFunc(carried, func(c string) bool { return strings.EqualFold(c, name) }) {
			carried = append(carried, name)
		}
	}
	add(!e.At.IsZero(), "at")
	add(e.Actor != "", "actor")
	add(e.PartnerID != "", "partner_id")
	add(e.CollabID != "", "collab_id")
	add(e.Action != "", "action")
	add(len(e.Details) > 0 && string(e.Details) != "null", "details")
	add(len(e.Private) > 0, "private")
	if len(carried) == 0 {
		return nil
	}
	sort.Strings(carried)
	return fmt.Errorf("entry seq %d: is marked redacted but carries %s; a redacted entry gives only its place in the chain (seq, prev_hash, hash), and no hash covers anything else in it (edited entry)",
		e.Seq, strings.Join(carried, ", "))
}

// PrivateCommitment is the key in Details that commits to Private.
const PrivateCommitment = "private_sha256"

// CheckPrivate checks that an entry's Private part, when present, is the
// one its Details commit to.
func CheckPrivate(e *Entry) error {
	if len(e.Private) == 0 {
		return nil
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(e.Details, &d); err != nil {
		return fmt.Errorf("entry seq %d: details: %w", e.Seq, err)
	}
	var want string
	if err := json.Unmarshal(d[PrivateCommitment], &want); err != nil || want == "" {
		return fmt.Errorf("entry seq %d: has private details its entry does not commit to", e.Seq)
	}
	sum := sha256.Sum256(e.Private)
	if hex.EncodeToString(sum[:]) != want {
		return fmt.Errorf("entry seq %d: private details do not match their commitment (edited entry)", e.Seq)
	}
	return nil
}

// GenesisHash is the PrevHash of the first entry.
var GenesisHash = strings.Repeat("0", 64)

// Hash computes an entry's hash from its fields and PrevHash: SHA-256 over
// length-prefixed fields, so no two different entries encode alike.
func Hash(e *Entry) string {
	if e.Version < 2 {
		return hashV1(e)
	}
	ch := e.ContentHash
	if !e.Redacted {
		ch = ContentHash(e)
	}
	return linkHash(e.PrevHash, e.Seq, ch)
}

// lengthPrefixed hashes fields so that no two different lists encode alike.
func lengthPrefixed(fields ...string) string {
	h := sha256.New()
	for _, s := range fields {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashV1(e *Entry) string {
	return lengthPrefixed("cleanroom-audit-v1", e.PrevHash, fmt.Sprint(e.Seq), e.At.UTC().Format(time.RFC3339Nano),
		e.Actor, e.PartnerID, e.CollabID, e.Action, string(e.Details))
}

// ContentHash is a version 2 entry's hash of its own fields (its private
// part is covered through the commitment in Details), what Hash links into
// the chain.
func ContentHash(e *Entry) string {
	return lengthPrefixed("cleanroom-audit-content-v2", e.At.UTC().Format(time.RFC3339Nano),
		e.Actor, e.PartnerID, e.CollabID, e.Action, string(e.Details))
}

// linkHash binds a content hash to its place in the chain.
func linkHash(prev string, seq int64, content string) string {
	return lengthPrefixed("cleanroom-audit-v2", prev, fmt.Sprint(seq), content)
}

// InferVersion fills in a stored entry's Version and, for version 2, its
// ContentHash, from its fields and Hash: storage keeps the hash, not the
// version.
func InferVersion(e *Entry) {
	if hashV1(e) == e.Hash {
		e.Version = 0
		return
	}
	e.Version = 2
	e.ContentHash = ContentHash(e)
}
