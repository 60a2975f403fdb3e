package cohort

import (
	"context"
	"fmt"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The consent mix, the one section of the transparency report that needs
// an audience's own table; internal/report holds the others and decides
// who reads this one.

// ConsentMix returns how many of the audience's rows carry each consent
// purpose, by purpose; nil when the audience has no consent column. It is
// a fact about the audience's owner's data: only that partner and the
// operator may read it.
func (s *Service) ConsentMix(ctx context.Context, q store.Querier, a Audience) ([]wire.PurposeRows, error) {
	if has, err := a.hasColumn(audience.ConsentColumn); err != nil || !has {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT purpose, count(*) FROM (SELECT unnest(consent) AS purpose FROM `+store.QuoteIdent(a.table)+`) GROUP BY purpose ORDER BY purpose`)
	if err != nil {
		return nil, fmt.Errorf("consent mix: %w", err)
	}
	defer rows.Close()
	out := []wire.PurposeRows{}
	for rows.Next() {
		var p wire.PurposeRows
		if err := rows.Scan(&p.Purpose, &p.Rows); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
