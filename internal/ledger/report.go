package ledger

import (
	"context"
	"fmt"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// SpentByDay returns what each partner spent on the collaboration per day
// (UTC) and kind of charge, in epsilon and delta (the ledger's exact
// units, shown as numbers): the transparency report's budget section.
func SpentByDay(ctx context.Context, q store.Querier, collabID string) ([]wire.DaySpend, error) {
	rows, err := q.QueryContext(ctx, `SELECT strftime(CAST(at AS DATE), '%Y-%m-%d') AS day, partner_id, kind, count(*),
			sum(epsilon_units) / 1e6, sum(delta_units) / 1e12
		FROM budget_ledger WHERE collab_id = ? GROUP BY ALL ORDER BY ALL`, collabID)
	if err != nil {
		return nil, fmt.Errorf("ledger.SpentByDay: %w", err)
	}
	defer rows.Close()
	out := []wire.DaySpend{}
	for rows.Next() {
		var d wire.DaySpend
		if err := rows.Scan(&d.Day, &d.PartnerID, &d.Kind, &d.Charges, &d.Epsilon, &d.Delta); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
