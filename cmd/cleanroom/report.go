package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/internal/console"
	"github.com/cleanroom/cleanroom/internal/report"
	"github.com/cleanroom/cleanroom/wire"
)

// reportOutput is the --format and -o flags of a command that prints a
// report as text, JSON or one self-contained HTML page.
type reportOutput struct{ format, file string }

func (o *reportOutput) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.format, "format", "text", "text, json or html (one self-contained page: give -o FILE)")
	cmd.Flags().StringVarP(&o.file, "output", "o", "", "write to FILE instead of standard output")
}

// check refuses what cannot be written before anything is asked of the
// server.
func (o *reportOutput) check(cmd *cobra.Command, name string) error {
	switch o.format {
	case "text", "json", "html":
	default:
		return fmt.Errorf("%s: --format %q: want text, json or html", name, o.format)
	}
	if o.format == "html" && o.file == "" && outIsTTY(cmd.OutOrStdout()) {
		return fmt.Errorf("%s: --format html writes a whole HTML page, not for a terminal: give -o FILE (for example -o %s.html) or redirect the output", name, name)
	}
	return nil
}

// write renders v in the chosen format, page naming its HTML page, and
// writes it whole (a failed render leaves no half-written file).
func (o *reportOutput) write(cmd *cobra.Command, v any, page string, text func(io.Writer, any) error) error {
	var out []byte
	var err error
	switch o.format {
	case "json":
		out, err = encodeJSON(v)
	case "html":
		// The page's own scripts escape what they show; its bytes stay.
		var b bytes.Buffer
		err = console.Standalone(&b, page, v)
		out = b.Bytes()
	default:
		// Each field is printable already; escaping the whole text too
		// keeps a field a printer forgot from reaching a terminal raw.
		var b bytes.Buffer
		err = text(&b, v)
		out = escapeControls(b.Bytes())
	}
	if err != nil {
		return err
	}
	if o.file == "" {
		_, err = cmd.OutOrStdout().Write(out)
		return err
	}
	if err := os.WriteFile(o.file, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", o.file)
	return nil
}

// outIsTTY is isTTY; tests replace it.
var outIsTTY = isTTY

// isTTY reports whether w is a terminal: a character device other than
// /dev/null (isTerminal counts that one too).
func isTTY(w io.Writer) bool {
	if !isTerminal(w) {
		return false
	}
	st, err := w.(*os.File).Stat()
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

func newReportCmd() *cobra.Command {
	var c conn
	var collab string
	var o reportOutput
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report COLLAB [--format text|json|html] [-o FILE]",
		Short: "The collaboration's transparency report, as text, JSON or a self-contained HTML page",
		Long: `report prints the collaboration's transparency report: the data held (sizes
and consent mix of your own audience only), matches with their noisy sizes,
queries per analyst, budget spent by day, refusals by reason, and the
deletions and expiries honoured with how long each took.

  cleanroom report c_... --format html -o report.html   # one file, charts included, no network needed`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if collab != "" && collab != args[0] {
					return fmt.Errorf("report: two collaborations given (%s and --collab %s): give one", args[0], collab)
				}
				collab = args[0]
			}
			if asJSON {
				o.format = "json"
			}
			if collab == "" {
				return errors.New("report: say which collaboration: cleanroom report COLLAB_ID (cleanroom collab show lists yours)")
			}
			if err := o.check(cmd, "report"); err != nil {
				return err
			}
			cl, err := c.collabClient(cmd.Context(), "report", &collab)
			if err != nil {
				return err
			}
			rep, err := cl.Report(cmd.Context(), collab)
			if err != nil {
				return err
			}
			return o.write(cmd, rep, "report", func(w io.Writer, v any) error { return printReport(w, v.(wire.Report)) })
		},
	}
	c.flags(cmd)
	o.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name (or give it as the argument)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "same as --format json")
	cmd.Flags().MarkHidden("collab")
	cmd.Flags().MarkHidden("json")
	return cmd
}

