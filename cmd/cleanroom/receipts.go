package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/wire"
)

// The receipts and access requests a partner's own requests produced, as
// the console's data page lists them: the CLI reads what the console
// reads.

func newReceiptListCmd() *cobra.Command {
	var c conn
	var collab string
	var f outFormat
	cmd := &cobra.Command{
		Use:   "list --collab COLLAB [--format table|json]",
		Short: "Your partner's deletion and opt-out receipts in a collaboration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, rs, err := fetchReceipts(cmd, &c, "receipt list", &collab)
			if err != nil {
				return err
			}
			return f.print(cmd, l, func(w io.Writer) { receiptRows(w, rs) })
		},
	}
	c.flags(cmd)
	f.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name")
	return cmd
}

// fetchReceipts reads the partner's receipts in collab, as signed (l)
// and decoded (rs); what names the command in errors.
func fetchReceipts(cmd *cobra.Command, c *conn, what string, collab *string) (wire.ReceiptList, []audit.Receipt, error) {
	cl, err := c.collabClient(cmd.Context(), what, collab)
	if err != nil {
		return wire.ReceiptList{}, nil, err
	}
	l, err := cl.Receipts(cmd.Context(), *collab)
	if err != nil {
		return wire.ReceiptList{}, nil, err
	}
	rs, err := decodeReceipts(l)
	if err != nil {
		return wire.ReceiptList{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	return l, rs, nil
}

func newReceiptGetCmd() *cobra.Command {
	var c conn
	var collab string
	cmd := &cobra.Command{
		Use:   "get RECEIPT_ID --collab COLLAB",
		Short: "Print one receipt as the server signed it (JSON), for cleanroom receipt verify",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, rs, err := fetchReceipts(cmd, &c, "receipt get", &collab)
			if err != nil {
				return err
			}
			for i, r := range rs {
				if r.ID == args[0] {
					return printOut(cmd, l.Receipts[i])
				}
			}
			return fmt.Errorf("receipt get: no receipt %s among your partner's in %s (cleanroom receipt list --collab %s)", printable(args[0]), printable(collab), printable(collab))
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name")
	return cmd
}

func decodeReceipts(l wire.ReceiptList) ([]audit.Receipt, error) {
	out := make([]audit.Receipt, len(l.Receipts))
	for i, raw := range l.Receipts {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("the server's receipt %d: %w", i+1, err)
		}
	}
	return out, nil
}

// receiptRows prints receipts as a table, newest first.
func receiptRows(out io.Writer, rs []audit.Receipt) {
	if len(rs) == 0 {
		fmt.Fprintln(out, "No deletion or opt-out yet: cleanroom delete and cleanroom optout print their receipts.")
		return
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].At.After(rs[j].At) })
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tKIND\tAT\tIDENTIFIERS\tROWS DELETED\tTOKENS\tLOG ENTRY")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%d\n", printable(r.ID), printable(r.Kind), when(r.At), r.Identifiers, tableRows(r.AudienceRows, r.TableRows), r.Tokens, r.AuditSeq)
	}
	w.Flush()
}

// tableRows is a count of rows, split by table name when there is a split.
func tableRows(total int64, by map[string]int64) string {
	if len(by) == 0 {
		return fmt.Sprint(total)
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", printable(n), by[n])
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func newAccessRequestsCmd() *cobra.Command {
	var c conn
	var collab string
	var f outFormat
	cmd := &cobra.Command{
		Use:   "access-requests --collab COLLAB [--format table|json]",
		Short: "Your partner's access requests in a collaboration: when, which key, what each found",
		Long: `access-requests lists the access requests your partner's keys made in the
collaboration, newest first, as the audit log records them: when, which key,
how many of your partner's rows the person had, by table, and whether they
had opted out. Never the person, nor whether they matched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.collabClient(cmd.Context(), "access-requests", &collab)
			if err != nil {
				return err
			}
			l, err := cl.AccessRequests(cmd.Context(), collab)
			if err != nil {
				return err
			}
			return f.print(cmd, l, func(w io.Writer) { accessRows(w, l.AccessRequests) })
		},
	}
	c.flags(cmd)
	f.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name")
	return cmd
}

func accessRows(out io.Writer, ars []wire.AccessRequestRecord) {
	if len(ars) == 0 {
		fmt.Fprintln(out, "No access request yet: cleanroom access-request asks one.")
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AT\tKEY\tLABEL\tROWS FOUND\tOPTED OUT\tLOG ENTRY")
	for _, a := range ars {
		opted := "no"
		if a.OptedOut {
			opted = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", when(a.At), printable(a.KeyID), printable(a.KeyLabel), tableRows(a.Rows, a.TableRows), opted, a.AuditSeq)
	}
	w.Flush()
}
