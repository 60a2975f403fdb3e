package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// Deletions and their receipts: what was deleted of the caller's own data,
// signed by the server, readable by that partner and the operator only.

// readPoints reads {"pids": [base64 points]}: identifiers blinded with the
// caller's key for this collaboration.
func readPoints(c echo.Context) ([]psi.Point, error) {
	var req wire.IdentifiersRequest
	if err := decodeJSON(c, &req, maxIdentifiersBody, false); err != nil {
		return nil, err
	}
	out := make([]psi.Point, len(req.PIDs))
	for i, s := range req.PIDs {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errs.New(errs.Invalid, "pids[%d]: not base64", i)
		}
		if out[i], err = psi.DecodePoint(b); err != nil {
			return nil, errs.New(errs.Invalid, "pids[%d]: %v", i, err)
		}
	}
	return out, nil
}

func (s *Server) deleteIDs(optOut bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		pids, err := readPoints(c)
		if err != nil {
			return err
		}
		r, err := s.deletions.DeleteIDs(c.Request().Context(), principal(c), collabOf(c), c.QueryParam("key_fingerprint"), pids, optOut)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, r)
	}
}

func (s *Server) deleteAudience(c echo.Context) error {
	r, err := s.deletions.DeleteAudienceByID(c.Request().Context(), principal(c), collabOf(c), c.Param("aid"), wire.DeleteAudience)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) deleteCollaboration(c echo.Context) error {
	r, err := s.deletions.DeleteCollaboration(c.Request().Context(), principal(c), collabOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// listReceipts returns the caller's partner's deletion receipts (every
// partner's for the operator): a receipt describes its partner's own data.
// listAccessRequests answers the caller's partner's own access requests
// (every partner's for the operator): what each found of that partner's
// own data.
func (s *Server) listAccessRequests(c echo.Context) error {
	p := principal(c)
	partner := p.PartnerID
	if p.IsOperator() {
		partner = ""
	}
	out, err := s.deletions.AccessRequests(c.Request().Context(), collabOf(c).ID, partner, 1000)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.AccessRequestList{AccessRequests: out})
}

func (s *Server) listReceipts(c echo.Context) error {
	p := principal(c)
	partner := p.PartnerID
	if p.IsOperator() {
		partner = ""
	}
	out, err := s.deletions.Receipts(c.Request().Context(), collabOf(c).ID, partner)
	if err != nil {
		return err
	}
	if out == nil {
		out = []json.RawMessage{}
	}
	return c.JSON(http.StatusOK, wire.ReceiptList{Receipts: out})
}