// when formats a time for people, in UTC to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// table prints rows under a header, aligned, each line indented, each
// cell printable.
func table(out io.Writer, header []string, rows [][]string) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "  %s\n", strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = printable(c)
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(cells, "\t"))
	}
	w.Flush()
}

// columnList gives an audience's columns as "name (type), ...".
func columnList(raw json.RawMessage) string {
	var cols []struct{ Name, Type string }
	if err := json.Unmarshal(raw, &cols); err != nil || len(cols) == 0 {
		return "-"
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = printable(c.Name) + " (" + printable(arrowTypeName(c.Type)) + ")"
	}
	return strings.Join(parts, ", ")
}

// listType matches Arrow's name of a list type, whose item name and
// nullability say nothing to a reader.
var listType = regexp.MustCompile(`^(large_)?list<item: ([^,>]+)(, nullable)?>$`)

// arrowTypeName shortens an Arrow type name for people: utf8 is string,
// date32 is date, list<item: utf8, nullable> is list<string>.
func arrowTypeName(t string) string {
	if m := listType.FindStringSubmatch(t); m != nil {
		return "list<" + arrowTypeName(m[2]) + ">"
	}
	switch t {
	case "utf8", "large_utf8":
		return "string"
	case "date32", "date64":
		return "date"
	}
	return t
}

// refusalReasons says in words what each refusal code means.
var refusalReasons = map[wire.ErrorCode]string{
	wire.CodeSyntax:               "SQL that does not parse",
	wire.CodeUnsupported:          "a construct outside the SQL subset",
	wire.CodeLimit:                "over a size limit",
	wire.CodeEpsilonNotAllowed:    "an epsilon outside the rules",
	wire.CodeNotReleasable:        "parameters the noise library refused",
	wire.CodeNotAllowed:           "a column or aggregate the rules do not allow",
	wire.CodeHiddenColumn:         "a hidden column (uid, row ids)",
	wire.CodeNotAQuerier:          "a partner the rules do not let query",
	wire.CodeNoCohort:             "no cohort yet",
	wire.CodeCohortTooSmall:       "a cohort under min_cohort_users",
	wire.CodeRulesInvalid:         "rules that need changing first",
	wire.CodeBudgetExhausted:      "epsilon budget spent",
	wire.CodeDeltaBudgetExhausted: "delta budget spent",
	wire.CodeTooManyQueries:       "too many questions at once from one key",
	wire.CodeExposureCapExceeded:  "a partner's exposure cap reached",
	wire.CodeConflict:             "a collaboration not active",
	wire.CodeForbidden:            "a key whose role may not query",
}

