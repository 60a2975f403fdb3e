package api

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/console"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/report"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/query"
	"github.com/cleanroom/cleanroom/wire"
)

// Options configure a Server.
type Options struct {
	// MaxUploadBytes caps an upload or points body; default 4 GiB.
	MaxUploadBytes int64
	// TempDir holds Parquet uploads while they are read; default the system's.
	TempDir string
	// Signer signs the audit log's head (auditlog.LoadOrCreateSigner); without
	// it the head and export routes answer 503.
	Signer ed25519.PrivateKey
	Logger *slog.Logger
}

// Server is the HTTP API over one database.
type Server struct {
	db      *store.DB
	co      *cohort.Service
	reports *report.Service
	qs      *query.Service
	opts    Options
	e       *echo.Echo
	m       *metrics
	table   []route
	spec    []byte // the OpenAPI document, built from table
}

// New returns the API server over db.
func New(db *store.DB, opts Options) *Server { return newServer(db, opts, nil) }

// newServer is New; stub, when set (by tests), replaces every route's
// handler, behind the same access check.
func newServer(db *store.DB, opts Options, stub func(r *route) echo.HandlerFunc) *Server {
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = 4 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	co := &cohort.Service{DB: db, TempDir: opts.TempDir, Signer: opts.Signer}
	s := &Server{db: db, co: co, qs: &query.Service{DB: db, Cohorts: co, Logger: opts.Logger}, reports: &report.Service{DB: db, Cohorts: co}, opts: opts, e: echo.New(), m: newMetrics()}
	s.m.countRefusalsNotLogged(s.qs)
	s.e.HideBanner, s.e.HidePort = true, true
	s.e.HTTPErrorHandler = s.errorHandler
	s.e.Use(s.accessLog)
	s.table = s.routes()
	for i := range s.table {
		r := &s.table[i]
		h := r.handler
		if stub != nil {
			h = stub(r)
		}
		s.e.Add(r.method, r.path, s.guard(r, h))
	}
	// The console is static and public: it holds nothing, and every view
	// reads through the routes above with the signed-in key.
	con := echo.WrapHandler(console.Handler())
	s.e.GET(console.Prefix+"*", con)
	s.e.HEAD(console.Prefix+"*", con)
	// consoleRoute names these for the OpenAPI check.
	toConsole := func(c echo.Context) error { return c.Redirect(http.StatusFound, console.Prefix) }
	s.e.GET("/", toConsole)
	s.e.GET("/console", toConsole)
	spec, err := buildSpec(s.table)
	if err != nil {
		// The document is made from the route table and the wire types
		// alone: a failure is a programming error, caught by any test.
		panic(fmt.Sprintf("api: building the OpenAPI document: %v", err))
	}
	s.spec = spec
	return s
}

// consoleRoute reports whether an echo route path is the console's (or a
// redirect to it) rather than the API's.
func consoleRoute(p string) bool {
	return p == "/" || p == "/console" || strings.HasPrefix(p, console.Prefix)
}

// Handler returns the http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// Start prepares the database for serving: the operator's key on first
// start, the cleanup of anything an interrupted upload left behind, and
// the facts of cohorts built by an older version.
// It returns the operator key's secret only when it was just created.
func Start(ctx context.Context, db *store.DB) (operatorSecret string, err error) {
	cs := &cohort.Service{DB: db}
	if err := cs.Cleanup(ctx); err != nil {
		return "", fmt.Errorf("api.Start: cleanup: %w", err)
	}
	if err := cs.Backfill(ctx); err != nil {
		return "", fmt.Errorf("api.Start: %w", err)
	}
	err = db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		operatorSecret, err = partners.EnsureOperator(ctx, tx)
		return err
	})
	return operatorSecret, err
}

// accessLog logs each request's route (not its URL: no IDs or query
// values), status and duration; never bodies or keys.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		t0 := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		d := time.Since(t0)
		s.m.observe(c, d)
		s.opts.Logger.Info("request", "method", c.Request().Method, "route", c.Path(),
			"status", c.Response().Status, "ms", d.Milliseconds())
		return nil
	}
}

// write runs fn in a serialised write transaction.
func (s *Server) write(c echo.Context, fn func(tx *sql.Tx) error) error {
	return s.db.Write(c.Request().Context(), fn)
}

// Limits of JSON request bodies: a body over its limit is refused with
// 413 (too_large).
const (
	maxJSONBody = 1 << 20
	// maxIdentifiersBody fits the most identifiers a deletion takes
	// (cohort.MaxDeleteIdentifiers), base64 encoded.
	maxIdentifiersBody = 16 << 20
)

// decodeJSON reads the request's JSON body into v, refusing unknown
// fields, anything after the value, and more than limit bytes (413). An
// empty body is an error unless optional.
func decodeJSON(c echo.Context, v any, limit int64, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return errs.New(errs.Invalid, "the request body is empty; send a JSON object")
		}
		return errs.New(errs.Invalid, "request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return mbe
		}
		return errs.New(errs.Invalid, "request body: data after the JSON value")
	}
	return nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, wire.Health{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.db.SQL().PingContext(c.Request().Context()); err != nil {
		return c.JSON(http.StatusServiceUnavailable, wire.Health{Status: "database unavailable"})
	}
	return c.JSON(http.StatusOK, wire.Health{Status: "ready"})
}
