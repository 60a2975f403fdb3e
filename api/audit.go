package api

import (
	"crypto/ed25519"
	"database/sql"
	"encoding/csv"
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
	// Total counts the entries the filters match on every page.
	Total int64 `json:"total"`
	// Labels names the actors of these entries that are keys of the
	// caller's own partner (any partner's, for the operator): never
	// another partner's, whose admins named them for themselves.
	Labels map[string]string `json:"labels"`
}

// signedHead answers GET /v1/audit/head.
type signedHead struct {
	Head      audit.Head `json:"head"`
	PublicKey string     `json:"public_key"`
}

// auditQuery is a GET /v1/audit request, read from its parameters.
type auditQuery struct {
	f      auditlog.Filter
	collab string // an id or a name, resolved in the read
	actor  string // a key id or a label, resolved in the read
	format string // json, ndjson or csv
	// limited: the request set a limit (a CSV without one is the whole
	// filtered view).
	limited bool
}

func parseAuditQuery(c echo.Context) (auditQuery, error) {
	p := principal(c)
	q := c.QueryParams()
	a := auditQuery{collab: strings.TrimSpace(q.Get("collab")), actor: strings.TrimSpace(q.Get("actor"))}
	if !p.IsOperator() {
		a.f.Partners = []string{p.PartnerID}
	}
	if v := strings.TrimSpace(q.Get("action")); v != "" {
		if !knownActionPrefix(v) {
			return a, errs.New(errs.Invalid, "action: no action is or begins with %q; give an action such as query.run or a prefix such as query", v)
		}
		a.f.Action = audit.Action(v)
	}
	for name, dst := range map[string]*time.Time{"since": &a.f.Since, "until": &a.f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return a, errs.New(errs.Invalid, "%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", name, v)
			}
			*dst = t
		}
	}
	for _, x := range []struct {
		name string
		min  int64
		dst  *int64
	}{{"after", 0, &a.f.AfterSeq}, {"before", 1, &a.f.BeforeSeq}} {
		if v := q.Get(x.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < x.min {
				return a, errs.New(errs.Invalid, "%s: want a sequence number, got %q", x.name, v)
			}
			*x.dst = n
		}
	}
	switch v := q.Get("order"); v {
	case "desc":
		a.f.Newest = true
	case "asc", "":
	default:
		return a, errs.New(errs.Invalid, "order: want asc or desc, got %q", v)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return a, errs.New(errs.Invalid, "limit: want 1..10000, got %q", v)
		}
		a.f.Limit, a.limited = n, true
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return a, errs.New(errs.Invalid, "offset: want a number of entries to skip, 0 or more, got %q", v)
		}
		a.f.Offset = n
	}
	switch v := q.Get("format"); v {
	case "json", "ndjson", "csv":
		a.format = v
	case "":
		acc := c.Request().Header.Get("Accept")
		switch {
		case strings.Contains(acc, mtNDJSON):
			a.format = "ndjson"
		case strings.Contains(acc, mtCSV):
			a.format = "csv"
		default:
			a.format = "json"
		}
	default:
		return a, errs.New(errs.Invalid, "format: want json, ndjson or csv, got %q", v)
	}
	return a, nil
}

// knownActionPrefix reports whether v is an action the server writes, or
// a prefix of one at a dot boundary.
func knownActionPrefix(v string) bool {
	for _, a := range audit.Actions() {
		if string(a) == v || strings.HasPrefix(string(a), v+".") {
			return true
		}
	}
	return false
}

