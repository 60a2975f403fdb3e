package api

import (
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

// The audit log: hash-chained, its head signed. A partner's key reads the
// entries of its own partner's collaborations, other partners' private
// parts left out (and in an export, other collaborations' entries
// redacted to their place in the chain); the operator reads everything.

// auditEntries answers GET /v1/audit in JSON.
type auditEntries struct {
	Entries []audit.Entry `json:"entries"`
}

// signedHead answers GET /v1/audit/head.
type signedHead struct {
	Head      audit.Head `json:"head"`
	PublicKey string     `json:"public_key"`
}

func (s *Server) auditLog(c echo.Context) error {
	p := principal(c)
	q := c.QueryParams()
	f := auditlog.Filter{CollabID: q.Get("collab"), Actor: q.Get("actor"), Action: audit.Action(q.Get("action"))}
	if !p.IsOperator() {
		f.Partners = []string{p.PartnerID}
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errs.New(errs.Invalid, "%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", name, v)
			}
			*dst = t
		}
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errs.New(errs.Invalid, "after: want a sequence number, got %q", v)
		}
		f.AfterSeq = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return errs.New(errs.Invalid, "before: want a sequence number, got %q", v)
		}
		f.BeforeSeq = n
	}
	switch v := q.Get("order"); v {
	case "desc":
		f.Newest = true
	case "asc", "":
	default:
		return errs.New(errs.Invalid, "order: want asc or desc, got %q", v)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return errs.New(errs.Invalid, "limit: want 1..10000, got %q", v)
		}
		f.Limit = n
	}
	ndjson := strings.Contains(c.Request().Header.Get("Accept"), mtNDJSON)
	switch v := q.Get("format"); v {
	case "ndjson":
		ndjson = true
	case "json":
		ndjson = false
	case "":
	default:
		return errs.New(errs.Invalid, "format: want json or ndjson, got %q", v)
	}
	entries, err := auditlog.List(c.Request().Context(), s.db.SQL(), f)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	if ndjson {
		c.Response().Header().Set("Content-Type", mtNDJSON)
		c.Response().WriteHeader(http.StatusOK)
		enc := json.NewEncoder(c.Response())
		for i := range entries {
			if err := enc.Encode(&entries[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return c.JSON(http.StatusOK, auditEntries{Entries: entries})
}

func (s *Server) signer() (ed25519.PrivateKey, error) {
	if s.opts.Signer == nil {
		return nil, errs.New(errs.Unavailable, "this server has no audit signing key configured")
	}
	return s.opts.Signer, nil
}

func (s *Server) auditPubkey(c echo.Context) error {
	priv, err := s.signer()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.PublicKey{PublicKey: audit.EncodePublicKey(priv.Public().(ed25519.PublicKey))})
}

func (s *Server) auditHead(c echo.Context) error {
	priv, err := s.signer()
	if err != nil {
		return err
	}
	h, err := auditlog.SignedHead(c.Request().Context(), s.db.SQL(), priv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, signedHead{Head: h, PublicKey: audit.EncodePublicKey(priv.Public().(ed25519.PublicKey))})
}

// auditExport streams the log as NDJSON for offline verification: every
// entry up to a freshly signed head (entries of other partners redacted to
// their hashes), then a last line {"head": ...}.
func (s *Server) auditExport(c echo.Context) error {
	p := principal(c)
	priv, err := s.signer()
	if err != nil {
		return err
	}
	var readers []string
	if !p.IsOperator() {
		readers = []string{p.PartnerID}
	}
	ctx := c.Request().Context()
	return s.db.Read(ctx, func(tx *sql.Tx) error {
		h, err := auditlog.SignedHead(ctx, tx, priv)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Content-Type", mtNDJSON)
		c.Response().WriteHeader(http.StatusOK)
		enc := json.NewEncoder(c.Response())
		if err := auditlog.Export(ctx, tx, readers, h.Seq, func(e *audit.Entry) error { return enc.Encode(e) }); err != nil {
			return err
		}
		return enc.Encode(map[string]any{"head": h})
	})
}
