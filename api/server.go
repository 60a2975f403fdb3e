package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/console"
	"github.com/cleanroom/cleanroom/internal/deletion"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/report"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/query"
	"github.com/cleanroom/cleanroom/wire"
)

// OperatorKeyFile, in the data directory, holds the operator's admin key,
// written at first start.
const OperatorKeyFile = "operator-admin.key"

// DefaultUploadsPerPartner is Config.UploadsPerPartner's default.
const DefaultUploadsPerPartner = cohort.DefaultUploadsPerPartner

// DefaultMinFreeBytes is Config.MinFreeBytes's default: room for a
// checkpoint of DuckDB's WAL and the audit entries of refusals.
const DefaultMinFreeBytes = 64 << 20

// janitorInterval is how often the retention janitor looks for expired
// audiences.
const janitorInterval = time.Minute

// Config is how a server runs: what serve's flags give, and what demo,
// bench and the tests set. A zero field takes its default.
type Config struct {
	// DataDir holds the database, the audit signing key and the
	// operator's key file (OperatorKeyFile).
	DataDir string
	// DB, when set, is served instead of DataDir's database, for callers
	// that use the database themselves (bench query, tests); they close it
	// after Close. With no DataDir beside it, no signing key is kept (the
	// head and export routes answer 503) and no key file is written.
	DB *store.DB
	// Listener is where Run serves (the caller listens, so that its own
	// errors and the address it chose are its to report).
	Listener net.Listener
	// TLSCert and TLSKey are PEM files; with both the server speaks HTTPS.
	TLSCert, TLSKey string
	// MaxUploadBytes caps an upload or points body; default 4 GiB.
	MaxUploadBytes int64
	// UploadsPerPartner bounds a partner's uploads in progress at once
	// (more are refused with 429, too_many_uploads); default
	// cohort.DefaultUploadsPerPartner.
	UploadsPerPartner int
	// SpoolBytesPerPartner bounds the bytes of a partner's Parquet uploads
	// spooled to TempDir at once; default MaxUploadBytes.
	SpoolBytesPerPartner int64
	// MemoryLimit is DuckDB's memory (e.g. 8GiB); default
	// store.DefaultMemoryLimit.
	MemoryLimit string
	// ShutdownTimeout is how long requests in flight get to finish once
	// Serve's context ends; zero cuts them off at once.
	ShutdownTimeout time.Duration
	// Logger gets the access log and the lifecycle; default slog.Default().
	Logger *slog.Logger
	// TempDir holds Parquet uploads while they are read; default the system's.
	TempDir string
	// MinFreeBytes is the room the data directory's and TempDir's file
	// systems must have for a route that writes to run; under it such a
	// route answers 507 (insufficient_storage) and changes nothing, and
	// reads go on. Default DefaultMinFreeBytes; negative: no reserve.
	MinFreeBytes int64
	// Version is the server's version, stated in a backup's manifest.
	Version string
	// Clock stamps what the services record (partners, keys,
	// collaborations, audiences, matches, receipts, budget charges,
	// reports, the janitor's expiry time); default time.Now. Tests fix it.
	// The audit log's entries keep the wall clock: they say when they were
	// written.
	Clock func() time.Time
}

// options are what handlers read: the Config with its defaults, and the
// signing key loaded from DataDir.
type options struct {
	Config
	// Signer signs the audit log's head and deletion receipts; without it
	// the head and export routes answer 503.
	Signer ed25519.PrivateKey
}

// Server is the HTTP API over one database, and the services behind it,
// each built once.
type Server struct {
	db        *store.DB
	ownsDB    bool // opened by New, closed by Close
	cohorts   *cohort.Service
	deletions *deletion.Service
	partners  *partners.Service
	reports   *report.Service
	queries   *query.Service
	opts      options
	secret    string // the operator key's secret, when New created it
	e         *echo.Echo
	m         *metrics
	table     []route
	spec      []byte // the OpenAPI document, built from table
	backupMu  sync.Mutex
}

