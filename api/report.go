package api

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/store"
)

// accessRequest answers a data-subject request: given one identifier
// blinded with the caller's key, what the clean room holds for it in this
// collaboration: the caller's own audience rows (attributes and consent),
// whether the person is in a cohort, and whether they opted out.
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
	ctx := c.Request().Context()
	out := map[string]any{"collab_id": co.ID, "partner_id": p.PartnerID, "rows": []map[string]any{}}
	var table, aid string
	err = s.db.SQL().QueryRowContext(ctx, `SELECT id, table_name FROM audiences WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL`, co.ID, p.PartnerID).Scan(&aid, &table)
	if err == nil {
		out["audience_id"] = aid
		rows, err := queryMaps(ctx, s.db.SQL(), `SELECT * EXCLUDE (pid) FROM `+store.QuoteIdent(table)+` WHERE pid = ?`, pid[:])
		if err != nil {
			return err
		}
		out["rows"] = rows
	} else if err != sql.ErrNoRows {
		return err
	}
	side := "a"
	if p.PartnerID == co.Partner {
		side = "b"
	}
	var inCohorts []string
	mids, err := store.QueryStrings(ctx, s.db.SQL(), `SELECT id FROM matches WHERE collab_id = ? AND state = 'done'`, co.ID)
	if err != nil {
		return err
	}
	for _, mid := range mids {
		var n int
		if err := s.db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM cpeople_`+mid+` WHERE pid_`+side+` = ?`, pid[:]).Scan(&n); err == nil && n > 0 {
			inCohorts = append(inCohorts, mid)
		}
	}
	out["in_cohorts"] = inCohorts
	var optedOut time.Time
	err = s.db.SQL().QueryRowContext(ctx, `SELECT min(at) FROM optouts WHERE collab_id = ? AND partner_id = ? AND pid = ?`, co.ID, p.PartnerID, pid[:]).Scan(&optedOut)
	out["opted_out"] = err == nil && !optedOut.IsZero()
	if err == nil && !optedOut.IsZero() {
		out["opted_out_at"] = optedOut
	}
	out["purpose"] = co.Rules.Purpose
	return c.JSON(200, out)
}

func queryMaps(ctx context.Context, db *sql.DB, q string, args ...any) ([]map[string]any, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := []map[string]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := map[string]any{}
		for i, c := range cols {
			m[c] = vals[i]
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// report is a collaboration's transparency report: what is held, what
// was done with it, and what was deleted. Exact cohort sizes are not in
// it; the noisy ones the parties saw are.
func (s *Server) report(c echo.Context) error {
	_, co, err := s.collab(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	db := s.db.SQL()
	rep := map[string]any{"collaboration": co, "generated_at": time.Now().UTC()}
	var held []map[string]any
	for _, member := range co.Members() {
		var aid, table, cols string
		var rows int64
		err := db.QueryRowContext(ctx, `SELECT id, table_name, rows, CAST(columns AS VARCHAR) FROM audiences WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL`,
			co.ID, member).Scan(&aid, &table, &rows, &cols)
		if err == sql.ErrNoRows {
			held = append(held, map[string]any{"partner_id": member, "audience": nil})
			continue
		}
		if err != nil {
			return err
		}
		entry := map[string]any{"partner_id": member, "audience_id": aid, "rows": rows, "columns": json.RawMessage(cols)}
		consent, err := queryMaps(ctx, db, `SELECT purpose, count(*) AS rows FROM (SELECT unnest(consent) AS purpose FROM `+table+`) GROUP BY purpose ORDER BY purpose`)
		if err == nil {
			entry["consent_rows_by_purpose"] = consent
		}
		held = append(held, entry)
	}
	rep["data_held"] = held
	sections := map[string]string{
		"matches":             `SELECT id, state, noisy_size AS cohort_size_noisy, epsilon, created_at FROM matches WHERE collab_id = ? ORDER BY created_at`,
		"queries_by_analyst":  `SELECT actor AS analyst_key, partner_id, count(*) AS queries, sum(CAST(json_extract(details, '$.epsilon') AS DOUBLE)) AS epsilon FROM audit_log WHERE collab_id = ? AND action = 'query.run' GROUP BY ALL ORDER BY ALL`,
		"budget_spent_by_day": `SELECT CAST(at AS DATE) AS day, partner_id, kind, sum(epsilon) AS epsilon FROM budget_ledger WHERE collab_id = ? GROUP BY ALL ORDER BY ALL`,
		"refusals_by_reason":  `SELECT json_extract_string(details, '$.code') AS reason, count(*) AS refusals FROM audit_log WHERE collab_id = ? AND action = 'query.refused' GROUP BY ALL ORDER BY ALL`,
		"deletions":           `SELECT json_extract_string(body, '$.kind') AS kind, count(*) AS receipts, sum(CAST(json_extract(body, '$.audience_rows') AS BIGINT)) AS audience_rows, sum(CAST(json_extract(body, '$.cohort_rows') AS BIGINT)) AS cohort_rows FROM receipts WHERE collab_id = ? GROUP BY ALL ORDER BY ALL`,
	}
	for name, q := range sections {
		rows, err := queryMaps(ctx, db, q, co.ID)
		if err != nil {
			return fmt.Errorf("report %s: %w", name, err)
		}
		rep[name] = rows
	}
	return c.JSON(200, rep)
}
