package deletion

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// AccessRequest answers a data-subject request for one point blinded with
// the partner's key, and logs that it was asked (nothing of the answer
// reaches the other partner's auditors). keyFingerprint is checked as
// DeleteIDs checks it.
func (s *Service) AccessRequest(ctx context.Context, actor partners.Principal, c wire.Collaboration, keyFingerprint string, pid psi.Point) (wire.Access, error) {
	out := wire.Access{CollabID: c.ID, PartnerID: actor.PartnerID, Purpose: c.Rules.Purpose, Rows: []map[string]any{},
		Tables: map[string][]map[string]any{}, Cohorts: wire.NotDisclosed}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := s.Cohorts.CheckIdentifiersKey(ctx, tx, c.ID, actor.PartnerID, keyFingerprint); err != nil {
			return err
		}
		tables, err := s.Cohorts.CurrentTables(ctx, tx, c.ID, actor.PartnerID)
		if err != nil {
			return err
		}
		rowsByTable := map[string]int{}
		for _, a := range tables {
			rows, err := s.Cohorts.PersonRows(ctx, tx, a, pid)
			if err != nil {
				return err
			}
			out.Tables[a.Table] = rows
			rowsByTable[a.Table] = len(rows)
			if a.Table == wire.DefaultTable {
				out.AudienceID, out.Rows = a.ID, rows
			}
			// One consented row in any of the party's tables lets all
			// their rows take part.
			for _, r := range rows {
				if list, ok := r["consent"].([]any); ok {
					for _, p := range list {
						if p == c.Rules.Purpose {
							out.Matchable = true
						}
					}
				}
			}
		}
		var at sql.NullTime
		if err := tx.QueryRowContext(ctx, `SELECT min(at) FROM optouts WHERE collab_id = ? AND partner_id = ? AND pid = ?`,
			c.ID, actor.PartnerID, pid[:]).Scan(&at); err != nil {
			return err
		}
		if at.Valid {
			t := at.Time.UTC()
			out.OptedOut, out.OptedOutAt, out.Matchable = true, &t, false
		}
		_, err = auditlog.AppendPrivate(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.AccessRequest, map[string]any{},
			map[string]any{"audience_id": out.AudienceID, "rows": len(out.Rows), "table_rows": rowsByTable, "opted_out": out.OptedOut})
		return err
	})
	return out, err
}

// AccessRequests lists the access requests partnerID's keys made in the
// collaboration (every partner's for "", the operator), newest first, at
// most limit, from their audit entries' private parts: what a partner's
// own request found of its own data, which only it (and the operator)
// reads.
func (s *Service) AccessRequests(ctx context.Context, collabID, partnerID string, limit int) ([]wire.AccessRequestRecord, error) {
	rows, err := s.DB.SQL().QueryContext(ctx, `SELECT l.seq, l.at, l.partner_id, l.actor, coalesce(k.label, ''), CAST(l.private AS VARCHAR)
		FROM audit_log l LEFT JOIN api_keys k ON k.id = l.actor AND k.partner_id = l.partner_id
		WHERE l.collab_id = ? AND l.action = ? AND (? = '' OR l.partner_id = ?)
		ORDER BY l.seq DESC LIMIT ?`, collabID, string(audit.AccessRequest), partnerID, partnerID, limit)
	if err != nil {
		return nil, fmt.Errorf("deletion.AccessRequests: %w", err)
	}
	defer rows.Close()
	out := []wire.AccessRequestRecord{}
	for rows.Next() {
		var r wire.AccessRequestRecord
		var private sql.NullString
		if err := rows.Scan(&r.AuditSeq, &r.At, &r.PartnerID, &r.KeyID, &r.KeyLabel, &private); err != nil {
			return nil, fmt.Errorf("deletion.AccessRequests: %w", err)
		}
		r.At = r.At.UTC()
		var p struct {
			Rows      int64            `json:"rows"`
			TableRows map[string]int64 `json:"table_rows"`
			OptedOut  bool             `json:"opted_out"`
		}
		if private.Valid {
			if err := json.Unmarshal([]byte(private.String), &p); err != nil {
				return nil, fmt.Errorf("deletion.AccessRequests: entry %d: %w", r.AuditSeq, err)
			}
		}
		r.TableRows, r.OptedOut = p.TableRows, p.OptedOut
		if r.TableRows == nil {
			r.TableRows = map[string]int64{}
		}
		// Entries before named tables counted the one table's rows only.
		for _, n := range r.TableRows {
			r.Rows += n
		}
		if len(r.TableRows) == 0 {
			r.Rows = p.Rows
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
