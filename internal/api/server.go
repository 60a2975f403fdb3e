package api

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/partners"
	"github.com/cleanroom/cleanroom/internal/query"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// Options configure a Server.
type Options struct {
	// MaxUploadBytes caps an upload or points body; default 4 GiB.
	MaxUploadBytes int64
	// TempDir holds Parquet uploads while they are read; default the system's.
	TempDir string
	// Signer signs the audit log's head (audit.LoadOrCreateSigner); without
	// it the head and export routes answer 503.
	Signer ed25519.PrivateKey
	Logger *slog.Logger
}

// Server is the HTTP API over one database.
type Server struct {
	db    *store.DB
	co    *cohort.Service
	qs    *query.Service
	opts  Options
	e     *echo.Echo
	m     *metrics
	table []route
}

// route is one authenticated API route; the table also makes /openapi.json.
type route struct {
	method, path string
	handler      echo.HandlerFunc
	summary      string
	role         string
}

// New returns the API server's handler.
func New(db *store.DB, opts Options) *Server {
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 4 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	co := &cohort.Service{DB: db, TempDir: opts.TempDir, Signer: opts.Signer}
	s := &Server{db: db, co: co, qs: &query.Service{DB: db, Cohorts: co}, opts: opts, e: echo.New(), m: newMetrics()}
	s.e.HideBanner, s.e.HidePort = true, true
	s.e.HTTPErrorHandler = s.errorHandler
	s.e.Use(s.accessLog)
	s.routes()
	return s
}

// Handler returns the http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(200, map[string]string{"status": "ok"}) })
	e.GET("/readyz", func(c echo.Context) error {
		if err := s.db.SQL().PingContext(c.Request().Context()); err != nil {
			return c.JSON(503, map[string]string{"status": "database unavailable"})
		}
		return c.JSON(200, map[string]string{"status": "ready"})
	})
	e.GET("/v1/audit/pubkey", s.auditPubkey)
	e.GET("/metrics", s.m.handler())
	e.GET("/openapi.json", s.openAPI)
	v1 := e.Group("/v1", s.authenticate)
	routes := []route{
		{"POST", "/partners", s.createPartner, "Create a partner and its first admin key", "operator admin"},
		{"GET", "/partners", s.listPartners, "List partners", "admin"},
		{"POST", "/partners/:pid/keys", s.createKey, "Create an API key with a role", "partner admin"},
		{"GET", "/partners/:pid/keys", s.listKeys, "List a partner's keys", "partner admin"},
		{"DELETE", "/partners/:pid/keys/:kid", s.revokeKey, "Revoke a key", "partner admin"},
		{"POST", "/collaborations", s.propose, "Propose a collaboration with rules", "admin"},
		{"GET", "/collaborations", s.listCollabs, "List the caller's collaborations", "any"},
		{"GET", "/collaborations/:cid", s.getCollab, "Show a collaboration", "member"},
		{"PUT", "/collaborations/:cid/rules", s.changeRules, "Propose new rules (both must approve again)", "admin"},
		{"POST", "/collaborations/:cid/approve", s.approve, "Approve the current rules", "admin"},
		{"POST", "/collaborations/:cid/audiences", s.upload, "Upload an audience (Arrow IPC stream or Parquet)", "engineer"},
		{"GET", "/collaborations/:cid/audiences", s.listAudiences, "The current audiences", "member"},
		{"POST", "/collaborations/:cid/matches", s.startMatch, "Start (or join) a match", "engineer"},
		{"GET", "/collaborations/:cid/matches/:mid", s.getMatch, "A match's state and noisy cohort size", "member"},
		{"GET", "/collaborations/:cid/matches/:mid/points", s.getPoints, "The other party's points to re-blind (Arrow IPC)", "engineer"},
		{"PUT", "/collaborations/:cid/matches/:mid/points", s.putPoints, "The re-blinded points, same order (Arrow IPC)", "engineer"},
		{"DELETE", "/collaborations/:cid", s.deleteCollaboration, "Delete the collaboration and all its data; returns a receipt", "admin"},
		{"DELETE", "/collaborations/:cid/audiences/:aid", s.deleteAudience, "Delete an audience; returns a receipt", "engineer"},
		{"POST", "/collaborations/:cid/deletions", s.deleteIDs(false), "Delete people given as blinded points; returns a receipt", "engineer"},
		{"POST", "/collaborations/:cid/optouts", s.deleteIDs(true), "Opt people out; returns a receipt", "engineer"},
		{"GET", "/collaborations/:cid/receipts", s.listReceipts, "Deletion receipts", "member"},
		{"POST", "/collaborations/:cid/access-requests", s.accessRequest, "What is held for one blinded identifier", "engineer or admin"},
		{"GET", "/collaborations/:cid/report", s.report, "Transparency report", "member"},
		{"POST", "/collaborations/:cid/queries", s.runQuery, "Ask an aggregate question (JSON, CSV or Arrow answer)", "analyst"},
		{"GET", "/collaborations/:cid/budget", s.budget, "Privacy budget spent and remaining", "member"},
		{"GET", "/audit", s.auditLog, "Audit entries: filters collab, actor, action, since, until, after, limit; format=ndjson", "auditor or admin"},
		{"GET", "/audit/head", s.auditHead, "The signed head of the audit chain", "auditor or admin"},
		{"GET", "/audit/export", s.auditExport, "NDJSON export ending with a signed head", "auditor or admin"},
	}
	for _, r := range routes {
		v1.Add(r.method, r.path, r.handler)
	}
	s.table = routes
}

