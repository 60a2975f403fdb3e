package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/errs"
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
	o := cohort.UploadOptions{Table: c.QueryParam("table"), Format: format, KeyFingerprint: c.QueryParam("key_fingerprint")}
	if v := c.QueryParam("retention"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errs.New(errs.Invalid, "retention: want a positive duration such as 720h, got %q", v)
		}
		o.Retention = d
	}
	var err error
	if o.Replace, err = boolParam(c, "replace"); err != nil {
		return err
	}
	if o.DryRun, err = boolParam(c, "dry_run"); err != nil {
		return err
	}
	body := cohort.LimitReader(c.Request().Body, s.opts.MaxUploadBytes)
	a, err := s.cohorts.Upload(c.Request().Context(), principal(c), collabOf(c), body, o)
	if err != nil {
		return err
	}
	if o.DryRun {
		return c.JSON(http.StatusOK, a.Audience)
	}
	return c.JSON(http.StatusCreated, a.Audience)
}

// boolParam reads a query parameter that is true or false (absent: false).
func boolParam(c echo.Context, name string) (bool, error) {
	switch v := c.QueryParam(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, errs.New(errs.Invalid, "%s: want true or false, got %q", name, v)
	}
}

func (s *Server) listAudiences(c echo.Context) error {
	p, co := principal(c), collabOf(c)
	out := wire.AudienceList{Audiences: map[string]wire.Audience{}, Tables: map[string][]wire.Audience{}}
	for _, member := range co.Members() {
		tables, err := s.cohorts.CurrentTables(c.Request().Context(), s.db.SQL(), co.ID, member)
		if err != nil {
			return err
		}
		for _, a := range tables {
			out.Tables[member] = append(out.Tables[member], a.ViewFor(p))
			if a.Table == wire.DefaultTable {
				out.Audiences[member] = a.ViewFor(p)
			}
		}
	}
	return c.JSON(http.StatusOK, out)
}
