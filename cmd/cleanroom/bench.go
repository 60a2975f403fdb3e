package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/cmd/cleanroom/internal/bench"
	"github.com/cleanroom/cleanroom/internal/store"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Reproducible benchmarks; each prints one JSON object",
	}
	cmd.AddCommand(newBenchPSICmd(), newBenchIntersectCmd(), newBenchMatchCmd(), newBenchQueryCmd(), newBenchSoakCmd())
	return cmd
}

func newBenchPSICmd() *cobra.Command {
	var n, workers int
	var overlap string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "psi -n N -overlap F",
		Short: "Both parties' full PSI in one process, against the arithmetic speed limit",
		Long: `bench psi runs the whole protocol for two synthetic audiences of N people,
a fraction F of them in both: normalize, hash to the curve and blind each
party's own identifiers, re-blind the other party's points, tokenize and
intersect. It first measures one core's rate of scalar multiplications and
hashes, and reports limit_seconds, the time the 4N multiplications and 2N
hashes alone take at those rates on all cores, and ratio = seconds / limit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			common, err := sizeAndOverlap("bench psi", n, overlap)
			if err != nil {
				return err
			}
			opts := bench.PSIOptions{NA: n, NB: n, Overlap: common, Workers: workers, Log: stageLog(quiet)}
			res, err := bench.RunPSI(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return printResult(cmd, "bench psi", res, res.Found, res.Expected)
		},
	}
	cmd.Flags().IntVarP(&n, "n", "n", 100000, "people in each audience")
	cmd.Flags().StringVar(&overlap, "overlap", "0.1", "fraction of people in both audiences (0.1 or 10%)")
	cmd.Flags().IntVar(&workers, "workers", 0, "cores to use (default: all)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print stage timings to stderr")
	return cmd
}

func newBenchIntersectCmd() *cobra.Command {
	var n int
	var overlap string
	cmd := &cobra.Command{
		Use:   "intersect -n N -overlap F",
		Short: "Intersect two streams of N matching tokens; reports time and peak memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			common, err := sizeAndOverlap("bench intersect", n, overlap)
			if err != nil {
				return err
			}
			res, err := bench.RunIntersect(cmd.Context(), n, common)
			if err != nil {
				return err
			}
			return printResult(cmd, "bench intersect", res, res.Found, res.Expected)
		},
	}
	cmd.Flags().IntVarP(&n, "n", "n", 10000000, "tokens in each stream")
	cmd.Flags().StringVar(&overlap, "overlap", "0.1", "fraction of tokens in both streams")
	return cmd
}

// sizeAndOverlap checks -n and -overlap and returns how many are in both.
func sizeAndOverlap(name string, n int, overlap string) (int, error) {
	f, err := bench.ParseFraction(overlap)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("%s: -n must be positive, got %d", name, n)
	}
	return int(math.Round(f * float64(n))), nil
}

// stageLog prints stage timings to stderr unless quiet.
func stageLog(quiet bool) func(string, time.Duration) {
	if quiet {
		return nil
	}
	return func(stage string, d time.Duration) {
		fmt.Fprintf(os.Stderr, "%-24s %8.2fs\n", stage, d.Seconds())
	}
}

// printResult prints a benchmark's JSON and fails when it found the wrong
// number of matches: a fast wrong answer is no result.
func printResult(cmd *cobra.Command, name string, res any, found, expected int64) error {
	if err := printJSON(cmd, res); err != nil {
		return err
	}
	if found != expected {
		return fmt.Errorf("%s: found %d matches, expected %d", name, found, expected)
	}
	return nil
}

func printJSON(cmd *cobra.Command, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return err
}

func newBenchMatchCmd() *cobra.Command {
	var n, runs int
	var overlap, shape string
	var purchases, exposures float64
	var cacheMiB int64
	var quiet, keep bool
	cmd := &cobra.Command{
		Use:   "match -n N -overlap F",
		Short: "The whole service flow against a server process on loopback, next to bench psi",
		Long: `bench match starts "cleanroom serve" as its own process on loopback with a
fresh database, creates two partners and a collaboration, and runs both
parties' client code: CSV -> normalize, hash, blind -> Arrow upload, then
the match through to the cohort. It then stops the server, reads the exact
cohort size from the database (found), and runs bench psi for the same n
in the same run (psi_seconds). ratio = seconds / psi_seconds.

With -runs K the match and bench psi run K times, alternately, and the run
with the median ratio is printed, with every run's figures under "runs"
(found is then the least of the runs, server_peak_rss_bytes the most).

-shape events gives the parties named tables, declared in the rules: the
brand uploads customers (one row a person, with consent and a region) and
purchases (about -purchases rows a person, dated over 60 days, without a
consent column), the publisher exposures (about -exposures rows a person,
consent on each row). "tables" has each table's uploaded, stored and
linked rows; largest_stored_table_rows is the most rows of any table in the
database after the match, bytes_per_uploaded_row its file's size over
every table's uploaded rows. Each upload blinds a person once while its
cache (-blind-cache-mib, about 12,000 people a MiB) holds them; "blinded"
says how many it did.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			common, err := sizeAndOverlap("bench match", n, overlap)
			if err != nil {
				return err
			}
			if runs <= 0 {
				return fmt.Errorf("bench match: -runs must be positive")
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if shape != bench.ShapePeople && shape != bench.ShapeEvents {
				return fmt.Errorf("bench match: -shape %q: use %s or %s", shape, bench.ShapePeople, bench.ShapeEvents)
			}
			if shape != bench.ShapeEvents && (cmd.Flags().Changed("purchases") || cmd.Flags().Changed("exposures")) {
				return fmt.Errorf("bench match: -purchases and -exposures are for -shape %s", bench.ShapeEvents)
			}
			if !(purchases >= 1) || !(exposures >= 1) {
				return fmt.Errorf("bench match: -purchases and -exposures must be at least 1 (everyone is in each log)")
			}
			if cacheMiB < 0 {
				return fmt.Errorf("bench match: -blind-cache-mib must be 0 or more")
			}
			cacheBytes := cacheMiB << 20
			if cacheMiB == 0 {
				cacheBytes = -1 // as upload's --blind-cache-mib 0: blind every row
			}
			opts := bench.MatchOptions{N: n, Overlap: common, Shape: shape, Purchases: purchases, Exposures: exposures, BlindCacheBytes: cacheBytes,
				Server: []string{self, "serve"}, Keep: keep, Runs: runs, Log: stageLog(quiet)}
			res, err := bench.RunMatch(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return printResult(cmd, "bench match", res, res.Found, res.Expected)
		},
	}
	cmd.Flags().IntVarP(&n, "n", "n", 100000, "people in each audience")
	cmd.Flags().StringVar(&overlap, "overlap", "0.1", "fraction of people in both audiences")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the database and the server log of the run printed (kept_dir)")
	cmd.Flags().IntVar(&runs, "runs", 1, "runs of the match and of bench psi, alternately (the median ratio's run is printed)")
	cmd.Flags().StringVar(&shape, "shape", bench.ShapePeople,
		"the parties' tables: people (one row a person) or events (the brand's customers, one row a person with consent, and purchases; the publisher's exposures; dated over 60 days)")
	cmd.Flags().Float64Var(&purchases, "purchases", bench.DefaultPurchases, "-shape events: mean purchases a person (skewed)")
	cmd.Flags().Float64Var(&exposures, "exposures", bench.DefaultExposures, "-shape events: mean exposures a person (skewed)")
	cmd.Flags().Int64Var(&cacheMiB, "blind-cache-mib", defaultBlindCacheMiB, "each upload's cache of identifiers already blinded, as upload's --blind-cache-mib (about 12,000 people a MiB); 0 blinds every row")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print stage timings to stderr")
	return cmd
}