// apiError is the body of every error: {"error": {"code", "message"}}.
type apiError struct {
	status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) error {
	return &apiError{status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		ae = &apiError{status: he.Code, Code: strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_"), Message: fmt.Sprint(he.Message)}
	case errors.Is(err, partners.ErrUnauthorized):
		ae = &apiError{status: 401, Code: "unauthorized", Message: "missing, unknown or revoked API key; send Authorization: Bearer <key>"}
	case errors.Is(err, cohort.ErrTooLarge):
		ae = &apiError{status: 413, Code: "too_large", Message: err.Error()}
	case errors.Is(err, partners.ErrNotFound):
		ae = &apiError{status: 404, Code: "not_found", Message: err.Error()}
	case errors.Is(err, cohort.ErrAwaitingUpload):
		ae = &apiError{status: 409, Code: "awaiting_upload", Message: err.Error()}
	case errors.Is(err, cohort.ErrStale):
		ae = &apiError{status: 409, Code: "stale_match", Message: err.Error()}
	case errors.Is(err, partners.ErrConflict):
		ae = &apiError{status: 409, Code: "conflict", Message: err.Error()}
	case errors.Is(err, partners.ErrInvalid):
		ae = &apiError{status: 400, Code: "invalid", Message: err.Error()}
	case errors.Is(err, context.Canceled):
		ae = &apiError{status: 499, Code: "canceled", Message: "request canceled"}
	default:
		// Internal errors are logged with the route, never with bodies or keys.
		s.opts.Logger.Error("request failed", "method", c.Request().Method, "route", c.Path(), "err", err)
		ae = &apiError{status: 500, Code: "internal", Message: "internal error; the operator's log has details"}
	}
	_ = c.JSON(ae.status, map[string]any{"error": ae})
}

// accessLog logs each request's route (not its URL: no IDs or query
// values), status and duration; never bodies or keys.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		t0 := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		d := time.Since(t0)
		s.m.observe(c, d)
		s.opts.Logger.Info("request", "method", c.Request().Method, "route", c.Path(),
			"status", c.Response().Status, "ms", d.Milliseconds())
		return nil
	}
}

const principalKey = "principal"

