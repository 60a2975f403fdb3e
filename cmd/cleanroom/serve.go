package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/internal/store"
)

// defaultGoMemoryLimit is the Go heap's soft limit in serve, beside
// DuckDB's --memory-limit: 1 GiB holds a 10M-point match's sort (320 MB).
const defaultGoMemoryLimit = 1 << 30

func newServeCmd() *cobra.Command {
	var dataDir, addr, tlsCert, tlsKey, memLimit string
	var maxUpload, spool, minFree int64
	var uploads int
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
			// when set, wins. It is the process's, so the command sets it,
			// not api.Run.
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(defaultGoMemoryLimit)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			// Listening first fails fast on a busy port, before the
			// database is opened.
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			return api.Run(ctx, api.Config{
				DataDir: dataDir, Listener: ln, TLSCert: tlsCert, TLSKey: tlsKey,
				MaxUploadBytes: maxUpload, UploadsPerPartner: uploads, SpoolBytesPerPartner: spool, MemoryLimit: memLimit, ShutdownTimeout: shutdownWait,
				Logger: log, TempDir: dataDir, Version: versionString(), MinFreeBytes: minFree,
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "cleanroom-data", "directory of the database and the server's keys")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "TLS key file (PEM)")
	cmd.Flags().Int64Var(&maxUpload, "max-upload-bytes", 4<<30, "largest upload or points body accepted")
	cmd.Flags().IntVar(&uploads, "uploads-per-partner", api.DefaultUploadsPerPartner, "uploads one partner may have in progress at once")
	cmd.Flags().Int64Var(&spool, "spool-per-partner", 0, "bytes of one partner's Parquet uploads held on disk at once (default --max-upload-bytes)")
	cmd.Flags().StringVar(&memLimit, "memory-limit", store.DefaultMemoryLimit, "DuckDB's memory (e.g. 8GiB); larger work spills to DIR/spill")
	cmd.Flags().Int64Var(&minFree, "min-free-bytes", api.DefaultMinFreeBytes, "free space DIR's disk keeps: under it, writes answer 507 insufficient_storage and reads go on (-1: none)")
	cmd.Flags().DurationVar(&shutdownWait, "shutdown-timeout", 30*time.Second, "how long to let requests in flight finish on shutdown")
	return cmd
}
