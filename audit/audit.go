package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
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
		ch = contentHash(e)
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

// contentHash covers a version 2 entry's own fields (its private part is
// covered through the commitment in Details).
func contentHash(e *Entry) string {
	return lengthPrefixed("cleanroom-audit-content-v2", e.At.UTC().Format(time.RFC3339Nano),
		e.Actor, e.PartnerID, e.CollabID, e.Action, string(e.Details))
}

// linkHash binds a content hash to its place in the chain.
func linkHash(prev string, seq int64, content string) string {
	return lengthPrefixed("cleanroom-audit-v2", prev, fmt.Sprint(seq), content)
}

// setVersion fills in a stored entry's version and, for version 2, its
// content hash.
func setVersion(e *Entry) {
	if e.Version = versionOf(e); e.Version == 2 {
		e.ContentHash = contentHash(e)
	}
}

// versionOf tells which version hashed a stored entry: the database keeps
// the hash, not the version.
func versionOf(e *Entry) int {
	if hashV1(e) == e.Hash {
		return 0
	}
	return 2
}

// Append adds an entry in tx, after the current head. Call it in the same
// transaction as the change it records, inside store.DB.Write (which
// serialises writers), so the change and its entry commit together.
func Append(ctx context.Context, tx *sql.Tx, actor, partnerID, collabID, action string, details any) (Entry, error) {
	raw, err := json.Marshal(details)
	if err != nil {
		return Entry{}, fmt.Errorf("audit.Append: %w", err)
	}
	return appendRaw(ctx, tx, actor, partnerID, collabID, action, raw, nil)
}

// AppendPrivate is Append for an action whose record has a part only
// partnerID (and the operator) may read: details are public to both
// partners of the collaboration and commit to private, which is not.
// Use it for anything that depends on the acting partner's data (row
// counts, content hashes), which the other partner must not learn.
func AppendPrivate(ctx context.Context, tx *sql.Tx, actor, partnerID, collabID, action string, details, private map[string]any) (Entry, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return Entry{}, fmt.Errorf("audit.AppendPrivate: %w", err)
	}
	p := map[string]any{"nonce": hex.EncodeToString(nonce)}
	for k, v := range private {
		p[k] = v
	}
	praw, err := json.Marshal(p)
	if err != nil {
		return Entry{}, fmt.Errorf("audit.AppendPrivate: %w", err)
	}
	sum := sha256.Sum256(praw)
	d := map[string]any{PrivateCommitment: hex.EncodeToString(sum[:])}
	for k, v := range details {
		d[k] = v
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return Entry{}, fmt.Errorf("audit.AppendPrivate: %w", err)
	}
	return appendRaw(ctx, tx, actor, partnerID, collabID, action, raw, praw)
}

func appendRaw(ctx context.Context, tx *sql.Tx, actor, partnerID, collabID, action string, raw, private []byte) (Entry, error) {
	var err error
	e := Entry{Actor: actor, PartnerID: partnerID, CollabID: collabID, Action: action, Details: raw, Private: private,
		At: time.Now().UTC().Truncate(time.Microsecond)} // the database keeps microseconds
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&e.Seq, &e.PrevHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		e.Seq, e.PrevHash = 0, GenesisHash
	case err != nil:
		return Entry{}, fmt.Errorf("audit.Append: %w", err)
	}
	e.Seq++
	e.Version = 2
	e.ContentHash = contentHash(&e)
	e.Hash = Hash(&e)
	var priv any // NULL when there is no private part
	if private != nil {
		priv = string(private)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor, partner_id, collab_id, action, details, prev_hash, hash, private)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Seq, e.At, e.Actor, e.PartnerID, e.CollabID, e.Action, string(e.Details), e.PrevHash, e.Hash, priv)
	if err != nil {
		return Entry{}, fmt.Errorf("audit.Append: %w", err)
	}
	return e, nil
}

// Filter selects entries. Zero fields match everything.
type Filter struct {
	// Partners limits entries to those done by, or about a collaboration
	// of, these partners. nil means every partner (the operator's view).
	Partners []string
	CollabID string
	Actor    string
	Action   string
	Since    time.Time
	Until    time.Time
	AfterSeq int64 // paging: entries with seq > AfterSeq
	// BeforeSeq pages back: entries with seq < BeforeSeq (0: no bound).
	BeforeSeq int64
	// Newest lists newest first, for a timeline.
	Newest bool
	Limit  int // default 1000
}