func newBenchQueryCmd() *cobra.Command {
	var rows, runs int
	var shape string
	cmd := &cobra.Command{
		Use:   "query -rows N [-shape simple|general|events]",
		Short: "A grouped private query against its raw DuckDB equivalent, on a cohort of N rows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rows <= 0 || runs <= 0 {
				return fmt.Errorf("bench query: -rows and -runs must be positive")
			}
			if shape != bench.ShapeSimple && shape != bench.ShapeGeneral && shape != bench.ShapeEvents {
				return fmt.Errorf("bench query: -shape %q: use %s, %s or %s", shape, bench.ShapeSimple, bench.ShapeGeneral, bench.ShapeEvents)
			}
			res, err := bench.RunQuery(cmd.Context(), bench.QueryOptions{Rows: rows, Runs: runs, Shape: shape, Serve: serveInProcess})
			if err != nil {
				return err
			}
			return printJSON(cmd, res)
		},
	}
	cmd.Flags().IntVar(&rows, "rows", 1000000, "cohort rows")
	cmd.Flags().IntVar(&runs, "runs", 7, "timed runs of each query (medians are reported)")
	cmd.Flags().StringVar(&shape, "shape", bench.ShapeSimple,
		"cohort shape: simple (two rows per person, one region each), general (1 to 20 rows per person over several regions), "+
			"or events (-rows people, each with about 12 purchases and 30 exposures, and three questions: a 7-day conversion window by campaign, "+
			"a frequency distribution, a median, each against plain DuckDB)")
	return cmd
}

// serveInProcess runs the API over db on a loopback port in this process,
// for bench query: the command links the API, the benchmarks only its
// client. db must be new: the operator's key is created here, and its
// secret shown only then.
func serveInProcess(ctx context.Context, db *store.DB) (url, operatorKey string, stop func(), err error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// No DataDir: the benchmark keeps no signing key or key file.
	srv, err := api.New(ctx, api.Config{DB: db, Logger: quiet})
	if err != nil {
		return "", "", nil, err
	}
	if srv.OperatorSecret() == "" {
		return "", "", nil, errors.New("the database already has an operator key; bench query needs a new one")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	// A zero ShutdownTimeout: stopping cuts off whatever is in flight.
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(sctx, l)
	}()
	return "http://" + l.Addr().String(), srv.OperatorSecret(), func() { cancel(); <-done; srv.Close() }, nil
}