// Run serves cfg until ctx ends, then shuts down gracefully (see Serve)
// and closes the database.
func Run(ctx context.Context, cfg Config) error {
	ln := cfg.Listener
	if ln == nil {
		return errors.New("api.Run: no Listener")
	}
	s, err := New(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer s.Close()
	return s.Serve(ctx, ln)
}

// New opens the database (unless cfg.DB is given), builds the services
// and the routes, and prepares the database for serving (prepare). The
// caller serves the Server (Serve, or Handler under a server of its own)
// and closes it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	db, owns := cfg.DB, cfg.DB == nil
	if owns {
		var err error
		if db, err = store.OpenWith(ctx, cfg.DataDir, store.Options{MemoryLimit: cfg.MemoryLimit}); err != nil {
			return nil, err
		}
	}
	closeDB := func() {
		if owns {
			db.Close()
		}
	}
	// After the store, which creates DataDir.
	var signer ed25519.PrivateKey
	if cfg.DataDir != "" {
		var err error
		if signer, err = auditlog.LoadOrCreateSigner(cfg.DataDir); err != nil {
			closeDB()
			return nil, err
		}
	}
	s := newServer(db, cfg, signer, nil)
	s.ownsDB = owns
	if err := s.prepare(ctx); err != nil {
		closeDB()
		return nil, err
	}
	return s, nil
}

// prepare brings matches of an older version to named tables, cleans up
// what an interrupted upload left behind and, at the database's first
// start, creates the operator's key: its secret is kept for
// OperatorSecret and written to DataDir's OperatorKeyFile, as it is
// shown only then.
func (s *Server) prepare(ctx context.Context) error {
	if err := removeStaleSnapshots(s.opts.DataDir); err != nil {
		return fmt.Errorf("api.New: %w", err)
	}
	if err := s.cohorts.Migrate(ctx); err != nil {
		return fmt.Errorf("api.New: %w", err)
	}
	if err := s.cohorts.Cleanup(ctx); err != nil {
		return fmt.Errorf("api.New: cleanup: %w", err)
	}
	if err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		s.secret, err = s.partners.EnsureOperator(ctx, tx)
		return err
	}); err != nil {
		return err
	}
	if s.secret == "" || s.opts.DataDir == "" {
		return nil
	}
	path := filepath.Join(s.opts.DataDir, OperatorKeyFile)
	if err := os.WriteFile(path, []byte(s.secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("api.New: writing the operator key: %w", err)
	}
	// WriteFile keeps the mode of a file that was already there.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("api.New: the operator key's mode: %w", err)
	}
	s.opts.Logger.Info("first start: wrote the operator's admin API key; use it to create partners", "file", path)
	return nil
}

// newServer builds the services and the routes over db; stub, when set
// (by tests), replaces every route's handler, behind the same access check.
func newServer(db *store.DB, cfg Config, signer ed25519.PrivateKey, stub func(r *route) echo.HandlerFunc) *Server {
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 4 << 30
	}
	if cfg.SpoolBytesPerPartner <= 0 {
		cfg.SpoolBytesPerPartner = cfg.MaxUploadBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = DefaultMinFreeBytes
	}
	co := &cohort.Service{DB: db, TempDir: cfg.TempDir, Now: cfg.Clock, UploadsPerPartner: cfg.UploadsPerPartner, SpoolPerPartner: cfg.SpoolBytesPerPartner}
	s := &Server{db: db, cohorts: co, deletions: &deletion.Service{DB: db, Cohorts: co, Signer: signer, Now: cfg.Clock}, partners: &partners.Service{Now: cfg.Clock}, queries: &query.Service{DB: db, Cohorts: co, Now: cfg.Clock, Logger: cfg.Logger}, reports: &report.Service{DB: db, Cohorts: co},
		opts: options{Config: cfg, Signer: signer}, e: echo.New(), m: newMetrics()}
	s.m.countRefusalsNotLogged(s.queries)
	s.m.watchStorage(db, cfg.MinFreeBytes)
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

// Handler returns the http.Handler, for callers that serve it themselves
// (tests, under httptest); Serve uses it too.
func (s *Server) Handler() http.Handler { return s.e }

