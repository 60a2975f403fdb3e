package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/cmd/cleanroom/internal/bench"
)

func newBenchSoakCmd() *cobra.Command {
	var minutes float64
	var seed uint64
	var rssMiB int64
	var killMin, killMax time.Duration
	var memLimit string
	var keep bool
	cmd := &cobra.Command{
		Use:   "soak -minutes M",
		Short: "A server under mixed load, killed and restarted at random, with invariants checked after each restart",
		Long: `bench soak starts "cleanroom serve" on a fresh data directory, creates three
partners and a collaboration for each pair, and runs concurrent clients for
M minutes: uploads replacing tables, matches, queries from six analysts at
different epsilons (grouped and not, repeats answered from the cache),
deletions, opt-outs, audit exports, reports and budget reads. The server
is killed (SIGKILL) at random moments (-kill-min to -kill-max apart,
seeded) and started again; clients retry through the outage.

After each kill the stopped server's database is read (read only): every
ledger charge has its audit entry and every charging entry its charge, no
budget is overspent, every answer, match, upload and deletion receipt a
client was given is logged, every audience's table holds the rows its
record states, every done match has its person map and linked tables, and
no orphan table survives a start. After each restart the operator's audit
export must verify (signatures and hash chain) and hold every entry the
database held. The server's RSS is sampled every half second against
-rss-limit-mib. Midway, when this binary has the backup and restore
commands, the server is backed up under load, the backup restored to a new
directory and checked, and the server moved onto it.

It prints one JSON line and exits non-zero when an invariant failed; the
failures' messages go to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !(minutes > 0) {
				return fmt.Errorf("bench soak: -minutes must be positive")
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("seed") {
				seed = uint64(time.Now().UnixNano())
			}
			o := bench.SoakOptions{Duration: time.Duration(minutes * float64(time.Minute)), Seed: seed, Server: []string{self, "serve"},
				KillMin: killMin, KillMax: killMax, RSSLimitBytes: rssMiB << 20, MemoryLimit: memLimit, Log: cmd.ErrOrStderr(), Keep: keep}
			o.Backup, o.Restore = backupCommands(cmd.Root(), self)
			res, err := bench.RunSoak(cmd.Context(), o)
			if err != nil {
				return err
			}
			if err := printJSON(cmd, res); err != nil {
				return err
			}
			if res.InvariantFailures > 0 {
				for _, f := range res.Failures {
					fmt.Fprintln(cmd.ErrOrStderr(), "invariant failure:", f)
				}
				return fmt.Errorf("bench soak: %d invariant failures (seed %d)", res.InvariantFailures, res.Seed)
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&minutes, "minutes", 30, "how long to run")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "seed of the load and the kills (default: from the clock; printed)")
	cmd.Flags().Int64Var(&rssMiB, "rss-limit-mib", 1024, "the server's resident memory above which the soak fails")
	cmd.Flags().DurationVar(&killMin, "kill-min", 0, "least time between two kills (default 20s, less for runs under 10 minutes)")
	cmd.Flags().DurationVar(&killMax, "kill-max", 0, "most time between two kills (default 40s)")
	cmd.Flags().StringVar(&memLimit, "memory-limit", "512MiB", "the server's serve --memory-limit")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the data directories and the server's log (kept_dir)")
	return cmd
}

// backupCommands returns the midway backup and restore as this binary's
// own commands, or nils when it has none.
func backupCommands(root *cobra.Command, self string) (backup func(ctx context.Context, url, key, dir string) error, restore func(ctx context.Context, from, data, pubkey string) error) {
	for _, name := range []string{"backup", "restore"} {
		if c, _, err := root.Find([]string{name}); err != nil || c == root || c.Name() != name {
			return nil, nil
		}
	}
	run := func(ctx context.Context, env []string, args ...string) error {
		c := exec.CommandContext(ctx, self, args...)
		c.Env = append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("cleanroom %s: %v: %s", args[0], err, out)
		}
		return nil
	}
	backup = func(ctx context.Context, url, key, dir string) error {
		// With the signing key: the restored server keeps its identity,
		// and the log its one key.
		return run(ctx, []string{"CLEANROOM_URL=" + url, "CLEANROOM_KEY=" + key}, "backup", "--to", dir, "--with-keys")
	}
	restore = func(ctx context.Context, from, data, pubkey string) error {
		// The running server's key: the backup must be signed by it.
		return run(ctx, nil, "restore", "--from", from, "--data", data, "--pubkey", pubkey)
	}
	return backup, restore
}
