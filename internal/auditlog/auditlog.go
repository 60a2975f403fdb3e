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
	// CollabIDs and Actors match any of theirs (nil: any).
	CollabIDs []string
	Actors    []string
	// Action matches that action and those it prefixes at a dot: "query"
	// matches query.run and query.refused, never queryx.run.
	Action   audit.Action
	Since    time.Time
	Until    time.Time
	AfterSeq int64 // paging: entries with seq > AfterSeq
	// BeforeSeq pages back: entries with seq < BeforeSeq (0: no bound).
	BeforeSeq int64
	// Newest lists newest first, for a timeline.
	Newest bool
	// Offset skips that many entries, for jumping to a page.
	Offset int
	Limit  int // List: default 1000, at most 10000; Each: 0 is no limit
}

// visibleTo is the condition on audit_log rows that partners may read:
// their own actions and everything about their collaborations.
func visibleTo(partners []string) (string, []any) {
	if len(partners) == 0 {
		return "FALSE", nil
	}
	ph := placeholders(len(partners))
	var args []any
	for i := 0; i < 3; i++ {
		for _, p := range partners {
			args = append(args, p)
		}
	}
	return `(partner_id IN (` + ph + `) OR collab_id IN (SELECT id FROM collaborations WHERE proposer IN (` + ph + `) OR partner IN (` + ph + `)))`, args
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
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
	return `CASE WHEN partner_id IN (` + placeholders(len(partners)) + `) THEN CAST(private AS VARCHAR) END`, anys(partners)
}

// where is f's condition, paging aside (after, before, offset, limit).
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.Partners != nil {
		cond, cargs := visibleTo(f.Partners)
		conds, args = append(conds, cond), append(args, cargs...)
	}
	add := func(cond string, v ...any) {
		conds = append(conds, cond)
		args = append(args, v...)
	}
	if f.CollabIDs != nil {
		if len(f.CollabIDs) == 0 {
			add("FALSE")
		} else {
			add("collab_id IN ("+placeholders(len(f.CollabIDs))+")", anys(f.CollabIDs)...)
		}
	}
	if f.Actors != nil {
		if len(f.Actors) == 0 {
			add("FALSE")
		} else {
			add("actor IN ("+placeholders(len(f.Actors))+")", anys(f.Actors)...)
		}
	}
	if f.Action != "" {
		// starts_with, not LIKE: an action's underscore is no wildcard.
		add("(action = ? OR starts_with(action, ?))", string(f.Action), string(f.Action)+".")
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UTC())
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), args
}

// List returns entries matching f in sequence order (newest first with
// f.Newest).
func List(ctx context.Context, q store.Querier, f Filter) ([]audit.Entry, error) {
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 1000
	}
	var out []audit.Entry
	err := Each(ctx, q, f, func(e *audit.Entry) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}

// Each streams the entries matching f to emit, in List's order, with no
// limit unless f sets one: a CSV of a whole filtered log never sits in
// memory.
func Each(ctx context.Context, q store.Querier, f Filter, emit func(*audit.Entry) error) error {
	if f.Partners != nil && len(f.Partners) == 0 {
		return nil
	}
	cond, args := f.where()
	if f.AfterSeq > 0 {
		cond, args = cond+" AND seq > ?", append(args, f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		cond, args = cond+" AND seq < ?", append(args, f.BeforeSeq)
	}
	pexpr, pargs := privateTo(f.Partners)
	args = append(pargs, args...)
	query := `SELECT seq, at, actor, partner_id, collab_id, action, CAST(details AS VARCHAR), prev_hash, hash, ` + pexpr + ` FROM audit_log WHERE ` + cond
	order := "seq"
	if f.Newest {
		order = "seq DESC"
	}
	query += " ORDER BY " + order
	if f.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	if f.Offset > 0 {
		query += fmt.Sprintf(" OFFSET %d", f.Offset)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("auditlog.Each: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e audit.Entry
		var details string
		var private sql.NullString
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.PartnerID, &e.CollabID, &e.Action, &details, &e.PrevHash, &e.Hash, &private); err != nil {
			return fmt.Errorf("auditlog.Each: %w", err)
		}
		e.At = e.At.UTC()
		e.Details = json.RawMessage(details)
		if private.Valid {
			e.Private = json.RawMessage(private.String)
		}
		audit.InferVersion(&e)
		if err := emit(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Total counts the entries f matches on every page: its filters, not its
// paging (after, before, offset, limit).
func Total(ctx context.Context, q store.Querier, f Filter) (int64, error) {
	if f.Partners != nil && len(f.Partners) == 0 {
		return 0, nil
	}
	cond, args := f.where()
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE `+cond, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("auditlog.Total: %w", err)
	}
	return n, nil
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
