package query

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// History is one analyst key's own questions in a collaboration, newest
// first: what it was answered, served from the cache, or refused.
func History(ctx context.Context, q store.Querier, collabID, keyID string, limit int) ([]wire.QueryRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, at, action, CAST(details AS VARCHAR) FROM audit_log
		WHERE collab_id = ? AND actor = ? AND action IN (?, ?, ?)
		ORDER BY seq DESC LIMIT ?`, collabID, keyID, string(audit.QueryRun), string(audit.QueryCached), string(audit.QueryRefused), limit)
	if err != nil {
		return nil, fmt.Errorf("query.History: %w", err)
	}
	defer rows.Close()
	out := []wire.QueryRecord{}
	for rows.Next() {
		var r wire.QueryRecord
		var action, details string
		if err := rows.Scan(&r.AuditSeq, &r.At, &action, &details); err != nil {
			return nil, err
		}
		var d struct {
			SQL     string         `json:"sql"`
			Epsilon float64        `json:"epsilon"`
			Delta   float64        `json:"delta"`
			Rows    int            `json:"rows"`
			Code    wire.ErrorCode `json:"code"`
			Reason  string         `json:"reason"`
		}
		if err := json.Unmarshal([]byte(details), &d); err != nil {
			return nil, fmt.Errorf("query.History: entry %d: %w", r.AuditSeq, err)
		}
		r.At, r.SQL, r.Epsilon = r.At.UTC(), d.SQL, d.Epsilon
		switch audit.Action(action) {
		case audit.QueryRun:
			r.Outcome, r.Delta, r.Rows = wire.OutcomeAnswered, d.Delta, d.Rows
		case audit.QueryCached:
			r.Outcome = wire.OutcomeCached
		default:
			r.Outcome, r.Code, r.Reason = wire.OutcomeRefused, d.Code, d.Reason
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
