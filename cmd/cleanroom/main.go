// Command cleanroom is the clean room server and the client commands of each
// role. See the README for the flow and docs/design.md for the design.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := newRoot()
	root.SetArgs(goStyleFlags(root, os.Args[1:]))
	if err := root.ExecuteContext(ctx); err != nil {
		printErr(os.Stderr, err)
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 1
	}
	return 0
}

// printErr prints a command's error. Its text may relay the server's
// message, which may quote what another party sent: escaped.
func printErr(w io.Writer, err error) {
	fmt.Fprintf(w, "cleanroom: %s\n", escapeControls([]byte(err.Error())))
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "cleanroom",
		Short:         "A self-hosted data clean room: private matching and differentially private aggregates",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.AddCommand(newServeCmd(), newKeygenCmd(), newPartnersCmd(), newKeysCmd(), newCollabCmd(), newUploadCmd(), newMatchCmd(), newQueryCmd(), newBudgetCmd(), newAuditCmd(), newDeleteCmd(), newOptOutCmd(), newAccessRequestCmd(), newAccessRequestsCmd(), newReceiptCmd(), newReportCmd(), newTablesCmd(), newPrivacyReportCmd(), newBenchCmd(), newDemoCmd(), newBackupCmd(), newRestoreCmd())
	return root
}

// goStyleFlags lets users write Go-style single-dash long flags
// (-overlap 0.1), as the docs and benchmarks do, by rewriting them to the
// double-dash form when the name is a long flag of some command. Anything
// else, shorthand clusters included, is left alone.
func goStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