func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return partners.ErrUnauthorized
		}
		p, err := partners.Authenticate(c.Request().Context(), s.db.SQL(), strings.TrimSpace(token))
		if err != nil {
			return partners.ErrUnauthorized
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func principal(c echo.Context) partners.Principal { return c.Get(principalKey).(partners.Principal) }

func requireRole(p partners.Principal, roles ...partners.Role) error {
	for _, r := range roles {
		if p.Role == r {
			return nil
		}
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return errorf(403, "forbidden", "this needs a key with role %s; yours is %s", strings.Join(names, " or "), p.Role)
}

func bind(c echo.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(400, "invalid", "request body: %v", err)
	}
	return nil
}

// write runs fn in a serialised write transaction.
func (s *Server) write(c echo.Context, fn func(tx *sql.Tx) error) error {
	return s.db.Write(c.Request().Context(), fn)
}

func (s *Server) createPartner(c echo.Context) error {
	p := principal(c)
	if !p.IsOperator() || p.Role != partners.Admin {
		return errorf(403, "forbidden", "only the operator's admin key creates partners")
	}
	var req struct {
		Name string `json:"name"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	var out struct {
		Partner  partners.Partner `json:"partner"`
		AdminKey partners.Key     `json:"admin_key"`
		Secret   string           `json:"secret"`
	}
	err := s.write(c, func(tx *sql.Tx) error {
		var err error
		out.Partner, out.AdminKey, out.Secret, err = partners.CreatePartner(c.Request().Context(), tx, p, req.Name)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(201, out)
}

func (s *Server) listPartners(c echo.Context) error {
	if err := requireRole(principal(c), partners.Admin); err != nil {
		return err
	}
	ps, err := partners.ListPartners(c.Request().Context(), s.db.SQL())
	if err != nil {
		return err
	}
	return c.JSON(200, map[string]any{"partners": ps})
}

// partnerAdmin checks the caller administers partner pid (or is the operator's admin).
func partnerAdmin(c echo.Context) (partners.Principal, string, error) {
	p := principal(c)
	pid := c.Param("pid")
	if p.PartnerID != pid && !p.IsOperator() {
		return p, pid, errorf(404, "not_found", "partner %s not found", pid)
	}
	return p, pid, requireRole(p, partners.Admin)
}

func (s *Server) createKey(c echo.Context) error {
	p, pid, err := partnerAdmin(c)
	if err != nil {
		return err
	}
	var req struct {
		Role  string `json:"role"`
		Label string `json:"label"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	role, err := partners.ParseRole(req.Role)
	if err != nil {
		return errorf(400, "invalid", "%v", err)
	}
	var out struct {
		Key    partners.Key `json:"key"`
		Secret string       `json:"secret"`
	}
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		out.Key, out.Secret, err = partners.CreateKey(c.Request().Context(), tx, p, pid, role, req.Label)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(201, out)
}

func (s *Server) listKeys(c echo.Context) error {
	_, pid, err := partnerAdmin(c)
	if err != nil {
		return err
	}
	keys, err := partners.ListKeys(c.Request().Context(), s.db.SQL(), pid)
	if err != nil {
		return err
	}
	return c.JSON(200, map[string]any{"keys": keys})
}

func (s *Server) revokeKey(c echo.Context) error {
	p, pid, err := partnerAdmin(c)
	if err != nil {
		return err
	}
	var k partners.Key
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		k, err = partners.RevokeKey(c.Request().Context(), tx, p, pid, c.Param("kid"))
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(200, k)
}

func (s *Server) propose(c echo.Context) error {
	p := principal(c)
	if err := requireRole(p, partners.Admin); err != nil {
		return err
	}
	var req struct {
		Name    string          `json:"name"`
		Partner string          `json:"partner"`
		Rules   json.RawMessage `json:"rules"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	rules, err := partners.ParseRules(req.Rules)
	if err != nil {
		return errorf(400, "invalid_rules", "%v", err)
	}
	var co partners.Collaboration
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		co, err = partners.Propose(c.Request().Context(), tx, p, req.Name, req.Partner, rules)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(201, co)
}

func (s *Server) listCollabs(c echo.Context) error {
	cs, err := partners.ListCollaborations(c.Request().Context(), s.db.SQL(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(200, map[string]any{"collaborations": cs})
}

// collab loads the route's collaboration for a member (404 for anyone else)
// and checks the caller's role (403).
func (s *Server) collab(c echo.Context, roles ...partners.Role) (partners.Principal, partners.Collaboration, error) {
	p := principal(c)
	co, err := partners.GetCollaboration(c.Request().Context(), s.db.SQL(), c.Param("cid"), p)
	if err != nil {
		return p, co, err
	}
	if !co.HasMember(p.PartnerID) && len(roles) > 0 {
		return p, co, errorf(403, "forbidden", "only the collaboration's partners do this")
	}
	if len(roles) > 0 {
		return p, co, requireRole(p, roles...)
	}
	return p, co, nil
}

func (s *Server) getCollab(c echo.Context) error {
	_, co, err := s.collab(c)
	if err != nil {
		return err
	}
	return c.JSON(200, co)
}

func (s *Server) changeRules(c echo.Context) error {
	p, co, err := s.collab(c, partners.Admin)
	if err != nil {
		return err
	}
	body, err := readSmall(c)
	if err != nil {
		return err
	}
	rules, err := partners.ParseRules(body)
	if err != nil {
		return errorf(400, "invalid_rules", "%v", err)
	}
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		co, err = partners.ChangeRules(c.Request().Context(), tx, p, co.ID, rules)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(200, co)
}

func readSmall(c echo.Context) ([]byte, error) {
	var raw json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<20)).Decode(&raw); err != nil {
		return nil, errorf(400, "invalid", "request body: %v", err)
	}
	return raw, nil
}

func (s *Server) approve(c echo.Context) error {
	p, co, err := s.collab(c, partners.Admin)
	if err != nil {
		return err
	}
	var req struct {
		RulesVersion int `json:"rules_version"`
	}
	if c.Request().ContentLength != 0 {
		if err := bind(c, &req); err != nil {
			return err
		}
	}
	err = s.write(c, func(tx *sql.Tx) error {
		var err error
		co, err = partners.Approve(c.Request().Context(), tx, p, co.ID, req.RulesVersion)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(200, co)
}

func (s *Server) upload(c echo.Context) error {
	p, co, err := s.collab(c, partners.Engineer)
	if err != nil {
		return err
	}
	format := cohort.ArrowStream
	switch ct := c.Request().Header.Get("Content-Type"); {
	case ct == "", strings.HasPrefix(ct, "application/vnd.apache.arrow.stream"), strings.HasPrefix(ct, "application/octet-stream"):
	case strings.HasPrefix(ct, "application/vnd.apache.parquet"), strings.HasPrefix(ct, "application/x-parquet"):
		format = cohort.Parquet
	default:
		return errorf(415, "unsupported_media_type", "send the audience as an Arrow IPC stream (Content-Type: application/vnd.apache.arrow.stream) or Parquet (application/vnd.apache.parquet); got %q", ct)
	}
	body := cohort.LimitReader(c.Request().Body, s.opts.MaxUploadBytes)
	var retention time.Duration
	if v := c.QueryParam("retention"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errorf(400, "invalid", "retention: want a positive duration such as 720h, got %q", v)
		}
		retention = d
	}
	a, err := s.co.Upload(c.Request().Context(), p, co, body, format, retention)
	if err != nil {
		return err
	}
	return c.JSON(201, a.Audience)
}

func (s *Server) listAudiences(c echo.Context) error {
	p, co, err := s.collab(c)
	if err != nil {
		return err
	}
	out := map[string]wire.Audience{}
	for _, member := range co.Members() {
		a, err := s.co.CurrentAudience(c.Request().Context(), s.db.SQL(), co.ID, member)
		if errors.Is(err, partners.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		out[member] = audienceView(a, p)
	}
	return c.JSON(200, map[string]any{"audiences": out})
}

func (s *Server) startMatch(c echo.Context) error {
	p, co, err := s.collab(c, partners.Engineer)
	if err != nil {
		return err
	}
	m, err := s.co.StartMatch(c.Request().Context(), p, co)
	if err != nil {
		return err
	}
	return c.JSON(201, m.For(co, p.PartnerID))
}

func (s *Server) match(c echo.Context, roles ...partners.Role) (partners.Principal, partners.Collaboration, cohort.Match, error) {
	p, co, err := s.collab(c, roles...)
	if err != nil {
		return p, co, cohort.Match{}, err
	}
	m, err := s.co.GetMatch(c.Request().Context(), s.db.SQL(), co.ID, c.Param("mid"))
	return p, co, m, err
}

func (s *Server) getMatch(c echo.Context) error {
	p, co, m, err := s.match(c)
	if err != nil {
		return err
	}
	return c.JSON(200, m.For(co, p.PartnerID))
}

func (s *Server) getPoints(c echo.Context) error {
	p, co, m, err := s.match(c, partners.Engineer)
	if err != nil {
		return err
	}
	// The status is sent with the first bytes, so a refusal found before
	// any (a stale match) still reaches the client as an error.
	return s.co.Points(c.Request().Context(), co, m, p.PartnerID, &lazyStream{c: c})
}

// lazyStream sends a 200 Arrow stream's headers on its first write.
type lazyStream struct {
	c       echo.Context
	started bool
}

func (l *lazyStream) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.c.Response().Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
		l.c.Response().WriteHeader(200)
	}
	return l.c.Response().Write(b)
}

func (s *Server) putPoints(c echo.Context) error {
	p, co, m, err := s.match(c, partners.Engineer)
	if err != nil {
		return err
	}
	m, err = s.co.PutPoints(c.Request().Context(), p, co, m, cohort.LimitReader(c.Request().Body, s.opts.MaxUploadBytes))
	if err != nil {
		return err
	}
	return c.JSON(200, m.For(co, p.PartnerID))
}

func (s *Server) auditLog(c echo.Context) error {
	p := principal(c)
	if err := requireRole(p, partners.Auditor, partners.Admin); err != nil {
		return err
	}
	q := c.QueryParams()
	f := audit.Filter{CollabID: q.Get("collab"), Actor: q.Get("actor"), Action: q.Get("action")}
	if !p.IsOperator() {
		f.Partners = []string{p.PartnerID}
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errorf(400, "invalid", "%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", name, v)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int64{"after": &f.AfterSeq} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return errorf(400, "invalid", "%s: want a sequence number, got %q", name, v)
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return errorf(400, "invalid", "limit: want 1..10000, got %q", v)
		}
		f.Limit = n
	}
	entries, err := audit.List(c.Request().Context(), s.db.SQL(), f)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	if q.Get("format") == "ndjson" || strings.Contains(c.Request().Header.Get("Accept"), "application/x-ndjson") {
		c.Response().Header().Set("Content-Type", "application/x-ndjson")
		c.Response().WriteHeader(200)
		enc := json.NewEncoder(c.Response())
		for i := range entries {
			if err := enc.Encode(&entries[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return c.JSON(200, map[string]any{"entries": entries})
}

// Start prepares the database for serving: the operator's key on first
// start, and the cleanup of anything an interrupted upload left behind.
// It returns the operator key's secret only when it was just created.
func Start(ctx context.Context, db *store.DB) (operatorSecret string, err error) {
	if err := (&cohort.Service{DB: db}).Cleanup(ctx); err != nil {
		return "", fmt.Errorf("api.Start: cleanup: %w", err)
	}
	err = db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		operatorSecret, err = partners.EnsureOperator(ctx, tx)
		return err
	})
	return operatorSecret, err
}

func (s *Server) signer() (ed25519.PrivateKey, error) {
	if s.opts.Signer == nil {
		return nil, errorf(503, "unavailable", "this server has no audit signing key configured")
	}
	return s.opts.Signer, nil
}

func (s *Server) auditPubkey(c echo.Context) error {
	priv, err := s.signer()
	if err != nil {
		return err
	}
	return c.JSON(200, map[string]string{"public_key": audit.EncodePublicKey(priv.Public().(ed25519.PublicKey))})
}

func (s *Server) auditHead(c echo.Context) error {
	if err := requireRole(principal(c), partners.Auditor, partners.Admin); err != nil {
		return err
	}
	priv, err := s.signer()
	if err != nil {
		return err
	}
	h, err := audit.SignedHead(c.Request().Context(), s.db.SQL(), priv)
	if err != nil {
		return err
	}
	return c.JSON(200, map[string]any{"head": h, "public_key": audit.EncodePublicKey(priv.Public().(ed25519.PublicKey))})
}

// auditExport streams the log as NDJSON for offline verification: every
// entry up to a freshly signed head (entries of other partners redacted to
// their hashes), then a last line {"head": ...}.
func (s *Server) auditExport(c echo.Context) error {
	p := principal(c)
	if err := requireRole(p, partners.Auditor, partners.Admin); err != nil {
		return err
	}
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
		h, err := audit.SignedHead(ctx, tx, priv)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Content-Type", "application/x-ndjson")
		c.Response().WriteHeader(200)
		enc := json.NewEncoder(c.Response())
		if err := audit.Export(ctx, tx, readers, h.Seq, func(e *audit.Entry) error { return enc.Encode(e) }); err != nil {
			return err
		}
		return enc.Encode(map[string]any{"head": h})
	})
}
