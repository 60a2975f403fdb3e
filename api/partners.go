package api

import (
	"database/sql"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Partners and their keys. The operator's admin creates a partner with
// its first admin key; every later key is that partner's admin's
// business (guard, and Service.CreateKey, refuse the operator).

func (s *Server) createPartner(c echo.Context) error {
	var req wire.CreatePartnerRequest
	if err := decodeJSON(c, &req, maxJSONBody, false); err != nil {
		return err
	}
	var out wire.CreatedPartner
	err := s.write(c, func(tx *sql.Tx) error {
		var err error
		out.Partner, out.AdminKey, out.Secret, err = s.partners.CreatePartner(c.Request().Context(), tx, principal(c), req.Name)
		return err
	})
	if err != nil {
		return err
	}
	out.Rotate = rotateFirstKey
	return c.JSON(http.StatusCreated, out)
}

// rotateFirstKey comes with every first admin key: the operator has seen
// its secret, and nothing else would ask the partner to replace it.
const rotateFirstKey = "The operator has seen this secret: give it to the partner's admin alone, who should replace it at once with a key only the partner knows: cleanroom keys rotate --key SECRET (or create an admin key, POST /v1/partners/{pid}/keys, and with it revoke this one, DELETE /v1/partners/{pid}/keys/{kid})."

func (s *Server) listPartners(c echo.Context) error {
	ps, err := partners.ListPartners(c.Request().Context(), s.db.SQL())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.PartnerList{Partners: ps})
}

func (s *Server) createKey(c echo.Context) error {
	var req wire.CreateKeyRequest
	if err := decodeJSON(c, &req, maxJSONBody, false); err != nil {
		return err
	}
	role, err := wire.ParseRole(string(req.Role))
	if err != nil {
		return errs.New(errs.Invalid, "%v", err)
	}
	var out wire.CreatedKey
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		out.Key, out.Secret, err = s.partners.CreateKey(c.Request().Context(), tx, principal(c), c.Param("pid"), role, req.Label)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listKeys(c echo.Context) error {
	keys, err := partners.ListKeys(c.Request().Context(), s.db.SQL(), principal(c), c.Param("pid"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.KeyList{Keys: keys})
}

func (s *Server) revokeKey(c echo.Context) error {
	var k wire.Key
	err := s.write(c, func(tx *sql.Tx) error {
		var err error
		k, err = s.partners.RevokeKey(c.Request().Context(), tx, principal(c), c.Param("pid"), c.Param("kid"))
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, k)
}

func (s *Server) me(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	k, err := partners.GetKey(ctx, s.db.SQL(), p.KeyID)
	if err != nil {
		return err
	}
	pa, err := partners.GetPartner(ctx, s.db.SQL(), p.PartnerID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.Me{KeyID: k.ID, Label: k.Label, Role: k.Role, PartnerID: pa.ID, PartnerName: pa.Name, Operator: p.IsOperator()})
}

// exposureCap reads the partner's cap on its people's exposure across
// its collaborations, and what counts against it now.
func (s *Server) exposureCap(c echo.Context) error {
	out, err := partners.ExposureCap(c.Request().Context(), s.db.SQL(), principal(c), c.Param("pid"), s.now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// setExposureCap sets (or removes) the partner's exposure cap; its admin
// only.
func (s *Server) setExposureCap(c echo.Context) error {
	var req wire.ExposureCapRequest
	if err := decodeJSON(c, &req, maxJSONBody, false); err != nil {
		return err
	}
	var out wire.ExposureCap
	err := s.write(c, func(tx *sql.Tx) error {
		var err error
		out, err = s.partners.SetExposureCap(c.Request().Context(), tx, principal(c), c.Param("pid"), req)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
