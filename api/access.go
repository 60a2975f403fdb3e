package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/query"
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
	rep := wire.Report{Collaboration: co, GeneratedAt: s.now().UTC(), DataHeld: []wire.HeldData{}}
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
	var own []string // nil: every partner's, for the operator
	if !p.IsOperator() {
		own = []string{p.PartnerID}
	}
	if rep.Honoured, err = s.co.Honoured(ctx, db, co.ID, own); err != nil {
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

// privacyReport is the partner's public privacy report: aggregates of its
// own use of its data over a period, for the people in it.
func (s *Server) privacyReport(c echo.Context) error {
	ctx := c.Request().Context()
	db := s.db.SQL()
	until, since := s.now().UTC(), time.Time{}
	for name, dst := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := c.QueryParam(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fmt.Errorf("%w: %s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", errs.Invalid, name, v)
			}
			*dst = t.UTC()
		}
	}
	if since.IsZero() {
		since = until.AddDate(-1, 0, 0)
	}
	if !since.Before(until) {
		return fmt.Errorf("%w: since: %s is not before until %s", errs.Invalid, since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	pa, err := partners.GetPartner(ctx, db, c.Param("pid"))
	if err != nil {
		return err
	}
	rep := wire.PrivacyReport{PartnerID: pa.ID, PartnerName: pa.Name, Since: since, Until: until, GeneratedAt: s.now().UTC(),
		Collaborations: []wire.PrivacyCollaboration{}}
	cs, err := partners.ListCollaborations(ctx, db, partners.Principal{PartnerID: pa.ID})
	if err != nil {
		return err
	}
	for _, co := range cs {
		// Those that existed in the period. (The operator's partner lists
		// every collaboration, and is in none.)
		if !co.HasMember(pa.ID) || !co.CreatedAt.Before(until) || co.State == wire.StateDeleted && co.UpdatedAt.Before(since) {
			continue
		}
		other := co.PartnerName
		if co.Partner == pa.ID {
			other = co.ProposerName
		}
		pc := wire.PrivacyCollaboration{Name: co.Name, PartnerName: other, Purpose: co.Rules.Purpose, State: co.State, Noise: co.Rules.Noise}
		total, err := ledger.CollaborationSpentBefore(ctx, db, co.ID, until)
		if err != nil {
			return err
		}
		pc.EpsilonSpent, pc.DeltaSpent = total.Epsilon(), total.Delta()
		if pc.Queries, err = audit.Count(ctx, db, co.ID, "query.run", since, until); err != nil {
			return err
		}
		if pc.Matches, err = audit.Count(ctx, db, co.ID, "match.complete", since, until); err != nil {
			return err
		}
		rep.Collaborations = append(rep.Collaborations, pc)
	}
	hs, err := s.co.HonouredOf(ctx, db, pa.ID, since, until)
	if err != nil {
		return err
	}
	var secs []int64
	for _, h := range hs {
		switch h.Kind {
		case wire.DeleteOptOut:
			rep.OptOutsHonoured++
		case wire.DeleteExpiry:
			rep.ExpiriesHonoured++
		default:
			rep.DeletionsHonoured++
		}
		rep.IdentifiersSubmitted += h.Identifiers
		secs = append(secs, h.Seconds)
	}
	if len(secs) > 0 {
		slices.Sort(secs)
		m := secs[len(secs)/2]
		if len(secs)%2 == 0 {
			m = (secs[len(secs)/2-1] + secs[len(secs)/2]) / 2
		}
		rep.MedianSecondsToHonour = &m
	}
	return c.JSON(http.StatusOK, rep)
}
