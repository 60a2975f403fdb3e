package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/query"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// Transparency: access requests (what is held for one person) and the
// collaboration's report.

// accessRequest answers a data-subject request: given one identifier
// blinded with the caller's key, what the clean room holds of the
// caller's own data for it. Never whether the person matched.
func (s *Server) accessRequest(c echo.Context) error {
	var req wire.AccessRequest
	if err := decodeJSON(c, &req, maxJSONBody, false); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(req.PID)
	if err != nil {
		return fmt.Errorf("%w: pid: not base64", errs.Invalid)
	}
	pid, err := psi.DecodePoint(raw)
	if err != nil {
		return fmt.Errorf("%w: pid: %v", errs.Invalid, err)
	}
	out, err := s.co.AccessRequest(c.Request().Context(), principal(c), collabOf(c), pid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// report is a collaboration's transparency report: what is held, what
// was done with it, and what was deleted. It tells each partner about the
// other's data only what the protocol already does: no exact sizes,
// consent mix or cohort counts; the noisy cohort sizes both saw are in it.
// Each section comes from the package that owns its table.
func (s *Server) report(c echo.Context) error {
	p, co := principal(c), collabOf(c)
	ctx := c.Request().Context()
	db := s.db.SQL()
	rep := wire.Report{Collaboration: co, GeneratedAt: time.Now().UTC(), DataHeld: []wire.HeldData{}}
	for _, member := range co.Members() {
		held := wire.HeldData{PartnerID: member}
		a, err := s.co.CurrentAudience(ctx, db, co.ID, member)
		if errors.Is(err, errs.NotFound) {
			rep.DataHeld = append(rep.DataHeld, held)
			continue
		}
		if err != nil {
			return err
		}
		view := audienceView(a, p)
		held.Audience = &view
		if a.PartnerID == p.PartnerID || p.IsOperator() {
			if held.ConsentRowsByPurpose, err = s.co.ConsentMix(ctx, db, a); err != nil {
				return err
			}
		}
		rep.DataHeld = append(rep.DataHeld, held)
	}
	var err error
	if rep.Matches, err = s.co.ReportMatches(ctx, db, co.ID); err != nil {
		return err
	}
	if rep.QueriesByAnalyst, err = query.QueriesByAnalyst(ctx, db, co.ID); err != nil {
		return err
	}
	if rep.BudgetSpentByDay, err = ledger.SpentByDay(ctx, db, co.ID); err != nil {
		return err
	}
	if rep.RefusalsByReason, err = query.RefusalsByReason(ctx, db, co.ID); err != nil {
		return err
	}
	if rep.Deletions, err = s.co.ReportDeletions(ctx, db, co.ID); err != nil {
		return err
	}
	// What a person in the cohort is exposed to: everything both partners
	// spent on this collaboration, matches included, over its life.
	total, err := ledger.CollaborationSpent(ctx, db, co.ID)
	if err != nil {
		return fmt.Errorf("report exposure: %w", err)
	}
	rep.Exposure = wire.Exposure{CollaborationEpsilonSpent: total.Epsilon(), CollaborationDeltaSpent: total.Delta()}
	return c.JSON(http.StatusOK, rep)
}
