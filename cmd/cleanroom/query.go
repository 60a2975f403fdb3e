package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

func newQueryCmd() *cobra.Command {
	var c conn
	var collab, format, template string
	var params []string
	var eps float64
	var noComments bool
	cmd := &cobra.Command{
		Use:   `query --collab COLLAB [--epsilon E] "SELECT ..." | --template NAME [--param NAME=VALUE ...]`,
		Short: "Ask an aggregate question of the cohort; answers are noisy, with 95% intervals",
		Long: "query sends SQL in cleanroom's subset:\n\n  " + strings.ReplaceAll(wire.QuerySubset, "\n", "\n  ") + `

COUNT(*) counts people. Each answer spends epsilon from this partner's
privacy budget (default: the rule default_query_epsilon; at least
min_query_epsilon; a whole number of millionths), and a GROUP BY or
Gaussian noise also spends the rule delta from the delta budget; asking
the same question again returns the stored answer at no cost.

--format csv writes the answer after lines of comments that state its
collaboration, time, epsilon, delta and noise (# epsilon: 0.09; pandas
reads it with comment='#'); --no-comments leaves them out. --format
arrow carries them as schema metadata.

--template runs a named question of the rules (or a built-in: overlap,
reach_frequency, conversion_lift, sales_after_exposure) with --param
values; each is checked against its type and bounds, then the question
meets every check a written one does.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.collabClient(cmd.Context(), "query", &collab)
			if err != nil {
				return err
			}
			req := wire.Request{Epsilon: eps, Template: template}
			switch {
			case template == "" && len(args) == 1:
				req.SQL = args[0]
			case template != "" && len(args) == 0:
				req.Params = map[string]string{}
				for _, kv := range params {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return fmt.Errorf("query: --param %q: want NAME=VALUE", kv)
					}
					req.Params[k] = v
				}
			default:
				return fmt.Errorf("query: give the SQL, or --template NAME, not both")
			}
			switch format {
			case "table", "json":
				var a wire.Answer
				if err := cl.Ask(cmd.Context(), collab, req, "json", &a); err != nil {
					return placeSQL(req.SQL, err)
				}
				if format == "json" {
					return printOut(cmd, a)
				}
				printAnswer(cmd.OutOrStdout(), a)
				if !cmd.Flags().Changed("epsilon") && !a.Cached {
					fmt.Fprintf(cmd.OutOrStdout(), "no --epsilon: spent the rules' default_query_epsilon, %g; --epsilon E spends more for a more precise answer, or less\n", a.Epsilon)
				}
				return nil
			case "arrow":
				// Refused before the question is asked, so it costs nothing.
				if outIsTTY(cmd.OutOrStdout()) {
					return errors.New("query: --format arrow writes a binary stream, not for a terminal: redirect the output to a file or pipe it")
				}
				return placeSQL(req.SQL, cl.Ask(cmd.Context(), collab, req, format, cmd.OutOrStdout()))
			case "csv":
				// The bytes the server sent, except on a terminal, where the
				// other party's values show their control characters escaped.
				w, flush := toTerminal(cmd.OutOrStdout())
				if err := cl.AskCSV(cmd.Context(), collab, req, !noComments, w); err != nil {
					return placeSQL(req.SQL, err)
				}
				return flush()
			}
			return fmt.Errorf("query: --format %q: want table, json, csv or arrow", format)
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name")
	// 0 sends none: the server spends the rules' default_query_epsilon,
	// the amount both partners agreed on, never the most a query may.
	cmd.Flags().Float64Var(&eps, "epsilon", 0, "privacy budget to spend (default: the rules' default_query_epsilon)")
	cmd.Flags().StringVar(&format, "format", "table", "table, json, csv or arrow")
	cmd.Flags().BoolVar(&noComments, "no-comments", false, "csv: leave out the # lines before the header that state the collaboration, time, epsilon and noise")
	cmd.Flags().StringVar(&template, "template", "", "run the rules' (or a built-in) template of this name instead of SQL")
	cmd.Flags().StringArrayVar(&params, "param", nil, "a template parameter, NAME=VALUE (repeatable)")
	return cmd
}

// printAnswer prints an answer as a table, each aggregate with its interval.
func printAnswer(out io.Writer, a wire.Answer) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	var head []string
	for _, c := range a.Columns {
		if c.Kind == "dimension" {
			head = append(head, printable(c.Name))
		} else {
			head = append(head, printable(c.Name), "95% interval")
		}
	}
	fmt.Fprintln(w, strings.Join(head, "\t"))
	digits := make([]int, len(a.Columns))
	for j, c := range a.Columns {
		if c.Kind != "dimension" && c.Kind != "count" {
			digits[j] = digitsApart(a, j)
		}
	}
	for i, row := range a.Rows {
		var cells []string
		for j, v := range row {
			if a.Columns[j].Kind == "dimension" {
				cells = append(cells, printable(fmt.Sprint(v))) // the other party's values
				continue
			}
			f := "%." + strconv.Itoa(digits[j]) + "f"
			iv := intervalAt(a, i, j)
			if iv == nil {
				// Medians and variances: the library states no interval.
				cells = append(cells, fmt.Sprintf(f, v), "–")
				continue
			}
			cells = append(cells, fmt.Sprintf(f, v), fmt.Sprintf("["+f+", "+f+"]", iv.Lower, iv.Upper))
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	w.Flush()
	if len(a.Rows) == 0 {
		fmt.Fprintln(out, "(no group passed the privacy thresholds)")
	}
	cached := ""
	if a.Cached {
		cached = "; served from the cache at no cost"
	}
	fmt.Fprintf(out, "epsilon %g, delta %g (%s noise); budget left %g%s\n", a.Epsilon, a.Delta, printable(string(a.Noise)), a.BudgetRemaining, cached)
	fmt.Fprintf(out, "delta budget left %g; the collaboration has spent epsilon %g, delta %g in all (both partners, matches included)\n",
		a.DeltaRemaining, a.CollaborationEpsilonSpent, a.CollaborationDeltaSpent)
}

// intervalAt is row i's interval of column j, nil when there is none.
func intervalAt(a wire.Answer, i, j int) *wire.Interval {
	if i >= len(a.Intervals) || j >= len(a.Intervals[i]) {
		return nil
	}
	return a.Intervals[i][j]
}

// digitsApart is the fewest decimals (up to 12) at which column j's
// values and interval bounds that differ also read differently, with at
// least three significant digits: "1.52 [1.47, 1.57]", never "1.50
// [1.50, 1.50]". The console's workbench uses the same rule.
func digitsApart(a wire.Answer, j int) int {
	least := 0
	var triples [][3]float64
	for i, row := range a.Rows {
		v, ok := row[j].(float64)
		if !ok {
			continue
		}
		if v != 0 && !math.IsInf(v, 0) && !math.IsNaN(v) && v != math.Trunc(v) {
			least = max(least, min(12, 2-int(math.Floor(math.Log10(math.Abs(v))))))
		}
		t := [3]float64{v, v, v}
		if iv := intervalAt(a, i, j); iv != nil {
			t[1], t[2] = iv.Lower, iv.Upper
		}
		triples = append(triples, t)
	}
	for d := least; d < 12; d++ {
		apart := true
		for _, t := range triples {
			for x := 0; x < 3; x++ {
				for y := x + 1; y < 3; y++ {
					if t[x] != t[y] && strconv.FormatFloat(t[x], 'f', d, 64) == strconv.FormatFloat(t[y], 'f', d, 64) {
						apart = false
					}
				}
			}
		}
		if apart {
			return d
		}
	}
	return 12
}

func newBudgetCmd() *cobra.Command {
	var c conn
	var f outFormat
	var collab string
	cmd := &cobra.Command{
		Use:   "budget --collab COLLAB [--format table|json]",
		Short: "Show privacy budget spent and remaining",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.collabClient(cmd.Context(), "budget", &collab)
			if err != nil {
				return err
			}
			if f == "json" {
				raw, err := cl.Budget(cmd.Context(), collab)
				if err != nil {
					return err
				}
				return printOut(cmd, raw)
			}
			return printBudget(cmd.Context(), cl, collab, cmd.OutOrStdout())
		},
	}
	c.flags(cmd)
	f.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name")
	return cmd
}

func printBudget(ctx context.Context, cl *client.Client, collab string, out io.Writer) error {
	raw, err := cl.Budget(ctx, collab)
	if err != nil {
		return err
	}
	var b wire.BudgetStatus
	if err := json.Unmarshal(raw, &b); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARTNER\tBUDGET\tSPENT\tREMAINING\tREFRESH\tDELTA BUDGET\tDELTA SPENT\tDELTA REMAINING")
	for _, x := range b.Budgets {
		who := x.PartnerName
		if who == "" {
			who = x.PartnerID
		}
		refresh := string(x.Refresh)
		if x.NextRefresh != nil {
			refresh += ", next " + x.NextRefresh.UTC().Format(time.DateOnly)
		}
		fmt.Fprintf(w, "%s\t%g\t%g\t%g\t%s\t%g\t%g\t%g\n", printable(who), x.Budget, x.Spent, x.Remaining, printable(refresh), x.DeltaBudget, x.DeltaSpent, x.DeltaRemaining)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, x := range b.Budgets {
		if x.Summary == "" {
			continue
		}
		who := x.PartnerName
		if who == "" {
			who = x.PartnerID
		}
		fmt.Fprintf(out, "%s: %s\n", printable(who), printable(x.Summary))
	}
	_, err = fmt.Fprintf(out, "collaboration total (both partners, matches included): epsilon %g, delta %g\n", b.CollaborationEpsilonSpent, b.CollaborationDeltaSpent)
	return err
}

// placeSQL says where in the SQL a refusal for its text lies as a person
// counts, "at line 2, column 19", instead of the API's byte offset ("at
// position 40"), which the message would otherwise state.
func placeSQL(sql string, err error) error {
	var e *client.Error
	if err == nil || sql == "" || !errors.As(err, &e) || e.Position < 0 || e.Position > len(sql) {
		return err
	}
	before := sql[:e.Position]
	line := 1 + strings.Count(before, "\n")
	col := 1 + utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:])
	placed := *e
	at := fmt.Sprintf(" at line %d, column %d", line, col)
	if m := " at position " + strconv.Itoa(e.Position); strings.Contains(e.Message, m) {
		placed.Message = strings.Replace(e.Message, m, at, 1)
	} else {
		placed.Message = e.Message + at
	}
	return &placed
}