// resolve turns the collaboration and actor filters into IDs, with the
// names the caller may read: a collaboration by its id or name (any
// case), an actor by its key id or, among the caller's own keys, label.
func (a *auditQuery) resolve(n auditlog.Names) error {
	if a.collab != "" {
		a.f.CollabIDs = []string{}
		for id, name := range n.Collabs {
			if id == a.collab || strings.EqualFold(name, a.collab) {
				a.f.CollabIDs = append(a.f.CollabIDs, id)
			}
		}
		if len(a.f.CollabIDs) == 0 {
			// Only the caller's own collaborations are searched: the answer
			// is the same whether another partner's exists or not.
			return errs.New(errs.Invalid, "collab: none of your collaborations has the id or name %q", a.collab)
		}
	}
	if a.actor != "" {
		a.f.Actors = []string{}
		// Another partner's key ids show in shared entries, so an id is
		// taken as it is, known or not.
		if a.actor == "system" || strings.HasPrefix(a.actor, "k_") {
			a.f.Actors = append(a.f.Actors, a.actor)
		}
		for id, label := range n.Labels {
			if strings.EqualFold(label, a.actor) && id != a.actor {
				a.f.Actors = append(a.f.Actors, id)
			}
		}
		if len(a.f.Actors) == 0 {
			return errs.New(errs.Invalid, "actor: none of your keys is labelled %q; give a label or a key id (k_…)", a.actor)
		}
	}
	return nil
}

func (s *Server) auditLog(c echo.Context) error {
	a, err := parseAuditQuery(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	// One read: the total, the page and the names agree. Only a CSV,
	// which may be the whole log, streams from inside it.
	var out auditEntries
	err = s.db.Read(ctx, func(tx *sql.Tx) error {
		names, err := auditlog.LoadNames(ctx, tx, a.f.Partners)
		if err != nil {
			return err
		}
		if err := a.resolve(names); err != nil {
			return err
		}
		if a.format == "csv" {
			return writeAuditCSV(c, tx, a, names)
		}
		if a.format == "json" {
			if out.Total, err = auditlog.Total(ctx, tx, a.f); err != nil {
				return err
			}
		}
		if out.Entries, err = auditlog.List(ctx, tx, a.f); err != nil {
			return err
		}
		out.Labels = map[string]string{}
		for _, e := range out.Entries {
			if l, ok := names.Labels[e.Actor]; ok {
				out.Labels[e.Actor] = l
			}
		}
		return nil
	})
	if err != nil || a.format == "csv" {
		return err
	}
	if a.format == "ndjson" {
		c.Response().Header().Set("Content-Type", mtNDJSON)
		c.Response().WriteHeader(http.StatusOK)
		enc := json.NewEncoder(c.Response())
		for i := range out.Entries {
			if err := enc.Encode(&out.Entries[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if out.Entries == nil {
		out.Entries = []audit.Entry{}
	}
	return c.JSON(http.StatusOK, out)
}

// auditCSVColumns head a CSV of the log: an entry's fields, with the
// names the reader may read beside its IDs.
var auditCSVColumns = []string{"seq", "at", "action", "actor", "actor_label", "partner_id", "partner", "collab_id", "collaboration", "details", "private", "hash"}

// writeAuditCSV streams the filtered view as CSV: every matching entry
// unless the request set a limit. Every cell is neutralised against
// spreadsheet formulas: names, labels and details are other people's text.
func writeAuditCSV(c echo.Context, tx *sql.Tx, a auditQuery, n auditlog.Names) error {
	if !a.limited {
		a.f.Limit = 0
	}
	h := c.Response().Header()
	h.Set("Content-Type", mtCSV+"; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="audit.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	write := func(rec []string) error {
		for i := range rec {
			rec[i] = csvText(rec[i], rec[i])
		}
		return w.Write(rec)
	}
	if err := write(append([]string(nil), auditCSVColumns...)); err != nil {
		return err
	}
	err := auditlog.Each(c.Request().Context(), tx, a.f, func(e *audit.Entry) error {
		return write([]string{strconv.FormatInt(e.Seq, 10), e.At.UTC().Format(time.RFC3339), e.Action, e.Actor, n.Labels[e.Actor],
			e.PartnerID, n.Partners[e.PartnerID], e.CollabID, n.Collabs[e.CollabID], string(e.Details), string(e.Private), e.Hash})
	})
	if err != nil {
		return err
	}
	w.Flush()
	return w.Error()
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
