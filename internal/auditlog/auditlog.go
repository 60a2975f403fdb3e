package auditlog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
)

// Append adds an entry in tx, after the current head. Call it in the same
// transaction as the change it records, inside store.DB.Write (which
// serialises writers), so the change and its entry commit together.
func Append(ctx context.Context, tx *sql.Tx, actor, partnerID, collabID string, action audit.Action, details any) (audit.Entry, error) {
	raw, err := json.Marshal(details)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("auditlog.Append: %w", err)
	}
	return appendRaw(ctx, tx, actor, partnerID, collabID, action, raw, nil, time.Now())
}

// AppendPrivate is Append for an action whose record has a part only
// partnerID (and the operator) may read: details are public to both
// partners of the collaboration and commit to private, which is not.
// Use it for anything that depends on the acting partner's data (row
// counts, content hashes), which the other partner must not learn.
func AppendPrivate(ctx context.Context, tx *sql.Tx, actor, partnerID, collabID string, action audit.Action, details, private map[string]any) (audit.Entry, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return audit.Entry{}, fmt.Errorf("auditlog.AppendPrivate: %w", err)
	}
	// The exact time is the acting partner's alone; the entry's shared
	// time is whole seconds (appendRaw).
	now := time.Now().UTC()
	p := map[string]any{"nonce": hex.EncodeToString(nonce), "at": now.Format(time.RFC3339Nano)}
	for k, v := range private {
		p[k] = v
	}
	praw, err := json.Marshal(p)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("auditlog.AppendPrivate: %w", err)
	}
	sum := sha256.Sum256(praw)
	d := map[string]any{audit.PrivateCommitment: hex.EncodeToString(sum[:])}
	for k, v := range details {
		d[k] = v
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("auditlog.AppendPrivate: %w", err)
	}
	return appendRaw(ctx, tx, actor, partnerID, collabID, action, raw, praw, now)
}

func appendRaw(ctx context.Context, tx *sql.Tx, actor, partnerID, collabID string, action audit.Action, raw, private []byte, now time.Time) (audit.Entry, error) {
	var err error
	// Whole seconds: both partners (and the public, for some entries)
	// read an entry's time, and the gap between two entries must not time
	// work that depends on the other partner's data (a build, a deletion).
	// The work does the same steps whatever one person does; the grain is
	// a second line of defence. An entry with a private part keeps the
	// exact time there, for its own partner.
	e := audit.Entry{Actor: actor, PartnerID: partnerID, CollabID: collabID, Action: string(action), Details: raw, Private: private,
		At: now.UTC().Truncate(time.Second)}
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&e.Seq, &e.PrevHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		e.Seq, e.PrevHash = 0, audit.GenesisHash
	case err != nil:
		return audit.Entry{}, fmt.Errorf("auditlog.Append: %w", err)
	}
	e.Seq++
	e.Version = 2
	e.ContentHash = audit.ContentHash(&e)
	e.Hash = audit.Hash(&e)
	var priv any // NULL when there is no private part
	if private != nil {
		priv = string(private)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor, partner_id, collab_id, action, details, prev_hash, hash, private)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Seq, e.At, e.Actor, e.PartnerID, e.CollabID, e.Action, string(e.Details), e.PrevHash, e.Hash, priv)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("auditlog.Append: %w", err)
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
	Action   audit.Action
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

// List returns entries matching f in sequence order (newest first with
// f.Newest).
func List(ctx context.Context, q store.Querier, f Filter) ([]audit.Entry, error) {
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
		add("action = ?", string(f.Action))
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
		return nil, fmt.Errorf("auditlog.List: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var details string
		var private sql.NullString
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.PartnerID, &e.CollabID, &e.Action, &details, &e.PrevHash, &e.Hash, &private); err != nil {
			return nil, fmt.Errorf("auditlog.List: %w", err)
		}
		e.At = e.At.UTC()
		e.Details = json.RawMessage(details)
		if private.Valid {
			e.Private = json.RawMessage(private.String)
		}
		audit.InferVersion(&e)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Export writes every entry up to seq upto, in order, to emit. Entries
// outside the reader's partners (nil: every partner) are redacted to their
// place in the chain, so the reader can still verify the whole chain.
func Export(ctx context.Context, q store.Querier, readers []string, upto int64, emit func(*audit.Entry) error) error {
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
		return fmt.Errorf("auditlog.Export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e audit.Entry
		var details string
		var private sql.NullString
		var vis bool
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.PartnerID, &e.CollabID, &e.Action, &details, &e.PrevHash, &e.Hash, &private, &vis); err != nil {
			return fmt.Errorf("auditlog.Export: %w", err)
		}
		e.At, e.Details = e.At.UTC(), json.RawMessage(details)
		audit.InferVersion(&e)
		if vis {
			if private.Valid {
				e.Private = json.RawMessage(private.String)
			}
		} else {
			e = audit.Entry{Version: e.Version, Seq: e.Seq, PrevHash: e.PrevHash, ContentHash: e.ContentHash, Hash: e.Hash, Redacted: true}
		}
		if err := emit(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Count counts a collaboration's entries of one action in [since, until):
// how many times something was done, for reports.
func Count(ctx context.Context, q store.Querier, collabID string, action audit.Action, since, until time.Time) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE collab_id = ? AND action = ? AND at >= ? AND at < ?`,
		collabID, string(action), since.UTC(), until.UTC()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("auditlog.Count: %w", err)
	}
	return n, nil
}
