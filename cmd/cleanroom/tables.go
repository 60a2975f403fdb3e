package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/wire"
)

func newTablesCmd() *cobra.Command {
	var c conn
	var collab string
	var asJSON bool
	var f outFormat
	cmd := &cobra.Command{
		Use:   "tables COLLAB [--format table|json]",
		Short: "Each party's tables in a collaboration: names, columns and their roles, and your own tables' sizes",
		Long: `tables lists each party's tables in the collaboration: the tables the rules
declare (uploaded or not yet) and the tables uploaded, each with its columns,
their types and the role the rules give them (dimension, metric with its
per-person bounds, or time). Row and people counts are shown for your own
partner's tables only: the other partner's sizes are its own business (the
operator sees both). Where the rules declare no tables each party has one,
named audience, and the rules' dimensions and metrics are what analysts may
use.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if collab != "" && collab != args[0] {
					return fmt.Errorf("tables: two collaborations given (%s and --collab %s): give one", args[0], collab)
				}
				collab = args[0]
			}
			if collab == "" {
				return errors.New("tables: say which collaboration: cleanroom tables COLLAB_ID (cleanroom collab show lists yours)")
			}
			cl, err := c.collabClient(cmd.Context(), "tables", &collab)
			if err != nil {
				return err
			}
			list, err := cl.Audiences(cmd.Context(), collab)
			if err != nil {
				return err
			}
			if asJSON || f == "json" {
				return printOut(cmd, list)
			}
			co, err := cl.Collaboration(cmd.Context(), collab)
			if err != nil {
				return err
			}
			return printTables(cmd.OutOrStdout(), co, list)
		},
	}
	c.flags(cmd)
	f.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name (or give it as the argument)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "same as --format json: the server's answer (GET .../audiences)")
	cmd.Flags().MarkHidden("json")
	return cmd
}

// printTables prints each party's tables: the declared ones in rule
// order, then any other uploaded, each with its columns and their roles
// (by the rules in force while a change awaits approval), and the sizes
// the server gave (the reader's own tables'). Everything that came from
// the server is printed through printable.
func printTables(out io.Writer, co wire.Collaboration, list wire.AudienceList) error {
	fmt.Fprintf(out, "Tables of collaboration %s (%s), rules v%d, %s\n", printable(co.Name), printable(co.ID), co.RulesVersion, printable(co.State))
	rules := co.Rules
	if co.ApprovedRules != nil {
		rules = *co.ApprovedRules
		fmt.Fprintln(out, "(a change of the rules awaits approval: the tables and roles below are those of the rules in force; cleanroom collab show has both)")
	}
	declared := len(rules.Tables) > 0
	for _, side := range []struct{ id, name, party string }{
		{co.Proposer, co.ProposerName, wire.PartyProposer},
		{co.Partner, co.PartnerName, wire.PartyPartner},
	} {
		who := side.name
		if who == "" {
			who = side.id
		}
		fmt.Fprintf(out, "\n%s (%s)\n", printable(who), side.party)
		uploaded := map[string]wire.Audience{}
		var names []string
		for _, t := range rules.TablesOf(side.party) {
			names = append(names, t.Name)
		}
		var extra []string
		for _, a := range list.Tables[side.id] {
			uploaded[a.Table] = a
			if _, ok := rules.Table(side.party, a.Table); !ok {
				extra = append(extra, a.Table)
			}
		}
		sort.Strings(extra)
		names = append(names, extra...)
		if len(names) == 0 {
			fmt.Fprintln(out, "  no table uploaded yet")
			continue
		}
		for _, name := range names {
			rule, isDeclared := rules.Table(side.party, name)
			a, isUploaded := uploaded[name]
			head := "  " + printable(name) + ": "
			switch {
			case !isUploaded:
				head += "declared, not uploaded yet"
			default:
				head += "audience " + printable(a.ID) + ", uploaded " + when(a.CreatedAt)
				if a.Rows > 0 || a.ContentSHA256 != "" {
					head += fmt.Sprintf("; %d rows, %d people, %d who can match", a.Rows, a.People, a.PeopleMatchable)
				} else {
					head += "; its sizes are " + printable(who) + "'s own"
				}
				if declared && !isDeclared {
					head += " (the rules declare no such table)"
				}
			}
			fmt.Fprintln(out, head)
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "    COLUMN\tTYPE\tROLE")
			for _, col := range tableColumns(a, isUploaded, rule, isDeclared) {
				fmt.Fprintf(w, "    %s\t%s\t%s\n", printable(col[0]), printable(col[1]), printable(col[2]))
			}
			w.Flush()
		}
	}
	if !declared {
		var dims, metrics []string
		dims = append(dims, rules.Dimensions...)
		for m, b := range rules.Metrics {
			metrics = append(metrics, fmt.Sprintf("%s [%g, %g]", m, b[0], b[1]))
		}
		sort.Strings(metrics)
		none := func(xs []string) string {
			if len(xs) == 0 {
				return "none"
			}
			for i, x := range xs {
				xs[i] = printable(x)
			}
			return strings.Join(xs, ", ")
		}
		fmt.Fprintf(out, "\nThe rules declare no tables: each party has one, named %s, and analysts may use the rules' dimensions (%s) and metrics (%s).\n",
			wire.DefaultTable, none(dims), none(metrics))
	}
	return nil
}

// tableColumns gives a table's columns as name, type and role: the
// uploaded columns in upload order, then any declared column the upload
// lacks (or every declared column of a table not uploaded yet).
func tableColumns(a wire.Audience, isUploaded bool, rule wire.TableRule, isDeclared bool) [][3]string {
	roles := map[string]string{}
	for _, c := range rule.Columns {
		roles[c.Name] = columnRole(c)
	}
	role := func(name string) string {
		switch {
		case name == audience.PIDColumn:
			return "blinded identifier"
		case name == audience.ConsentColumn:
			return "consent purposes"
		case roles[name] != "":
			return roles[name]
		}
		return "not declared"
	}
	var out [][3]string
	seen := map[string]bool{}
	if isUploaded {
		var cols []struct{ Name, Type string }
		_ = json.Unmarshal(a.Columns, &cols) // columns that do not decode show as none
		for _, c := range cols {
			seen[c.Name] = true
			out = append(out, [3]string{c.Name, arrowTypeName(c.Type), role(c.Name)})
		}
	}
	if isDeclared {
		for _, c := range rule.Columns {
			if !seen[c.Name] {
				out = append(out, [3]string{c.Name, "-", roles[c.Name]})
			}
		}
	}
	return out
}

// columnRole says a declared column's role, with a metric's bounds.
func columnRole(c wire.ColumnRule) string {
	if c.Role == wire.RoleMetric && c.Bounds != nil {
		return fmt.Sprintf("metric [%g, %g]", c.Bounds[0], c.Bounds[1])
	}
	return printable(string(c.Role))
}
