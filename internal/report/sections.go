package report

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The sections of the transparency and privacy reports read from the
// tables of matches, receipts and the ledger and from the audit log:
// each counts what its reader may already know.

// reportMatches returns the collaboration's matches, oldest first, with
// the noisy cohort sizes both partners saw (never the exact ones).
func reportMatches(ctx context.Context, q store.Querier, collabID string) ([]wire.ReportMatch, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, state, noisy_size, epsilon, created_at FROM matches WHERE collab_id = ? ORDER BY created_at, id`, collabID)
	if err != nil {
		return nil, fmt.Errorf("report matches: %w", err)
	}
	defer rows.Close()
	out := []wire.ReportMatch{}
	for rows.Next() {
		var m wire.ReportMatch
		if err := rows.Scan(&m.ID, &m.State, &m.CohortSizeNoisy, &m.Epsilon, &m.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// reportDeletions counts the collaboration's deletion receipts by kind
// and partner, with the identifiers submitted: requests, never rows (how
// many cohort rows a deletion removed would tell whether the people
// matched).
func reportDeletions(ctx context.Context, q store.Querier, collabID string) ([]wire.DeletionReceipts, error) {
	rows, err := q.QueryContext(ctx, `SELECT json_extract_string(body, '$.kind') AS kind, partner_id, count(*),
			coalesce(sum(CAST(json_extract(body, '$.identifiers') AS BIGINT)), 0)
		FROM receipts WHERE collab_id = ? GROUP BY ALL ORDER BY ALL`, collabID)
	if err != nil {
		return nil, fmt.Errorf("report deletions: %w", err)
	}
	defer rows.Close()
	out := []wire.DeletionReceipts{}
	for rows.Next() {
		var d wire.DeletionReceipts
		if err := rows.Scan(&d.Kind, &d.PartnerID, &d.Receipts, &d.IdentifiersSubmitted); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// honouredIn lists the collaboration's deletion receipts of partners (every
// partner's when nil) with how long each took to honour, in whole
// seconds: a partner's deletion timings are facts about its own data, so
// each partner reads only its own.
func honouredIn(ctx context.Context, q store.Querier, collabID string, partners []string) ([]wire.HonouredDeletion, error) {
	return honoured(ctx, q, "collab_id = ?", []any{collabID}, partners)
}

// honouredOf lists one partner's deletion receipts issued in [since,
// until), across its collaborations, as honoured does.
func honouredOf(ctx context.Context, q store.Querier, partnerID string, since, until time.Time) ([]wire.HonouredDeletion, error) {
	return honoured(ctx, q, "partner_id = ? AND created_at >= ? AND created_at < ?", []any{partnerID, since.UTC(), until.UTC()}, nil)
}

// honoured reads receipts matching where (and of partners, unless nil).
func honoured(ctx context.Context, q store.Querier, where string, args []any, partners []string) ([]wire.HonouredDeletion, error) {
	out := []wire.HonouredDeletion{}
	if partners != nil {
		if len(partners) == 0 {
			return out, nil
		}
		where += " AND partner_id IN (" + strings.TrimSuffix(strings.Repeat("?,", len(partners)), ",") + ")"
		for _, p := range partners {
			args = append(args, p)
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT CAST(body AS VARCHAR) FROM receipts WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("report honoured: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var r audit.Receipt
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, fmt.Errorf("report honoured: stored receipt: %w", err)
		}
		h := wire.HonouredDeletion{ReceiptID: r.ID, Kind: wire.DeletionKind(r.Kind), PartnerID: r.PartnerID, Identifiers: r.Identifiers,
			RequestedAt: r.At, HonouredAt: r.At}
		if r.RequestedAt != nil {
			h.RequestedAt = r.RequestedAt.UTC()
		}
		// Whole seconds: the work a deletion does depends on the rows it
		// removes, which finer timings would show.
		if d := h.HonouredAt.Sub(h.RequestedAt); d > 0 {
			h.Seconds = int64(d / time.Second)
		}
		h.Took = Duration(h.Seconds)
		out = append(out, h)
	}
	return out, rows.Err()
}

// The transparency report's sections over the audit entries this package
// writes: query.run for each released answer, query.refused for each
// refusal.

// queriesByAnalyst counts the answers released to each analyst key of the
// collaboration, with the epsilon they spent, each named apart.
func queriesByAnalyst(ctx context.Context, q store.Querier, collabID string) ([]wire.AnalystQueries, error) {
	rows, err := q.QueryContext(ctx, `SELECT l.actor, coalesce(k.label, ''), coalesce(k.role, ''), l.partner_id, count(*), round(sum(CAST(json_extract(l.details, '$.epsilon') AS DOUBLE)), 6)
		FROM audit_log l LEFT JOIN api_keys k ON k.id = l.actor
		WHERE l.collab_id = ? AND l.action = ? GROUP BY ALL ORDER BY ALL`, collabID, string(audit.QueryRun))
	if err != nil {
		return nil, fmt.Errorf("report: queries by analyst: %w", err)
	}
	defer rows.Close()
	out := []wire.AnalystQueries{}
	roles := map[string]string{}
	for rows.Next() {
		var a wire.AnalystQueries
		var role string
		if err := rows.Scan(&a.AnalystKey, &a.AnalystLabel, &role, &a.PartnerID, &a.Queries, &a.Epsilon); err != nil {
			return nil, err
		}
		roles[a.AnalystKey] = role
		out = append(out, a)
	}
	analystNames(out, roles)
	return out, rows.Err()
}

// refusalsByReason counts the collaboration's refused queries by code.
func refusalsByReason(ctx context.Context, q store.Querier, collabID string) ([]wire.ReasonRefusals, error) {
	rows, err := q.QueryContext(ctx, `SELECT json_extract_string(details, '$.code'), count(*)
		FROM audit_log WHERE collab_id = ? AND action = ? GROUP BY ALL ORDER BY ALL`, collabID, string(audit.QueryRefused))
	if err != nil {
		return nil, fmt.Errorf("report: refusals by reason: %w", err)
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

// spentByDay returns what each partner spent on the collaboration per day
// (UTC) and kind of charge, in epsilon and delta (the ledger's exact
// units, shown as numbers): the transparency report's budget section.
func spentByDay(ctx context.Context, q store.Querier, collabID string) ([]wire.DaySpend, error) {
	rows, err := q.QueryContext(ctx, `SELECT strftime(CAST(at AS DATE), '%Y-%m-%d') AS day, partner_id, kind, count(*),
			sum(epsilon_units) / 1e6, sum(delta_units) / 1e12
		FROM budget_ledger WHERE collab_id = ? GROUP BY ALL ORDER BY ALL`, collabID)
	if err != nil {
		return nil, fmt.Errorf("report: spent by day: %w", err)
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
