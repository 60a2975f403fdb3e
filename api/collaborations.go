package api

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/query"
	"github.com/cleanroom/cleanroom/wire"
)

// Collaborations: one partner's admin proposes with rules, the other's
// approves; any change of rules needs both again.

// rulesRequest is the body of PUT .../rules: rules JSON over the
// defaults, every field optional, unknown fields refused. Its own type so
// that the OpenAPI document says so (the Rules a collaboration answers
// with has every field).
type rulesRequest wire.Rules

func (s *Server) propose(c echo.Context) error {
	var req wire.ProposeRequest
	body, err := decodeJSONBody(c, &req, maxJSONBody, false)
	if err != nil {
		return err
	}
	rules, err := partners.ParseRules(req.Rules)
	if err != nil {
		return inBody(err, body, req.Rules)
	}
	var co wire.Collaboration
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		co, err = s.partners.Propose(c.Request().Context(), tx, principal(c), req.Name, req.Partner, rules)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, co)
}

// inBody places a rules error at its line and column in the request body
// that holds the rules (a person reads the body, not the field), saying
// it is in the rules.
func inBody(err error, body, rules []byte) error {
	var je *wire.JSONError
	off := bytes.Index(body, rules)
	if !errors.As(err, &je) || off < 0 {
		return err
	}
	at := je.Shift(body, int64(off))
	return errs.New(errs.InvalidRules, "rules: request body: line %d, column %d: %s", at.Line, at.Column, at.What)
}

func (s *Server) listCollabs(c echo.Context) error {
	cs, err := partners.ListCollaborations(c.Request().Context(), s.db.SQL(), principal(c))
	if err != nil {
		return err
	}
	for i := range cs {
		if err := s.queryable(c.Request().Context(), &cs[i]); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, wire.CollaborationList{Collaborations: cs})
}

func (s *Server) getCollab(c echo.Context) error {
	co := collabOf(c)
	if err := s.queryable(c.Request().Context(), &co); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, co)
}

// queryable fills in what co's analysts may name under its rules. Rules
// stored before colliding column names were refused have no such list,
// yet the collaboration stays readable, so that its admins can change
// them; its queries and matches are refused naming both columns.
func (s *Server) queryable(ctx context.Context, co *wire.Collaboration) error {
	dims, metrics, err := query.Allowed(ctx, s.db.SQL(), *co)
	if errors.Is(err, errs.Conflict) {
		return nil
	}
	if err != nil {
		return err
	}
	dims = append([]string{}, dims...)
	slices.Sort(dims)
	co.Queryable = &wire.Queryable{Dimensions: slices.Compact(dims), Metrics: metrics, Templates: co.Rules.AllTemplates()}
	return nil
}

func (s *Server) changeRules(c echo.Context) error {
	// The body is the rules: parsed once, so that a mistake is placed
	// in it as a rules error.
	body, err := readBody(c, maxJSONBody)
	if err != nil {
		return err
	}
	if body == nil {
		return errs.New(errs.Invalid, "the request body is empty; send the rules as a JSON object")
	}
	rules, err := partners.ParseRules(body)
	if err != nil {
		return inBody(err, body, body)
	}
	co := collabOf(c)
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		co, err = s.partners.ChangeRules(c.Request().Context(), tx, principal(c), co.ID, rules)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, co)
}

func (s *Server) approve(c echo.Context) error { return s.decide(c, s.partners.Approve) }

func (s *Server) reject(c echo.Context) error { return s.decide(c, s.partners.Reject) }

// decide answers a partner's approval or rejection of the current rules,
// with an optional rules_version to guard against a change since read.
func (s *Server) decide(c echo.Context, fn func(context.Context, *sql.Tx, partners.Principal, string, int) (wire.Collaboration, error)) error {
	var req wire.ApproveRequest
	if err := decodeJSON(c, &req, maxJSONBody, true); err != nil {
		return err
	}
	co := collabOf(c)
	err := s.write(c, func(tx *sql.Tx) error {
		var err error
		co, err = fn(c.Request().Context(), tx, principal(c), co.ID, req.RulesVersion)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, co)
}
