package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// conn holds the server flags every client command shares.
type conn struct{ url, key string }

func (c *conn) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.url, "url", "", "server URL (default $CLEANROOM_URL, or http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&c.key, "key", "", "API key (default $CLEANROOM_KEY); a key file's path works too")
}

func (c *conn) client() (*client.Client, error) {
	url := firstNonEmpty(c.url, os.Getenv("CLEANROOM_URL"), "http://127.0.0.1:8080")
	key := firstNonEmpty(c.key, os.Getenv("CLEANROOM_KEY"))
	if key == "" {
		return nil, errors.New("no API key: set CLEANROOM_KEY or pass --key (the operator's is in the server's data directory, operator-admin.key)")
	}
	if !strings.HasPrefix(key, "crk_") {
		// A path to a file holding the key keeps it out of shell history.
		b, err := os.ReadFile(key)
		if err != nil {
			return nil, fmt.Errorf("--key is neither an API key (crk_...) nor a readable file: %v", err)
		}
		key = strings.TrimSpace(string(b))
	}
	return client.New(url, key), nil
}

// collabClient is client for commands that act on one collaboration.
func (c *conn) collabClient(cmdName, collab string) (*client.Client, error) {
	if collab == "" {
		return nil, fmt.Errorf("%s: --collab is required", cmdName)
	}
	return c.client()
}

// clientNoKey is for the routes that need no key.
func (c *conn) clientNoKey() *client.Client {
	return client.New(firstNonEmpty(c.url, os.Getenv("CLEANROOM_URL"), "http://127.0.0.1:8080"), "")
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// printOut prints v as indented JSON, control characters escaped.
func printOut(cmd *cobra.Command, v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(b)
	return err
}

// encodeJSON is v as indented JSON with every control character escaped
// (escapeControls), whoever reads it.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return escapeControls(b.Bytes()), nil
}

func newPartnersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "partners", Short: "Create and list partners (operator)"}
	var c conn
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a partner and its first admin key (operator's admin key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			out, err := cl.CreatePartner(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created partner %s (%s); its admin key is shown once below: give it to the partner's admin alone, who should replace it at once (cleanroom keys rotate --key SECRET), since you have seen it\n", printable(out.Partner.Name), printable(out.Partner.ID))
			return printOut(cmd, out)
		},
	}
	c.flags(create)
	var lc conn
	list := &cobra.Command{
		Use:   "list",
		Short: "List partners",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := lc.client()
			if err != nil {
				return err
			}
			ps, err := cl.ListPartners(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME")
			for _, p := range ps {
				fmt.Fprintf(w, "%s\t%s\n", printable(p.ID), printable(p.Name))
			}
			return w.Flush()
		},
	}
	lc.flags(list)
	cmd.AddCommand(create, list, newCapCmd())
	return cmd
}

