package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/cleanroom/cleanroom/bench"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

var stageTitles = map[string]string{
	"a_blind_own": "brand blinds its customers      ",
	"b_blind_own": "publisher blinds its customers  ",
	"b_reblind_a": "publisher re-blinds brand's     ",
	"a_reblind_b": "brand re-blinds publisher's     ",
}

func newDemoCmd() *cobra.Command {
	var na, nb, overlap int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Match two synthetic parties through the real PSI code and compare with the truth",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cleanroom demo: private set intersection of two synthetic parties\n")
			fmt.Fprintf(out, "  brand:     %d customers\n", na)
			fmt.Fprintf(out, "  publisher: %d customers, %d of them also the brand's (half written in upper case with stray spaces)\n", nb, overlap)
			fmt.Fprintf(out, "  each party blinds its own emails with its own key; neither sees the other's list\n\n")
			var bar *progressbar.ProgressBar
			opts := bench.PSIOptions{NA: na, NB: nb, Overlap: overlap, Workers: runtime.GOMAXPROCS(0)}
			opts.Progress = func(stage string, done, total int) {
				if done == 0 {
					bar = progressbar.NewOptions(total,
						progressbar.OptionSetWriter(os.Stderr),
						progressbar.OptionSetDescription(stageTitles[stage]),
						progressbar.OptionShowCount(),
						progressbar.OptionShowIts(),
						progressbar.OptionSetItsString("rows"),
						progressbar.OptionSetWidth(30),
						progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }),
					)
					return
				}
				bar.Set(done)
			}
			res, err := bench.RunPSI(cmd.Context(), opts)
			if err != nil {
				return err
			}
			verdict := "exact"
			if res.Found != res.Expected {
				verdict = "MISMATCH"
			}
			fmt.Fprintf(out, "\nmatched %d people; true overlap %d: %s\n", res.Found, res.Expected, verdict)
			fmt.Fprintf(out, "took %.1f s on %d cores: %.2f x the time its %d scalar multiplications and %d hashes take alone\n",
				res.Seconds, res.Cores, res.Ratio, 2*(na+nb), na+nb)
			if res.Found != res.Expected {
				return fmt.Errorf("demo: matched count differs from the true overlap")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&na, "brand", 200000, "brand customers")
	cmd.Flags().IntVar(&nb, "publisher", 300000, "publisher customers")
	cmd.Flags().IntVar(&overlap, "overlap", 60000, "customers in both")
	return cmd
}