// printReport prints a transparency report for people: partners by name,
// one aligned table per section.
func printReport(out io.Writer, rep wire.Report) error {
	co := rep.Collaboration
	names := map[string]string{co.Proposer: co.ProposerName, co.Partner: co.PartnerName}
	name := func(id string) string {
		if n := names[id]; n != "" {
			return printable(n)
		}
		return printable(id)
	}
	fmt.Fprintf(out, "Transparency report: collaboration %s (%s), %s\n", printable(co.Name), printable(co.ID), printable(co.State))
	fmt.Fprintf(out, "between %s (proposer) and %s; purpose %s; generated %s\n", name(co.Proposer), name(co.Partner), printable(co.Rules.Purpose), when(rep.GeneratedAt))

	section := func(title string, empty bool) bool {
		fmt.Fprintf(out, "\n%s:\n", title)
		if empty {
			fmt.Fprintln(out, "  none")
		}
		return !empty
	}

	if section("Data held", len(rep.DataHeld) == 0) {
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, h := range rep.DataHeld {
			tables := h.Tables
			if len(tables) == 0 && h.Audience != nil {
				tables = []wire.Audience{*h.Audience}
			}
			if len(tables) == 0 {
				fmt.Fprintf(w, "  %s\tno audience\n", name(h.PartnerID))
				continue
			}
			for i, a := range tables {
				who := ""
				if i == 0 {
					who = name(h.PartnerID)
				}
				line := "audience " + printable(a.ID)
				if a.Table != "" && a.Table != wire.DefaultTable {
					line = "table " + printable(a.Table) + ", " + line
				}
				if a.Rows > 0 {
					line += fmt.Sprintf(": %d rows, %d people, %d who can match", a.Rows, a.People, a.PeopleMatchable)
				}
				fmt.Fprintf(w, "  %s\t%s; uploaded %s\n", who, line, when(a.CreatedAt))
				fmt.Fprintf(w, "  \tcolumns: %s\n", columnList(a.Columns))
			}
			if len(h.ConsentRowsByPurpose) > 0 {
				var mix []string
				for _, p := range h.ConsentRowsByPurpose {
					mix = append(mix, fmt.Sprintf("%s %d rows", printable(p.Purpose), p.Rows))
				}
				fmt.Fprintf(w, "  \tconsent: %s\n", strings.Join(mix, ", "))
			}
		}
		w.Flush()
	}

	if section("Matches (noisy cohort sizes)", len(rep.Matches) == 0) {
		var rows [][]string
		for _, m := range rep.Matches {
			size := "-"
			if m.CohortSizeNoisy != nil {
				size = fmt.Sprint(*m.CohortSizeNoisy)
			}
			rows = append(rows, []string{m.ID, string(m.State), size, fmt.Sprintf("%g", m.Epsilon), when(m.CreatedAt)})
		}
		table(out, []string{"MATCH", "STATE", "COHORT (NOISY)", "EPSILON", "STARTED"}, rows)
	}

	if section("Queries by analyst", len(rep.QueriesByAnalyst) == 0) {
		var rows [][]string
		for _, q := range rep.QueriesByAnalyst {
			// The report names keys apart; a label alone could read
			// like another key's.
			who := printable(q.AnalystName)
			if who == "" {
				who = printable(q.AnalystLabel) + " (" + printable(q.AnalystKey) + ")"
			}
			rows = append(rows, []string{who, name(q.PartnerID), fmt.Sprint(q.Queries), fmt.Sprintf("%g", q.Epsilon)})
		}
		table(out, []string{"ANALYST", "PARTNER", "QUERIES", "EPSILON"}, rows)
	}

	if section("Privacy budget spent", len(rep.BudgetSpentByDay) == 0) {
		var rows [][]string
		for _, d := range rep.BudgetSpentByDay {
			rows = append(rows, []string{d.Day, name(d.PartnerID), d.Kind, fmt.Sprint(d.Charges), fmt.Sprintf("%g", d.Epsilon), fmt.Sprintf("%g", d.Delta)})
		}
		table(out, []string{"DAY", "PARTNER", "KIND", "CHARGES", "EPSILON", "DELTA"}, rows)
	}

	if section("Refused queries", len(rep.RefusalsByReason) == 0) {
		var rows [][]string
		for _, r := range rep.RefusalsByReason {
			rows = append(rows, []string{string(r.Reason), fmt.Sprint(r.Refusals), refusalReasons[r.Reason]})
		}
		table(out, []string{"REASON", "REFUSALS", "MEANING"}, rows)
	}

	if section("Deletions and expiries honoured", len(rep.Deletions) == 0) {
		var rows [][]string
		for _, d := range rep.Deletions {
			rows = append(rows, []string{string(d.Kind), name(d.PartnerID), fmt.Sprint(d.Receipts), fmt.Sprint(d.IdentifiersSubmitted)})
		}
		table(out, []string{"KIND", "PARTNER", "RECEIPTS", "IDENTIFIERS SUBMITTED"}, rows)
		if len(rep.Honoured) > 0 {
			fmt.Fprintln(out, "\n  each receipt, and how long honouring it took:")
			rows = rows[:0]
			for _, h := range rep.Honoured {
				took := h.Took
				if took == "" {
					took = report.Duration(h.Seconds)
				}
				rows = append(rows, []string{h.ReceiptID, string(h.Kind), name(h.PartnerID), when(h.RequestedAt), took})
			}
			table(out, []string{"RECEIPT", "KIND", "PARTNER", "REQUESTED", "TOOK"}, rows)
		}
	}

	fmt.Fprintf(out, "\nExposure (epsilon %g, delta %g):\n", rep.Exposure.CollaborationEpsilonSpent, rep.Exposure.CollaborationDeltaSpent)
	exposure := rep.Words.Exposure
	if exposure == "" {
		exposure = report.ExposureWords(rep.Exposure)
	}
	_, err := fmt.Fprint(out, wrap(printable(exposure), "  ", "  ", 78))
	return err
}

