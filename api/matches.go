package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/cohort"
)

// Matches: both parties' engineers run their half of the PSI protocol.

func (s *Server) startMatch(c echo.Context) error {
	p, co := principal(c), collabOf(c)
	m, created, err := s.cohorts.StartMatch(c.Request().Context(), p, co, c.QueryParam("key_fingerprint"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, m.For(co, p.PartnerID))
}

// match is the path's match, of the path's collaboration.
func (s *Server) match(c echo.Context) (cohort.Match, error) {
	return s.cohorts.GetMatch(c.Request().Context(), s.db.SQL(), collabOf(c).ID, c.Param("mid"))
}

func (s *Server) getMatch(c echo.Context) error {
	m, err := s.match(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m.For(collabOf(c), principal(c).PartnerID))
}

func (s *Server) getPoints(c echo.Context) error {
	m, err := s.match(c)
	if err != nil {
		return err
	}
	// The status is sent with the first bytes, so a refusal found before
	// any (a stale match) still reaches the client as an error.
	return s.cohorts.Points(c.Request().Context(), collabOf(c), m, principal(c).PartnerID, &lazyStream{c: c})
}

// lazyStream sends a 200 Arrow stream's headers on its first write.
type lazyStream struct {
	c       echo.Context
	started bool
}

func (l *lazyStream) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.c.Response().Header().Set("Content-Type", mtArrow)
		l.c.Response().WriteHeader(http.StatusOK)
	}
	return l.c.Response().Write(b)
}

func (s *Server) putPoints(c echo.Context) error {
	m, err := s.match(c)
	if err != nil {
		return err
	}
	p, co := principal(c), collabOf(c)
	m, err = s.cohorts.PutPoints(c.Request().Context(), p, co, m, c.QueryParam("key_fingerprint"), cohort.LimitReader(c.Request().Body, s.opts.MaxUploadBytes))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m.For(co, p.PartnerID))
}
