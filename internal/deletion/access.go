package deletion

import (
	"context"
	"database/sql"
	"errors"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// AccessRequest answers a data-subject request for one point blinded with
// the partner's key, and logs that it was asked (nothing of the answer
// reaches the other partner's auditors).
func (s *Service) AccessRequest(ctx context.Context, actor partners.Principal, c wire.Collaboration, pid psi.Point) (wire.Access, error) {
	out := wire.Access{CollabID: c.ID, PartnerID: actor.PartnerID, Purpose: c.Rules.Purpose, Rows: []map[string]any{}, Cohorts: wire.NotDisclosed}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		a, err := s.Cohorts.CurrentAudience(ctx, tx, c.ID, actor.PartnerID)
		switch {
		case err == nil:
			out.AudienceID = a.ID
			if out.Rows, err = s.Cohorts.PersonRows(ctx, tx, a, pid); err != nil {
				return err
			}
			for _, r := range out.Rows {
				if list, ok := r["consent"].([]any); ok {
					for _, p := range list {
						if p == c.Rules.Purpose {
							out.Matchable = true
						}
					}
				}
			}
		case !errors.Is(err, errs.NotFound):
			return err
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
			map[string]any{"audience_id": out.AudienceID, "rows": len(out.Rows), "opted_out": out.OptedOut})
		return err
	})
	return out, err
}
