package query

import (
	"context"
	"fmt"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The transparency report's sections over the audit entries this package
// writes: query.run for each released answer, query.refused for each
// refusal.

// QueriesByAnalyst counts the answers released to each analyst key of the
// collaboration, with the epsilon they spent.
func QueriesByAnalyst(ctx context.Context, q store.Querier, collabID string) ([]wire.AnalystQueries, error) {
	rows, err := q.QueryContext(ctx, `SELECT actor, partner_id, count(*), round(sum(CAST(json_extract(details, '$.epsilon') AS DOUBLE)), 6)
		FROM audit_log WHERE collab_id = ? AND action = 'query.run' GROUP BY ALL ORDER BY ALL`, collabID)
	if err != nil {
		return nil, fmt.Errorf("query.QueriesByAnalyst: %w", err)
	}
	defer rows.Close()
	out := []wire.AnalystQueries{}
	for rows.Next() {
		var a wire.AnalystQueries
		if err := rows.Scan(&a.AnalystKey, &a.PartnerID, &a.Queries, &a.Epsilon); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RefusalsByReason counts the collaboration's refused queries by code.
func RefusalsByReason(ctx context.Context, q store.Querier, collabID string) ([]wire.ReasonRefusals, error) {
	rows, err := q.QueryContext(ctx, `SELECT json_extract_string(details, '$.code'), count(*)
		FROM audit_log WHERE collab_id = ? AND action = 'query.refused' GROUP BY ALL ORDER BY ALL`, collabID)
	if err != nil {
		return nil, fmt.Errorf("query.RefusalsByReason: %w", err)
	}
	defer rows.Close()
	out := []wire.ReasonRefusals{}
	for rows.Next() {
		var r wire.ReasonRefusals
		if err := rows.Scan(&r.Reason, &r.Refusals); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
