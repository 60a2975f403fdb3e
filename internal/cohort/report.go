package cohort

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The transparency report's sections over the tables this package owns
// (audiences, matches, receipts). Each depends only on what its reader
// may already know: the API decides who reads ConsentMix.

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

// ReportMatches returns the collaboration's matches, oldest first, with
// the noisy cohort sizes both partners saw (never the exact ones).
func (s *Service) ReportMatches(ctx context.Context, q store.Querier, collabID string) ([]wire.ReportMatch, error) {
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

// ReportDeletions counts the collaboration's deletion receipts by kind
// and partner, with the identifiers submitted: requests, never rows (how
// many cohort rows a deletion removed would tell whether the people
// matched).
func (s *Service) ReportDeletions(ctx context.Context, q store.Querier, collabID string) ([]wire.DeletionReceipts, error) {
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

// Honoured lists the collaboration's deletion receipts of partners (every
// partner's when nil) with how long each took to honour, in whole
// seconds: a partner's deletion timings are facts about its own data, so
// each partner reads only its own.
func (s *Service) Honoured(ctx context.Context, q store.Querier, collabID string, partners []string) ([]wire.HonouredDeletion, error) {
	return honoured(ctx, q, "collab_id = ?", []any{collabID}, partners)
}

// HonouredOf lists one partner's deletion receipts issued in [since,
// until), across its collaborations, as Honoured does.
func (s *Service) HonouredOf(ctx context.Context, q store.Querier, partnerID string, since, until time.Time) ([]wire.HonouredDeletion, error) {
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
		out = append(out, h)
	}
	return out, rows.Err()
}