func newPrivacyReportCmd() *cobra.Command {
	var c conn
	var partner, since, until string
	var o reportOutput
	cmd := &cobra.Command{
		Use:   "privacy-report [--partner PID] [--since DATE] [--until DATE] [--format text|json|html] [-o FILE]",
		Short: "The public privacy report: how a partner's data was used, in plain language, for its customers",
		Long: `privacy-report prints the public privacy report of a partner (by default the
key's own) over a period (by default the last 365 days): the collaborations
and purposes its data was used for, that no identifier left it in the
clear, what the privacy guarantee means, and how many opt-outs and deletion
requests were honoured and how fast. Only aggregate figures: nothing about
any person, nor about the other partner's data. An admin or auditor key.

Dates are RFC 3339 (2025-03-01T00:00:00Z) or a day (2025-03-01, UTC): a day
means its start for --since and its end for --until.

  cleanroom privacy-report --since 2025-01-01 --format html -o privacy.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := parseDate("privacy-report", "--since", since, false)
			if err != nil {
				return err
			}
			to, err := parseDate("privacy-report", "--until", until, true)
			if err != nil {
				return err
			}
			if !from.IsZero() && !to.IsZero() && !from.Before(to) {
				return fmt.Errorf("privacy-report: --since %s is not before --until %s", since, until)
			}
			if err := o.check(cmd, "privacy-report"); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			if partner == "" {
				me, err := cl.Me(cmd.Context())
				if err != nil {
					return err
				}
				if me.Operator {
					return errors.New("privacy-report: the operator holds no customer data: say whose report with --partner PARTNER_ID (cleanroom partners list)")
				}
				partner = me.PartnerID
			}
			rep, err := cl.PrivacyReport(cmd.Context(), partner, from, to)
			if err != nil {
				return err
			}
			return o.write(cmd, rep, "privacy", func(w io.Writer, v any) error { return printPrivacyReport(w, v.(wire.PrivacyReport)) })
		},
	}
	c.flags(cmd)
	o.flags(cmd)
	cmd.Flags().StringVar(&partner, "partner", "", "partner ID (default: the key's own partner)")
	cmd.Flags().StringVar(&since, "since", "", "start of the period (default: a year before --until)")
	cmd.Flags().StringVar(&until, "until", "", "end of the period (default: now)")
	return cmd
}

// parseDate reads an RFC 3339 time or a day (UTC); a day given as the end
// of a period means the end of that day. "" is the zero time: the
// server's default.
func parseDate(cmdName, flag, s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %s %q: want a day (2025-03-01) or an RFC 3339 time (2025-03-01T00:00:00Z)", cmdName, flag, s)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// printPrivacyReport prints the public privacy report in plain language,
// for the people in the partner's data: the sentences the page shows,
// under the page's headings.
func printPrivacyReport(out io.Writer, r wire.PrivacyReport) error {
	if r.Words.Title == "" { // a server from before the words
		report.PrivacyWords(&r)
	}
	w := r.Words
	who := r.PartnerName
	if who == "" {
		who = r.PartnerID
	}
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	para := func(s string) { fmt.Fprint(out, wrap(printable(s), "  ", "  ", 78)) }
	item := func(s string) { fmt.Fprint(out, wrap(printable(s), "  - ", "    ", 78)) }
	p("%s", printable(w.Title))
	p("%s", printable(w.Period))
	p("(generated %s)", when(r.GeneratedAt))
	for _, l := range strings.Split(r.About.Introduction, "\n") {
		if l != "" {
			p("")
			para(l)
		}
	}

	p("\nWhere your data was used")
	para(w.Uses)
	for _, c := range r.Collaborations {
		item(fmt.Sprintf("%q with %s, for the purpose %s: %s.", c.Name, c.PartnerName, c.Purpose, c.Use))
	}

	p("\nNo identifier left %s in the clear", printable(who))
	para(fmt.Sprintf("%d %s", r.IdentifiersInTheClear, w.Identifiers))

	p("\nWhat the privacy guarantee means")
	para(w.Guarantee)
	for _, c := range r.Collaborations {
		item(fmt.Sprintf("%q so far: %s", c.Name, c.Exposure))
	}
	// The collaborations' losses add up for someone in several of them:
	// the total, not the highest, is that person's exposure.
	para(fmt.Sprintf("Across all of %s's collaborations, someone in every one of them was exposed to epsilon %g in total.", who, r.TotalEpsilonSpent))
	para(capWords(who, r.ExposureCap))

	p("\nYour requests, honoured")
	p("  Opt-outs honoured:                            %d", r.OptOutsHonoured)
	p("  Deletion requests honoured:                   %d", r.DeletionsHonoured)
	p("  Expiries: data deleted when its time ran out: %d", r.ExpiriesHonoured)
	if w.MedianTime != "" {
		p("  Median time to honour one:                    %s", printable(w.MedianTime))
	}
	para(w.Requests)

	if r.About.OptOutURL != "" || r.About.PrivacyContact != "" {
		p("\nYour choices")
		if r.About.OptOutURL != "" {
			p("  To opt out: %s", printable(r.About.OptOutURL))
		}
		if r.About.PrivacyContact != "" {
			p("  Questions about privacy: %s", printable(r.About.PrivacyContact))
		}
	}
	return nil
}

// wrap breaks s into lines of at most width characters (a word longer
// than that stands alone), the first after first, the others after rest.
func wrap(s, first, rest string, width int) string {
	var b strings.Builder
	line, empty := first, true
	for _, word := range strings.Fields(s) {
		if !empty && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width {
			b.WriteString(line + "\n")
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	if !empty {
		b.WriteString(line + "\n")
	}
	return b.String()
}

// capWords states a partner's exposure cap in plain language.
func capWords(who string, c wire.ExposureCap) string {
	if c.Epsilon == nil && c.Delta == nil {
		return who + " sets no cap on that total."
	}
	var parts []string
	if c.Epsilon != nil {
		parts = append(parts, fmt.Sprintf("epsilon %g", *c.Epsilon))
	}
	if c.Delta != nil {
		parts = append(parts, "delta "+plainFloat(*c.Delta))
	}
	period, spent := "over all time", fmt.Sprintf("so far: epsilon %g, delta %s", c.EpsilonSpent, plainFloat(c.DeltaSpent))
	if c.Refresh == wire.RefreshMonthly {
		period = "in each calendar month (UTC)"
		spent = fmt.Sprintf("this month: epsilon %g, delta %s", c.EpsilonSpent, plainFloat(c.DeltaSpent))
	}
	return fmt.Sprintf("%s caps it at %s %s, and refuses any question or match past it (%s).", who, strings.Join(parts, " and "), period, spent)
}

// plainFloat writes a number without exponent notation (a delta such as
// 0.00001), which readers of a report should not have to decode.
func plainFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