// OperatorSecret returns the operator key's secret if New created it (the
// database's first start), or "".
func (s *Server) OperatorSecret() string { return s.secret }

// now is the Config's clock.
func (s *Server) now() time.Time { return s.opts.Clock() }

// Serve serves on ln, with TLS when the Config names a certificate, and
// runs the retention janitor, until ctx ends. Then it shuts down
// gracefully: requests in flight get the ShutdownTimeout to finish (an
// upload cut off then leaves nothing behind: its table is dropped at the
// next start), and the janitor's round in progress finishes, before Serve
// returns and the database may be closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.opts.Logger
	hs := &http.Server{Handler: s.e, ReadHeaderTimeout: 10 * time.Second}
	jctx, stopJanitor := context.WithCancel(ctx)
	janitorDone := startJanitor(jctx, log, s.deletions, s.now, janitorInterval)
	defer func() {
		stopJanitor()
		<-janitorDone
	}()
	tls := s.opts.TLSCert != ""
	errc := make(chan error, 1)
	go func() {
		if tls {
			errc <- hs.ServeTLS(ln, s.opts.TLSCert, s.opts.TLSKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	scheme := "http"
	if tls {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "database", s.db.Path())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; finishing requests in flight", "timeout", s.opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the deadline were cut off", "err", err)
		hs.Close()
	}
	return nil
}

// Close closes the database if New opened it. Call it after Serve has
// returned.
func (s *Server) Close() error {
	if s.ownsDB {
		return s.db.Close()
	}
	return nil
}

// janitorRound is one round of the retention janitor; tests replace it.
var janitorRound = (*deletion.Service).Expire

// startJanitor runs the janitor in its own goroutine until ctx ends. The
// channel it returns is closed once the janitor has returned, its last
// round finished: wait for it before closing the database.
func startJanitor(ctx context.Context, log *slog.Logger, del *deletion.Service, now func() time.Time, interval time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		janitor(ctx, log, del, now, interval)
	}()
	return done
}

// janitor deletes audiences past their retention, each with a receipt in
// the log, now and then every interval, until ctx ends. It keeps no
// state: after a restart it finds whatever expired meanwhile.
func janitor(ctx context.Context, log *slog.Logger, del *deletion.Service, now func() time.Time, interval time.Duration) {
	round := janitorRound
	for {
		if n, err := round(del, ctx, now()); err != nil && ctx.Err() == nil {
			log.Error("retention janitor", "err", err)
		} else if n > 0 {
			log.Info("retention janitor deleted expired audiences", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
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
	// (deletion.MaxDeleteIdentifiers), base64 encoded.
	maxIdentifiersBody = 16 << 20
)

// decodeJSON reads the request's JSON body into v, refusing unknown
// fields, anything after the value, and more than limit bytes (413). An
// empty body is an error unless optional.
func decodeJSON(c echo.Context, v any, limit int64, optional bool) error {
	_, err := decodeJSONBody(c, v, limit, optional)
	return err
}

// decodeJSONBody is decodeJSON, answering the body too: a field decoded
// later (rules) places its errors in it. Errors say where by line and
// column (wire.JSONError), as an editor shows the body.
func decodeJSONBody(c echo.Context, v any, limit int64, optional bool) ([]byte, error) {
	b, err := readBody(c, limit)
	if err != nil || len(b) == 0 {
		if err == nil && !optional {
			err = errs.New(errs.Invalid, "the request body is empty; send a JSON object")
		}
		return b, err
	}
	if err := wire.DecodeJSON(b, v); err != nil {
		return nil, errs.New(errs.Invalid, "request body: %w", err)
	}
	return b, nil
}

// readBody reads the request body, up to limit bytes (413 beyond); a
// body of white space only is none.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, mbe
		}
		return nil, errs.New(errs.Invalid, "request body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return b, nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, wire.Health{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	// Healthy reopens a database a fatal error invalidated, once the disk
	// has room.
	if err := s.db.Healthy(c.Request().Context()); err != nil {
		return c.JSON(http.StatusServiceUnavailable, wire.Health{Status: "database unavailable"})
	}
	return c.JSON(http.StatusOK, wire.Health{Status: "ready"})
}
