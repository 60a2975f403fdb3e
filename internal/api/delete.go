package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/partners"
	"github.com/cleanroom/cleanroom/psi"
)

// readPoints reads {"pids": [base64 points]}: identifiers blinded with the
// caller's key for this collaboration.
func readPoints(c echo.Context) ([]psi.Point, error) {
	var req struct {
		PIDs []string `json:"pids"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errorf(400, "invalid", "request body: want {\"pids\": [base64 blinded points]}: %v", err)
	}
	out := make([]psi.Point, len(req.PIDs))
	for i, s := range req.PIDs {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errorf(400, "invalid", "pids[%d]: not base64", i)
		}
		if out[i], err = psi.DecodePoint(b); err != nil {
			return nil, errorf(400, "invalid", "pids[%d]: %v", i, err)
		}
	}
	return out, nil
}

func (s *Server) deleteIDs(optOut bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, co, err := s.collab(c, partners.Engineer)
		if err != nil {
			return err
		}
		pids, err := readPoints(c)
		if err != nil {
			return err
		}
		r, err := s.co.DeleteIDs(c.Request().Context(), p, co, pids, optOut)
		if err != nil {
			return err
		}
		return c.JSON(200, r)
	}
}

func (s *Server) deleteAudience(c echo.Context) error {
	p, co, err := s.collab(c, partners.Engineer)
	if err != nil {
		return err
	}
	r, err := s.co.DeleteAudienceByID(c.Request().Context(), p, co, c.Param("aid"), cohort.DeleteAudience)
	if err != nil {
		return err
	}
	return c.JSON(200, r)
}

func (s *Server) deleteCollaboration(c echo.Context) error {
	p, co, err := s.collab(c, partners.Admin)
	if err != nil {
		return err
	}
	r, err := s.co.DeleteCollaboration(c.Request().Context(), p, co)
	if err != nil {
		return err
	}
	return c.JSON(200, r)
}
