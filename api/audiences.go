package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Audiences: each party's engineer uploads its blinded audience.

func (s *Server) upload(c echo.Context) error {
	format := cohort.ArrowStream
	switch ct := c.Request().Header.Get("Content-Type"); {
	case ct == "", strings.HasPrefix(ct, mtArrow), strings.HasPrefix(ct, "application/octet-stream"):
	case strings.HasPrefix(ct, mtParquet), strings.HasPrefix(ct, "application/x-parquet"):
		format = cohort.Parquet
	default:
		return errs.New(errs.UnsupportedMedia, "send the audience as an Arrow IPC stream (Content-Type: %s) or Parquet (%s); got %q", mtArrow, mtParquet, ct)
	}
	var retention time.Duration
	if v := c.QueryParam("retention"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errs.New(errs.Invalid, "retention: want a positive duration such as 720h, got %q", v)
		}
		retention = d
	}
	body := cohort.LimitReader(c.Request().Body, s.opts.MaxUploadBytes)
	a, err := s.co.Upload(c.Request().Context(), principal(c), collabOf(c), body, format, retention)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a.Audience)
}

func (s *Server) listAudiences(c echo.Context) error {
	p, co := principal(c), collabOf(c)
	out := wire.AudienceList{Audiences: map[string]wire.Audience{}}
	for _, member := range co.Members() {
		a, err := s.co.CurrentAudience(c.Request().Context(), s.db.SQL(), co.ID, member)
		if errors.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		out.Audiences[member] = audienceView(a, p)
	}
	return c.JSON(http.StatusOK, out)
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