// visibleTo is the condition on audit_log rows that partners may read:
// their own actions and everything about their collaborations.
func visibleTo(partners []string) (string, []any) {
	if len(partners) == 0 {
		return "FALSE", nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(partners)), ",")
	var args []any
	for i := 0; i < 3; i++ {
		for _, p := range partners {
			args = append(args, p)
		}
	}
	return `(partner_id IN (` + ph + `) OR collab_id IN (SELECT id FROM collaborations WHERE proposer IN (` + ph + `) OR partner IN (` + ph + `)))`, args
}

// privateTo is the expression for the private part as partners may read
// it: their own entries' only (every entry's for the operator, nil).
func privateTo(partners []string) (string, []any) {
	if partners == nil {
		return "CAST(private AS VARCHAR)", nil
	}
	if len(partners) == 0 {
		return "NULL", nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(partners)), ",")
	args := make([]any, len(partners))
	for i, p := range partners {
		args[i] = p
	}
	return `CASE WHEN partner_id IN (` + ph + `) THEN CAST(private AS VARCHAR) END`, args
}

// Querier is what List reads from: *sql.DB or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// List returns entries matching f in sequence order (newest first with
// f.Newest).
func List(ctx context.Context, q Querier, f Filter) ([]Entry, error) {
	var where []string
	var args []any
	if f.Partners != nil {
		if len(f.Partners) == 0 {
			return nil, nil
		}
		cond, cargs := visibleTo(f.Partners)
		where, args = append(where, cond), append(args, cargs...)
	}
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.CollabID != "" {
		add("collab_id = ?", f.CollabID)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UTC())
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq < ?", f.BeforeSeq)
	}
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	pexpr, pargs := privateTo(f.Partners)
	args = append(pargs, args...)
	query := `SELECT seq, at, actor, partner_id, collab_id, action, CAST(details AS VARCHAR), prev_hash, hash, ` + pexpr + ` FROM audit_log`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	order := "seq"
	if f.Newest {
		order = "seq DESC"
	}
	query += fmt.Sprintf(" ORDER BY %s LIMIT %d", order, limit)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit.List: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var details string
		var private sql.NullString
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.PartnerID, &e.CollabID, &e.Action, &details, &e.PrevHash, &e.Hash, &private); err != nil {
			return nil, fmt.Errorf("audit.List: %w", err)
		}
		e.At = e.At.UTC()
		e.Details = json.RawMessage(details)
		if private.Valid {
			e.Private = json.RawMessage(private.String)
		}
		setVersion(&e)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Export writes every entry up to seq upto, in order, to emit. Entries
// outside the reader's partners (nil: every partner) are redacted to their
// place in the chain, so the reader can still verify the whole chain.
func Export(ctx context.Context, q Querier, readers []string, upto int64, emit func(*Entry) error) error {
	visible := "TRUE"
	var args []any
	if readers != nil {
		visible, args = visibleTo(readers)
	}
	pexpr, pargs := privateTo(readers)
	args = append(append(pargs, args...), upto)
	rows, err := q.QueryContext(ctx, `SELECT seq, at, actor, partner_id, collab_id, action, CAST(details AS VARCHAR), prev_hash, hash, `+pexpr+`, `+visible+`
		FROM audit_log WHERE seq <= ? ORDER BY seq`, args...)
	if err != nil {
		return fmt.Errorf("audit.Export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var details string
		var private sql.NullString
		var vis bool
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.PartnerID, &e.CollabID, &e.Action, &details, &e.PrevHash, &e.Hash, &private, &vis); err != nil {
			return fmt.Errorf("audit.Export: %w", err)
		}
		e.At, e.Details = e.At.UTC(), json.RawMessage(details)
		setVersion(&e)
		if vis {
			if private.Valid {
				e.Private = json.RawMessage(private.String)
			}
		} else {
			e = Entry{Version: e.Version, Seq: e.Seq, PrevHash: e.PrevHash, ContentHash: e.ContentHash, Hash: e.Hash, Redacted: true}
		}
		if err := emit(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Count counts a collaboration's entries of one action in [since, until):
// how many times something was done, for reports.
func Count(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, collabID, action string, since, until time.Time) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE collab_id = ? AND action = ? AND at >= ? AND at < ?`,
		collabID, action, since.UTC(), until.UTC()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("audit.Count: %w", err)
	}
	return n, nil
}
