package api

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// role is who calls a route: a partner's key by its role, or the
// operator's admin key (the server's own partner, whose key the first
// start writes).
type role string

const (
	roleAdmin    = role(wire.Admin)
	roleEngineer = role(wire.Engineer)
	roleAnalyst  = role(wire.Analyst)
	roleAuditor  = role(wire.Auditor)
	roleOperator = role("operator")
)

// roles lists every role, in the order the OpenAPI document names them.
var roles = []role{roleAdmin, roleEngineer, roleAnalyst, roleAuditor, roleOperator}

// anyMember is every role of a partner's key.
var anyMember = []role{roleAdmin, roleEngineer, roleAnalyst, roleAuditor}

// roleOf is the role a principal calls with. The operator's keys other
// than its admin's (which no route mints any more) have none of the
// roles, and are refused everywhere.
func roleOf(p partners.Principal) role {
	if p.IsOperator() {
		if p.Role == wire.Admin {
			return roleOperator
		}
		return role("operator " + string(p.Role))
	}
	return role(p.Role)
}

func (r role) describe() string {
	if r == roleOperator {
		return "the operator's admin key"
	}
	return string(r)
}

// scope is what a route's path names that the caller must take part in.
type scope int

const (
	scopeNone scope = iota
	// scopePartner: the path's {pid} must be the key's own partner.
	scopePartner
	// scopeCollab: the path's {cid} must be a collaboration of the key's
	// partner (any collaboration, for the operator).
	scopeCollab
)

func (s scope) String() string {
	switch s {
	case scopePartner:
		return "partner"
	case scopeCollab:
		return "collaboration"
	}
	return "none"
}

const (
	principalKey = "principal"
	collabKey    = "collaboration"
)

// guard is the one access check, run before every route's handler, in
// this order:
//
//  1. a public route (allow is nil) runs without a key;
//  2. no key, or an unknown or revoked one: 401;
//  3. the operator's admin key on a route it may not use: 403 (the
//     operator sees every partner and collaboration, so nothing is hidden
//     from it by a 404);
//  4. a partner's key on a path naming another partner, or a
//     collaboration its partner is not part of (or that does not exist):
//     404, before any role check, so outsiders learn nothing of what
//     exists;
//  5. a role the route does not allow: 403.
//
// Handlers find the principal (principal) and the path's collaboration
// (collabOf) in the context, and check nothing of access themselves.
func (s *Server) guard(r *route, next echo.HandlerFunc) echo.HandlerFunc {
	if r.allow == nil {
		return next
	}
	return func(c echo.Context) error {
		p, err := s.authenticate(c)
		if err != nil {
			return err
		}
		who := roleOf(p)
		if who == roleOperator && !r.allows(who) {
			return r.forbidden(who)
		}
		switch r.scope {
		case scopePartner:
			if pid := c.Param("pid"); pid != p.PartnerID && !p.IsOperator() {
				return errs.New(errs.NotFound, "partner %s", pid)
			}
		case scopeCollab:
			co, err := partners.GetCollaboration(c.Request().Context(), s.db.SQL(), c.Param("cid"), p)
			if err != nil {
				return err
			}
			c.Set(collabKey, co)
		}
		if !r.allows(who) {
			return r.forbidden(who)
		}
		c.Set(principalKey, p)
		if r.writes() {
			if err := s.checkRoom(); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// authenticate reads the bearer key. Every failure of the key is the same
// 401, so a caller learns nothing about which keys exist; a failure of the
// database is a 500, logged.
func (s *Server) authenticate(c echo.Context) (partners.Principal, error) {
	token, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
	if !ok {
		return partners.Principal{}, errs.Unauthorized
	}
	p, err := partners.Authenticate(c.Request().Context(), s.db.SQL(), strings.TrimSpace(token))
	if err != nil {
		// Unauthorized as is; a database failure is the server's.
		return partners.Principal{}, err
	}
	return p, nil
}

func (r *route) allows(who role) bool { return slices.Contains(r.allow, who) }

func (r *route) forbidden(who role) error {
	var need []string
	for _, a := range r.allow {
		if a != roleOperator {
			need = append(need, string(a))
		}
	}
	what := ""
	if len(need) > 0 {
		what = "a key with role " + strings.Join(need, " or ")
	}
	if r.allows(roleOperator) {
		what = strings.TrimPrefix(what+" or the operator's admin key", " or ")
	}
	return errs.New(errs.Forbidden, "this needs %s; yours is %s", what, who.describe())
}

// principal is the caller, as guard authenticated it.
func principal(c echo.Context) partners.Principal { return c.Get(principalKey).(partners.Principal) }

// collabOf is the path's collaboration, as guard loaded it for a member
// (or the operator).
func collabOf(c echo.Context) wire.Collaboration {
	return c.Get(collabKey).(wire.Collaboration)
}
