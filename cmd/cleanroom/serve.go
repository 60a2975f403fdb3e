package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/spf13/cobra"
)

// defaultGoMemoryLimit is the Go heap's soft limit in serve, beside
// DuckDB's --memory-limit: 1 GiB holds a 10M-point match's sort (320 MB).
const defaultGoMemoryLimit = 1 << 30

// operatorKeyFile holds the operator's admin key, written at first start.
const operatorKeyFile = "operator-admin.key"

func newServeCmd() *cobra.Command {
	var dataDir, addr, tlsCert, tlsKey, memLimit string
	var maxUpload int64
	var shutdownWait time.Duration
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--addr :8080]",
		Short: "Run the clean room server on an embedded DuckDB database in DIR",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("serve: give both --tls-cert and --tls-key, or neither")
			}
			// DuckDB's memory is capped by --memory-limit; the Go heap
			// (points being sorted, records in flight) gets a soft limit
			// too, so the collector works harder rather than letting
			// garbage double the heap beside DuckDB's pool. GOMEMLIMIT,
			// when set, wins.
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(defaultGoMemoryLimit)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			return serve(ctx, log, ln, dataDir, tlsCert, tlsKey, api.Options{MaxUploadBytes: maxUpload, Logger: log, TempDir: dataDir}, shutdownWait, store.Options{MemoryLimit: memLimit})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "cleanroom-data", "directory of the database and the server's keys")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "TLS key file (PEM)")
	cmd.Flags().Int64Var(&maxUpload, "max-upload-bytes", 4<<30, "largest upload or points body accepted")
	cmd.Flags().StringVar(&memLimit, "memory-limit", store.DefaultMemoryLimit, "DuckDB's memory (e.g. 8GiB); larger work spills to DIR/spill")
	cmd.Flags().DurationVar(&shutdownWait, "shutdown-timeout", 30*time.Second, "how long to let requests in flight finish on shutdown")
	return cmd
}

// serve runs the server on ln until ctx ends, then shuts down gracefully:
// requests in flight get shutdownWait to finish; an upload cut off then
// leaves nothing behind (its table is dropped at the next start).
func serve(ctx context.Context, log *slog.Logger, ln net.Listener, dataDir, tlsCert, tlsKey string, opts api.Options, shutdownWait time.Duration, so store.Options) error {
	db, err := store.OpenWith(ctx, dataDir, so)
	if err != nil {
		return err
	}
	defer db.Close()
	secret, err := api.Start(ctx, db)
	if err != nil {
		return err
	}
	if secret != "" {
		path := filepath.Join(dataDir, operatorKeyFile)
		if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("serve: writing the operator key: %w", err)
		}
		log.Info("first start: wrote the operator's admin API key; use it to create partners", "file", path)
	}
	if opts.Signer, err = auditlog.LoadOrCreateSigner(dataDir); err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(db, opts).Handler(), ReadHeaderTimeout: 10 * time.Second}
	jctx, stopJanitor := context.WithCancel(ctx)
	janitorDone := startJanitor(jctx, log, &cohort.Service{DB: db, Signer: opts.Signer}, time.Minute)
	// Deferred after db.Close, so it runs before: however serve returns,
	// the janitor is stopped and its round finished before the database
	// closes under it.
	defer func() {
		stopJanitor()
		<-janitorDone
	}()
	errc := make(chan error, 1)
	go func() {
		if tlsCert != "" {
			errc <- srv.ServeTLS(ln, tlsCert, tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	scheme := "http"
	if tlsCert != "" {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "database", db.Path())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; finishing requests in flight", "timeout", shutdownWait)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the deadline were cut off", "err", err)
		srv.Close()
	}
	return nil
}

// janitorRound is one round of the retention janitor; tests replace it.
var janitorRound = (*cohort.Service).Expire

// startJanitor runs the janitor in its own goroutine until ctx ends. The
// channel it returns is closed once the janitor has returned, its last
// round finished: wait for it before closing the database.
func startJanitor(ctx context.Context, log *slog.Logger, co *cohort.Service, interval time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		janitor(ctx, log, co, interval)
	}()
	return done
}

// janitor deletes audiences past their retention, each with a receipt in
// the log, now and then every interval, until ctx ends. It keeps no
// state: after a restart it finds whatever expired meanwhile.
func janitor(ctx context.Context, log *slog.Logger, co *cohort.Service, interval time.Duration) {
	round := janitorRound
	for {
		if n, err := round(co, ctx, time.Now()); err != nil && ctx.Err() == nil {
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
