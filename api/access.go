package api

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
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
		return errs.New(errs.Invalid, "pid: not base64")
	}
	pid, err := psi.DecodePoint(raw)
	if err != nil {
		return errs.New(errs.Invalid, "pid: %v", err)
	}
	out, err := s.deletions.AccessRequest(c.Request().Context(), principal(c), collabOf(c), c.QueryParam("key_fingerprint"), pid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// report is a collaboration's transparency report, as the reader may see
// it (package report decides what that is).
func (s *Server) report(c echo.Context) error {
	rep, err := s.reports.Collaboration(c.Request().Context(), principal(c), collabOf(c), s.now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

// privacyReport is the partner's public privacy report: aggregates of its
// own use of its data over a period, for the people in it.
func (s *Server) privacyReport(c echo.Context) error {
	until, since := s.now().UTC(), time.Time{}
	for name, dst := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := c.QueryParam(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errs.New(errs.Invalid, "%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", name, v)
			}
			*dst = t.UTC()
		}
	}
	if since.IsZero() {
		since = until.AddDate(-1, 0, 0)
	}
	if !since.Before(until) {
		return errs.New(errs.Invalid, "since: %s is not before until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	rep, err := s.reports.Privacy(c.Request().Context(), c.Param("pid"), since, until, s.now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

// putReportSettings sets what the partner's public privacy report says of
// it, in its admin's words.
func (s *Server) putReportSettings(c echo.Context) error {
	var set wire.ReportSettings
	if err := decodeJSON(c, &set, maxJSONBody, false); err != nil {
		return err
	}
	if err := s.reports.SetSettings(c.Request().Context(), principal(c), c.Param("pid"), set, s.now()); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, set)
}