// newCapCmd reads or sets the key's partner's exposure cap.
func newCapCmd() *cobra.Command {
	var c conn
	var eps, delta float64
	var refresh string
	var remove, asJSON bool
	cmd := &cobra.Command{
		Use:   "cap [--epsilon E] [--delta D] [--refresh none|monthly] [--remove]",
		Short: "Show or set your partner's cap on its people's exposure across all its collaborations",
		Long: `cap shows the cap on the epsilon and delta the key's partner's people may be
exposed to across all its collaborations, and the total counted against it
(every charge in any of them, queries and matches, by either partner). Any
key of the partner reads it.

With --epsilon or --delta (an admin key) it sets the cap: a query or match
whose charge would pass it, or the other partner's cap, is refused
(exposure_cap_exceeded). --refresh none (the default) counts every charge
ever made; monthly counts the calendar month (UTC). A part not given is not
capped. --remove removes the cap.

  cleanroom partners cap --epsilon 5 --delta 1e-4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set := cmd.Flags().Changed("epsilon") || cmd.Flags().Changed("delta")
			if remove && set {
				return errors.New("partners cap: --remove takes no --epsilon or --delta")
			}
			if cmd.Flags().Changed("refresh") && !set {
				return errors.New("partners cap: --refresh goes with --epsilon or --delta")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			me, err := cl.Me(cmd.Context())
			if err != nil {
				return err
			}
			if me.Operator {
				return errors.New("partners cap: the operator has no people to cap; a partner's keys read and set its cap")
			}
			var out wire.ExposureCap
			switch {
			case remove:
				out, err = cl.SetExposureCap(cmd.Context(), me.PartnerID, wire.ExposureCapRequest{})
			case set:
				req := wire.ExposureCapRequest{Refresh: wire.BudgetRefresh(refresh)}
				if cmd.Flags().Changed("epsilon") {
					req.Epsilon = &eps
				}
				if cmd.Flags().Changed("delta") {
					req.Delta = &delta
				}
				out, err = cl.SetExposureCap(cmd.Context(), me.PartnerID, req)
			default:
				out, err = cl.ExposureCap(cmd.Context(), me.PartnerID)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printOut(cmd, out)
			}
			printCap(cmd.OutOrStdout(), me.PartnerName, out)
			return nil
		},
	}
	c.flags(cmd)
	cmd.Flags().Float64Var(&eps, "epsilon", 0, "cap on the total epsilon")
	cmd.Flags().Float64Var(&delta, "delta", 0, "cap on the total delta")
	cmd.Flags().StringVar(&refresh, "refresh", "none", "none: every charge ever made; monthly: the calendar month (UTC)")
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the cap")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON answer")
	return cmd
}

// printCap prints a partner's exposure cap as a table.
func printCap(out io.Writer, name string, c wire.ExposureCap) {
	period := "all time"
	if c.Refresh == wire.RefreshMonthly {
		period = "since " + c.PeriodStart.UTC().Format("2006-01-02") + " (monthly, UTC)"
	}
	part := func(v *float64) string {
		if v == nil {
			return "none"
		}
		return fmt.Sprint(*v)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\tCAP\tSPENT\tREMAINING")
	fmt.Fprintf(w, "epsilon\t%s\t%v\t%s\n", part(c.Epsilon), c.EpsilonSpent, part(c.EpsilonRemaining))
	fmt.Fprintf(w, "delta\t%s\t%v\t%s\n", part(c.Delta), c.DeltaSpent, part(c.DeltaRemaining))
	w.Flush()
	fmt.Fprintf(out, "%s's people's exposure across all its collaborations, %s: every charge, queries and matches, by either partner\n", name, period)
}

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create, list and revoke a partner's API keys (partner admin)"}
	var c conn
	var role, label string
	create := &cobra.Command{
		Use:   "create PARTNER_ID --role ROLE",
		Short: "Create an API key with a role: admin, engineer, analyst or auditor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			out, err := cl.CreateKey(cmd.Context(), args[0], role, label)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "the key's secret is shown once; the server keeps only its hash")
			return printOut(cmd, out)
		},
	}
	c.flags(create)
	create.Flags().StringVar(&role, "role", "", "admin, engineer, analyst or auditor")
	create.Flags().StringVar(&label, "label", "", "a note on who holds the key")
	var lc conn
	list := &cobra.Command{
		Use: "list PARTNER_ID", Short: "List a partner's keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := lc.client()
			if err != nil {
				return err
			}
			keys, err := cl.ListKeys(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printOut(cmd, keys)
		},
	}
	lc.flags(list)
	var rc conn
	revoke := &cobra.Command{
		Use: "revoke PARTNER_ID KEY_ID", Short: "Revoke a key at once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := rc.client()
			if err != nil {
				return err
			}
			k, err := cl.RevokeKey(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return printOut(cmd, k)
		},
	}
	rc.flags(revoke)
	cmd.AddCommand(create, list, revoke, newKeysRotateCmd())
	return cmd
}

func newKeysRotateCmd() *cobra.Command {
	var c conn
	var label string
	cmd := &cobra.Command{
		Use:   "rotate [KEY_ID] [--label LABEL]",
		Short: "Replace a key with a new one of the same role and label, and revoke it (default: the key in use)",
		Long: `rotate creates a key with the old key's role and label (or --label), prints its
secret once, then revokes the old key: with the new key when the old one is
the key in use, so the new key is known to work before the old one stops.
Rotate the first admin key the operator handed over at once: the operator
has seen its secret. Both steps are logged (key.create, key.revoke). An
admin's key.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			me, err := cl.Me(ctx)
			if err != nil {
				return err
			}
			if me.Operator {
				return errors.New("keys rotate: the operator's key is not managed through the API; rotate a partner's keys with its admin's key")
			}
			old := wire.Key{ID: me.KeyID, PartnerID: me.PartnerID, Role: me.Role, Label: me.Label}
			if len(args) == 1 && args[0] != me.KeyID {
				keys, err := cl.ListKeys(ctx, me.PartnerID)
				if err != nil {
					return err
				}
				i := slices.IndexFunc(keys, func(k wire.Key) bool { return k.ID == args[0] })
				if i < 0 {
					return fmt.Errorf("keys rotate: no key %s among your partner's keys (cleanroom keys list %s)", printable(args[0]), printable(me.PartnerID))
				}
				if old = keys[i]; old.RevokedAt != nil {
					return fmt.Errorf("keys rotate: key %s is revoked already; create a new one with cleanroom keys create", printable(old.ID))
				}
			}
			newLabel := old.Label
			if cmd.Flags().Changed("label") {
				newLabel = label
			}
			nk, err := cl.CreateKey(ctx, me.PartnerID, string(old.Role), newLabel)
			if err != nil {
				hint := ""
				if client.CodeOf(err) == wire.CodeInvalid {
					hint = "; --label gives the new key another label"
				}
				return fmt.Errorf("keys rotate: creating the new key: %w (nothing changed%s)", err, hint)
			}
			// The secret is printed before the old key goes: should the
			// revocation fail, the new key must not be lost with it.
			if err := printOut(cmd, nk); err != nil {
				return err
			}
			revoker := cl
			if old.ID == me.KeyID {
				revoker = client.New(cl.BaseURL, nk.Secret)
			}
			if _, err := revoker.RevokeKey(ctx, me.PartnerID, old.ID); err != nil {
				return fmt.Errorf("keys rotate: the new key above is in place, but revoking the old key %[1]s failed: %[2]w; revoke it with cleanroom keys revoke %[3]s %[1]s", printable(old.ID), err, printable(me.PartnerID))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "key %s (%s) replaced by key %s, whose secret is shown once above; the old key no longer works\n",
				printable(old.ID), printable(string(old.Role)), printable(nk.Key.ID))
			return nil
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&label, "label", "", "the new key's label (default: the old key's)")
	return cmd
}

func newCollabCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "collab", Short: "Propose, approve, change and show collaborations"}
	var pc conn
	var name, partner, rulesFile string
	propose := &cobra.Command{
		Use:   "propose --name NAME --partner PARTNER_ID [--rules FILE]",
		Short: "Propose a collaboration; the other partner's admin approves it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := pc.client()
			if err != nil {
				return err
			}
			rules, err := readRules(rulesFile)
			if err != nil {
				return err
			}
			co, err := cl.Propose(cmd.Context(), name, partner, rules)
			if err != nil {
				return err
			}
			return printOut(cmd, co)
		},
	}
	pc.flags(propose)
	propose.Flags().StringVar(&name, "name", "", "collaboration name")
	propose.Flags().StringVar(&partner, "partner", "", "the other partner's ID")
	propose.Flags().StringVar(&rulesFile, "rules", "", "rules JSON file (fields left out take the defaults)")
	// approve and reject: the partner asked answers the current rules.
	decision := func(use, short string, call func(*client.Client, context.Context, string, int) (wire.Collaboration, error)) *cobra.Command {
		var dc conn
		var version int
		c := &cobra.Command{
			Use: use + " COLLAB_ID [--version N]", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := dc.client()
				if err != nil {
					return err
				}
				co, err := call(cl, cmd.Context(), args[0], version)
				if err != nil {
					return err
				}
				return printOut(cmd, co)
			},
		}
		dc.flags(c)
		c.Flags().IntVar(&version, "version", 0, "the rules version you reviewed (refused if the rules changed since)")
		return c
	}
	approve := decision("approve", "Approve a collaboration's rules", (*client.Client).Approve)
	reject := decision("reject", "Reject a pending change of the rules: the rules both last approved come back", (*client.Client).Reject)
	var rc conn
	var newRules string
	rules := &cobra.Command{
		Use: "rules COLLAB_ID --rules FILE", Short: "Propose new rules; the other partner must approve again", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := rc.client()
			if err != nil {
				return err
			}
			r, err := readRules(newRules)
			if err != nil {
				return err
			}
			co, err := cl.ChangeRules(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			return printOut(cmd, co)
		},
	}
	rc.flags(rules)
	rules.Flags().StringVar(&newRules, "rules", "", "rules JSON file")
	var sc conn
	show := &cobra.Command{
		Use: "show [COLLAB_ID]", Short: "Show one collaboration, or list yours", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := sc.client()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				co, err := cl.Collaboration(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printOut(cmd, co)
			}
			cs, err := cl.Collaborations(cmd.Context())
			if err != nil {
				return err
			}
			return printOut(cmd, cs)
		},
	}
	sc.flags(show)
	cmd.AddCommand(propose, approve, reject, rules, show)
	return cmd
}

func readRules(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON", path)
	}
	return b, nil
}

func newMatchCmd() *cobra.Command {
	var c conn
	var collab, keyFile string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "match --collab ID --psi-key FILE",
		Short: "Do this party's half of the match and print the noisy cohort size",
		Long: `match starts (or joins) the collaboration's match, fetches the other party's
blinded points, re-blinds them with this party's key on all cores and sends
them back, then waits for the other party. The cohort size it prints has
differential-privacy noise: exact sizes are never released. Running it
again is safe.

The key must be the one this party's tables were uploaded with: the
server knows it by its fingerprint and refuses another (key_mismatch)
before anything is charged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			if collab == "" || keyFile == "" {
				return errors.New("match: --collab and --psi-key are required")
			}
			key, err := psi.LoadKey(keyFile)
			if err != nil {
				return err
			}
			m, err := cl.DoMatch(cmd.Context(), collab, key, client.MatchOptions{NoWait: noWait, Waiting: func() {
				fmt.Fprintln(cmd.ErrOrStderr(), "waiting for the other party to upload its audience (Ctrl-C to stop; running match again later is safe)")
			}})
			if err != nil {
				return err
			}
			if m.NoisySize != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "match %s done: cohort of about %d people (Laplace noise, epsilon %g)\n", printable(m.ID), *m.NoisySize, m.Epsilon)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "match %s: %s; this party's half is in, waiting for the other party\n", printable(m.ID), printable(string(m.State)))
			}
			return nil
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID")
	cmd.Flags().StringVar(&keyFile, "psi-key", "", "this party's blinding key file (cleanroom keygen)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once this party's half is in")
	return cmd
}
