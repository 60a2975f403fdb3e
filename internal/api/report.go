package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/partners"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// accessRequest answers a data-subject request: given one identifier
// blinded with the caller's key, what the clean room holds of the
// caller's own data for it. Never whether the person matched.
func (s *Server) accessRequest(c echo.Context) error {
	p, co, err := s.collab(c, partners.Engineer, partners.Admin)
	if err != nil {
		return err
	}
	var req struct {
		PID string `json:"pid"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(req.PID)
	if err != nil {
		return errorf(400, "invalid", "pid: not base64")
	}
	pid, err := psi.DecodePoint(raw)
	if err != nil {
		return errorf(400, "invalid", "pid: %v", err)
	}
	out, err := s.co.AccessRequest(c.Request().Context(), p, co, pid)
	if err != nil {
		return err
	}
	return c.JSON(200, out)
}

// audienceView is an audience as viewer may see it: the other partner's
// only as far as that it exists, when, and its columns (which its
// analysts need); sizes and the content hash only to its own partner and
// the operator. listAudiences, the report and the audit log agree on this.
func audienceView(a cohort.Audience, viewer partners.Principal) wire.Audience {
	w := a.Audience
	if a.PartnerID != viewer.PartnerID && !viewer.IsOperator() {
		w = wire.Audience{ID: a.ID, CollabID: a.CollabID, PartnerID: a.PartnerID, Columns: a.Columns, CreatedAt: a.CreatedAt}
	}
	return w
}

// report is a collaboration's transparency report: what is held, what
// was done with it, and what was deleted. It tells each partner about the
// other's data only what the protocol already does: no exact sizes,
// consent mix or cohort counts; the noisy cohort sizes both saw are in it.
func (s *Server) report(c echo.Context) error {
	p, co, err := s.collab(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	db := s.db.SQL()
	rep := map[string]any{"collaboration": co, "generated_at": time.Now().UTC()}
	held := []map[string]any{}
	for _, member := range co.Members() {
		a, err := s.co.CurrentAudience(ctx, db, co.ID, member)
		if errors.Is(err, partners.ErrNotFound) {
			held = append(held, map[string]any{"partner_id": member, "audience": nil})
			continue
		}
		if err != nil {
			return err
		}
		v := map[string]any{"audience": audienceView(a, p), "partner_id": member}
		if a.PartnerID == p.PartnerID || p.IsOperator() {
			consent, err := store.QueryMaps(ctx, db, `SELECT purpose, count(*) AS rows FROM (SELECT unnest(consent) AS purpose FROM `+store.QuoteIdent(a.Table())+`) GROUP BY purpose ORDER BY purpose`)
			if err == nil { // an audience without a consent column has no mix
				v["consent_rows_by_purpose"] = consent
			}
		}
		held = append(held, v)
	}
	rep["data_held"] = held
	sections := map[string]string{
		"matches":            `SELECT id, state, noisy_size AS cohort_size_noisy, epsilon, created_at FROM matches WHERE collab_id = ? ORDER BY created_at`,
		"queries_by_analyst": `SELECT actor AS analyst_key, partner_id, count(*) AS queries, round(sum(CAST(json_extract(details, '$.epsilon') AS DOUBLE)), 6) AS epsilon FROM audit_log WHERE collab_id = ? AND action = 'query.run' GROUP BY ALL ORDER BY ALL`,
		// The ledger's exact units, shown in epsilon and delta.
		"budget_spent_by_day": `SELECT strftime(CAST(at AS DATE), '%Y-%m-%d') AS day, partner_id, kind, count(*) AS charges, sum(epsilon_units) / 1e6 AS epsilon, sum(delta_units) / 1e12 AS delta FROM budget_ledger WHERE collab_id = ? GROUP BY ALL ORDER BY ALL`,
		"refusals_by_reason":  `SELECT json_extract_string(details, '$.code') AS reason, count(*) AS refusals FROM audit_log WHERE collab_id = ? AND action = 'query.refused' GROUP BY ALL ORDER BY ALL`,
		// Requests, never rows: how many cohort rows a deletion removed
		// would tell whether the people matched.
		"deletions": `SELECT json_extract_string(body, '$.kind') AS kind, partner_id, count(*) AS receipts, sum(CAST(json_extract(body, '$.identifiers') AS BIGINT)) AS identifiers_submitted FROM receipts WHERE collab_id = ? GROUP BY ALL ORDER BY ALL`,
	}
	for name, q := range sections {
		rows, err := store.QueryMaps(ctx, db, q, co.ID)
		if err != nil {
			return fmt.Errorf("report %s: %w", name, err)
		}
		rep[name] = rows
	}
	// What a person in the cohort is exposed to: everything both partners
	// spent on this collaboration, matches included, over its life.
	total, err := ledger.CollaborationSpent(ctx, db, co.ID)
	if err != nil {
		return fmt.Errorf("report exposure: %w", err)
	}
	rep["exposure"] = map[string]any{"collaboration_epsilon_spent": total.Epsilon(), "collaboration_delta_spent": total.Delta()}
	return c.JSON(200, rep)
}

// listReceipts returns the caller's partner's deletion receipts (every
// partner's for the operator): a receipt describes its partner's own data.
func (s *Server) listReceipts(c echo.Context) error {
	p, co, err := s.collab(c)
	if err != nil {
		return err
	}
	partner := p.PartnerID
	if p.IsOperator() {
		partner = ""
	}
	out, err := s.co.Receipts(c.Request().Context(), co.ID, partner)
	if err != nil {
		return err
	}
	return c.JSON(200, map[string]any{"receipts": out})
}
