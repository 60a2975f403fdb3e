package deletion

import (
	"context"
	"database/sql"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// AccessRequest answers a data-subject request for one point blinded with
// the partner's key, and logs that it was asked (nothing of the answer
// reaches the other partner's auditors).
func (s *Service) AccessRequest(ctx context.Context, actor partners.Principal, c wire.Collaboration, pid psi.Point) (wire.Access, error) {
	out := wire.Access{CollabID: c.ID, PartnerID: actor.PartnerID, Purpose: c.Rules.Purpose, Rows: []map[string]any{},
		Tables: map[string][]map[string]any{}, Cohorts: wire.NotDisclosed}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
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
