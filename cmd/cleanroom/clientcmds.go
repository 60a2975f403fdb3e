package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
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
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
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
	return client.New(base, key), nil
}

// baseURL is the server's URL from --url, $CLEANROOM_URL or the default,
// checked to be a base URL.
func (c *conn) baseURL() (string, error) {
	if c.url != "" {
		return checkServerURL("--url", c.url)
	}
	if u := os.Getenv("CLEANROOM_URL"); u != "" {
		return checkServerURL("$CLEANROOM_URL", u)
	}
	return defaultURL, nil
}

// collabClient is client for commands that act on one collaboration; it
// replaces *collab, an id or a name, with the collaboration's id.
func (c *conn) collabClient(ctx context.Context, cmdName string, collab *string) (*client.Client, error) {
	if *collab == "" {
		return nil, fmt.Errorf("%s: --collab is required (an id or a name; cleanroom collab show lists yours)", cmdName)
	}
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	if *collab, err = resolveCollab(ctx, cl, *collab); err != nil {
		return nil, fmt.Errorf("%s: %w", cmdName, err)
	}
	return cl, nil
}

// clientNoKey is for the routes that need no key.
func (c *conn) clientNoKey() (*client.Client, error) {
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	return client.New(base, ""), nil
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
	var f outFormat
	var sf secretFile
	create := &cobra.Command{
		Use:   "create NAME [--secret-file FILE]",
		Short: "Create a partner and its first admin key (operator's admin key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var out client.CreatedPartner
			err = sf.withSecret(cmd, f, func() (any, string, error) {
				out, err = cl.CreatePartner(cmd.Context(), args[0])
				return out, out.Secret, err
			}, func(w io.Writer, secret string) {
				fields(w, "partner", printable(out.Partner.ID)+"  "+printable(out.Partner.Name),
					"admin key", printable(out.AdminKey.ID)+"  "+printable(out.AdminKey.Label),
					"secret", secret)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created partner %s (%s); give its admin key to the partner's admin alone, who should replace it at once (cleanroom keys rotate --key SECRET), since you have seen it\n", printable(out.Partner.Name), printable(out.Partner.ID))
			return nil
		},
	}
	c.flags(create)
	f.flags(create)
	sf.flags(create)
	var lc conn
	var lf outFormat
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
			return lf.print(cmd, wire.PartnerList{Partners: ps}, func(out io.Writer) {
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME")
				for _, p := range ps {
					fmt.Fprintf(w, "%s\t%s\n", printable(p.ID), printable(p.Name))
				}
				w.Flush()
			})
		},
	}
	lc.flags(list)
	lf.flags(list)
	cmd.AddCommand(create, list, newCapCmd())
	return cmd
}

// keyRows prints keys as a table.
func keyRows(out io.Writer, keys ...wire.Key) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tROLE\tLABEL\tCREATED\tREVOKED")
	for _, k := range keys {
		revoked := "-"
		if k.RevokedAt != nil {
			revoked = when(*k.RevokedAt)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", printable(k.ID), printable(string(k.Role)), printable(k.Label), when(k.CreatedAt), revoked)
	}
	w.Flush()
}

// createdKeyTable prints a new key and its secret (or where it went).
func createdKeyTable(k wire.Key) func(io.Writer, string) {
	return func(w io.Writer, secret string) {
		fields(w, "key", printable(k.ID), "partner", printable(k.PartnerID), "role", printable(string(k.Role)), "label", printable(k.Label), "secret", secret)
	}
}

// newCapCmd reads or sets the key's partner's exposure cap.
func newCapCmd() *cobra.Command {
	var c conn
	var eps, delta float64
	var refresh string
	var remove bool
	var format outFormat
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
			return format.print(cmd, out, func(w io.Writer) { printCap(w, printable(me.PartnerName), out) })
		},
	}
	c.flags(cmd)
	cmd.Flags().Float64Var(&eps, "epsilon", 0, "cap on the total epsilon")
	cmd.Flags().Float64Var(&delta, "delta", 0, "cap on the total delta")
	cmd.Flags().StringVar(&refresh, "refresh", "none", "none: every charge ever made; monthly: the calendar month (UTC)")
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the cap")
	format.flags(cmd)
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
	var f outFormat
	var sf secretFile
	var role, label string
	create := &cobra.Command{
		Use:   "create PARTNER --role ROLE [--secret-file FILE]",
		Short: "Create an API key with a role: admin, engineer, analyst or auditor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			var out client.CreatedKey
			return sf.withSecret(cmd, f, func() (any, string, error) {
				pid, err := resolvePartner(cmd.Context(), cl, args[0])
				if err != nil {
					return nil, "", fmt.Errorf("keys create: %w", err)
				}
				if out, err = cl.CreateKey(cmd.Context(), pid, role, label); err == nil && sf.path == "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "the key's secret is shown once; the server keeps only its hash")
				}
				return out, out.Secret, err
			}, func(w io.Writer, secret string) { createdKeyTable(out.Key)(w, secret) })
		},
	}
	c.flags(create)
	f.flags(create)
	sf.flags(create)
	create.Flags().StringVar(&role, "role", "", "admin, engineer, analyst or auditor")
	create.Flags().StringVar(&label, "label", "", "a note on who holds the key")
	var lc conn
	var lf outFormat
	list := &cobra.Command{
		Use: "list PARTNER", Short: "List a partner's keys (by id or name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := lc.client()
			if err != nil {
				return err
			}
			pid, err := resolvePartner(cmd.Context(), cl, args[0])
			if err != nil {
				return fmt.Errorf("keys list: %w", err)
			}
			keys, err := cl.ListKeys(cmd.Context(), pid)
			if err != nil {
				return err
			}
			return lf.print(cmd, wire.KeyList{Keys: keys}, func(w io.Writer) { keyRows(w, keys...) })
		},
	}
	lc.flags(list)
	lf.flags(list)
	var rc conn
	var rf outFormat
	revoke := &cobra.Command{
		Use: "revoke PARTNER KEY_ID", Short: "Revoke a key at once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := rc.client()
			if err != nil {
				return err
			}
			pid, err := resolvePartner(cmd.Context(), cl, args[0])
			if err != nil {
				return fmt.Errorf("keys revoke: %w", err)
			}
			k, err := cl.RevokeKey(cmd.Context(), pid, args[1])
			if err != nil {
				return err
			}
			return rf.print(cmd, k, func(w io.Writer) { keyRows(w, k) })
		},
	}
	rc.flags(revoke)
	rf.flags(revoke)
	cmd.AddCommand(create, list, revoke, newKeysRotateCmd())
	return cmd
}

func newKeysRotateCmd() *cobra.Command {
	var c conn
	var f outFormat
	var sf secretFile
	var label string
	cmd := &cobra.Command{
		Use:   "rotate [KEY_ID] [--label LABEL] [--secret-file FILE]",
		Short: "Replace a key with a new one of the same role and label, and revoke it (default: the key in use)",
		Long: `rotate creates a key with the old key's role and label (or --label), prints its
secret once (or writes it to --secret-file), then revokes the old key: with
the new key when the old one is the key in use, so the new key is known to
work before the old one stops. Rotate the first admin key the operator
handed over at once: the operator has seen its secret. Both steps are
logged (key.create, key.revoke). An admin's key.`,
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
			var nk client.CreatedKey
			// The secret is printed (or written) before the old key goes:
			// should the revocation fail, the new key must not be lost
			// with it.
			if err := sf.withSecret(cmd, f, func() (any, string, error) {
				nk, err = cl.CreateKey(ctx, me.PartnerID, string(old.Role), newLabel)
				if err != nil {
					hint := ""
					if client.CodeOf(err) == wire.CodeInvalid {
						hint = "; --label gives the new key another label"
					}
					return nil, "", fmt.Errorf("keys rotate: creating the new key: %w (nothing changed%s)", err, hint)
				}
				return nk, nk.Secret, nil
			}, func(w io.Writer, secret string) { createdKeyTable(nk.Key)(w, secret) }); err != nil && nk.Secret == "" {
				return err
			} else if err != nil {
				// The file failed and the secret was printed instead: the
				// old key stays, so no key is lost either way.
				return fmt.Errorf("%w; the old key %s was not revoked", err, printable(old.ID))
			}
			revoker := cl
			if old.ID == me.KeyID {
				revoker = client.New(cl.BaseURL, nk.Secret)
			}
			if _, err := revoker.RevokeKey(ctx, me.PartnerID, old.ID); err != nil {
				return fmt.Errorf("keys rotate: the new key above is in place, but revoking the old key %[1]s failed: %[2]w; revoke it with cleanroom keys revoke %[3]s %[1]s", printable(old.ID), err, printable(me.PartnerID))
			}
			where := "shown once above"
			if sf.path != "" {
				where = "in " + printable(sf.path)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "key %s (%s) replaced by key %s, whose secret is %s; the old key no longer works\n",
				printable(old.ID), printable(string(old.Role)), printable(nk.Key.ID), where)
			return nil
		},
	}
	c.flags(cmd)
	f.flags(cmd)
	sf.flags(cmd)
	cmd.Flags().StringVar(&label, "label", "", "the new key's label (default: the old key's)")
	return cmd
}

// collabTable prints one collaboration for people: who, state, the rules
// that matter most; --format json has the whole rules.
func collabTable(w io.Writer, co wire.Collaboration) {
	r := co.Rules
	state := printable(co.State) + ", rules v" + fmt.Sprint(co.RulesVersion)
	if co.ApprovedRules != nil {
		state += " (a change of the rules awaits approval)"
	}
	var approved []string
	for _, p := range co.ApprovedBy {
		approved = append(approved, printable(partyName(co, p)))
	}
	fields(w,
		"collaboration", printable(co.ID)+"  "+printable(co.Name),
		"state", state,
		"proposer", partyLabel(co.Proposer, co.ProposerName),
		"partner", partyLabel(co.Partner, co.PartnerName),
		"approved by", strings.Join(approved, ", "),
		"purpose", printable(r.Purpose)+"; matching on "+printable(string(r.IDType)),
		"budget", fmt.Sprintf("epsilon %g and delta %g per partner; a query spends epsilon %g by default (%g to %g)", r.EpsilonBudget, r.DeltaBudget, r.DefaultQueryEpsilon, r.MinQueryEpsilon, r.MaxQueryEpsilon),
		"created", when(co.CreatedAt),
	)
	fmt.Fprintf(w, "(the whole rules: cleanroom collab show %s --format json)\n", printable(co.ID))
}

// partyLabel is a partner's name and id, or its id when the answer gave
// no name.
func partyLabel(id, name string) string {
	if name == "" {
		return printable(id)
	}
	return printable(name) + " (" + printable(id) + ")"
}

// partyName is a partner of co by name when co names it.
func partyName(co wire.Collaboration, id string) string {
	switch {
	case id == co.Proposer && co.ProposerName != "":
		return co.ProposerName
	case id == co.Partner && co.PartnerName != "":
		return co.PartnerName
	}
	return id
}

func newCollabCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "collab", Short: "Propose, approve, change and show collaborations"}
	var pc conn
	var pf outFormat
	var name, partner, rulesFile string
	propose := &cobra.Command{
		Use:   "propose --name NAME --partner PARTNER [--rules FILE]",
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
			other, err := resolvePartner(cmd.Context(), cl, partner)
			if err != nil {
				return fmt.Errorf("collab propose: --partner: %w", err)
			}
			co, err := cl.Propose(cmd.Context(), name, other, rules)
			if err != nil {
				return err
			}
			noteUnresolved(cmd, cl, co)
			return pf.print(cmd, co, func(w io.Writer) { collabTable(w, co) })
		},
	}
	pc.flags(propose)
	pf.flags(propose)
	propose.Flags().StringVar(&name, "name", "", "collaboration name")
	propose.Flags().StringVar(&partner, "partner", "", "the other partner's ID or name")
	propose.Flags().StringVar(&rulesFile, "rules", "", "rules JSON file (fields left out take the defaults; examples/ in the source has one per common collaboration)")
	// approve and reject: the partner asked answers the current rules.
	decision := func(use, short string, call func(*client.Client, context.Context, string, int) (wire.Collaboration, error)) *cobra.Command {
		var dc conn
		var df outFormat
		var version int
		c := &cobra.Command{
			Use: use + " COLLAB [--version N]", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id := args[0]
				cl, err := dc.collabClient(cmd.Context(), "collab "+use, &id)
				if err != nil {
					return err
				}
				co, err := call(cl, cmd.Context(), id, version)
				if err != nil {
					return err
				}
				return df.print(cmd, co, func(w io.Writer) { collabTable(w, co) })
			},
		}
		dc.flags(c)
		df.flags(c)
		c.Flags().IntVar(&version, "version", 0, "the rules version you reviewed (refused if the rules changed since)")
		return c
	}
	approve := decision("approve", "Approve a collaboration's rules", (*client.Client).Approve)
	reject := decision("reject", "Reject a pending change of the rules: the rules both last approved come back", (*client.Client).Reject)
	var rc conn
	var rf outFormat
	var newRules string
	rules := &cobra.Command{
		Use: "rules COLLAB --rules FILE", Short: "Propose new rules; the other partner must approve again", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			cl, err := rc.collabClient(cmd.Context(), "collab rules", &id)
			if err != nil {
				return err
			}
			r, err := readRules(newRules)
			if err != nil {
				return err
			}
			co, err := cl.ChangeRules(cmd.Context(), id, r)
			if err != nil {
				return err
			}
			noteUnresolved(cmd, cl, co)
			return rf.print(cmd, co, func(w io.Writer) { collabTable(w, co) })
		},
	}
	rc.flags(rules)
	rf.flags(rules)
	rules.Flags().StringVar(&newRules, "rules", "", "rules JSON file")
	var sc conn
	var sf outFormat
	show := &cobra.Command{
		Use: "show [COLLAB]", Short: "Show one collaboration (by id or name), or list yours", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				id := args[0]
				cl, err := sc.collabClient(cmd.Context(), "collab show", &id)
				if err != nil {
					return err
				}
				co, err := cl.Collaboration(cmd.Context(), id)
				if err != nil {
					return err
				}
				return sf.print(cmd, co, func(w io.Writer) { collabTable(w, co) })
			}
			cl, err := sc.client()
			if err != nil {
				return err
			}
			cs, err := cl.Collaborations(cmd.Context())
			if err != nil {
				return err
			}
			return sf.print(cmd, cs, func(out io.Writer) {
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tSTATE\tPROPOSER\tPARTNER\tCREATED")
				for _, co := range cs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(co.ID), printable(co.Name), printable(co.State),
						printable(firstNonEmpty(co.ProposerName, co.Proposer)), printable(firstNonEmpty(co.PartnerName, co.Partner)), when(co.CreatedAt))
				}
				w.Flush()
			})
		},
	}
	sc.flags(show)
	sf.flags(show)
	cmd.AddCommand(propose, approve, reject, rules, show)
	return cmd
}

// noteUnresolved says on stderr which names co's rules give that are no
// column of its tables yet: the server accepted them because their party
// has uploaded nothing, so that party's upload decides. A failure to ask
// says nothing: the rules were stored.
func noteUnresolved(cmd *cobra.Command, cl *client.Client, co wire.Collaboration) {
	sc, err := cl.Schema(cmd.Context(), co.ID)
	if err != nil {
		return
	}
	has := map[string]bool{}
	for _, t := range sc.Tables {
		for _, c := range t.Columns {
			has[c.Name] = true
		}
	}
	names := slices.Concat(co.Rules.Dimensions, slices.Sorted(maps.Keys(co.Rules.Metrics)), slices.Sorted(maps.Keys(co.Rules.PublicGroups)))
	seen := map[string]bool{}
	for _, name := range names {
		if !has[name] && !seen[name] {
			seen[name] = true
			fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is no column yet: its party has uploaded nothing, so its upload must bring it\n", printable(name))
		}
	}
}

func readRules(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Decoded here first, so that a mistake is named in the file's own
	// terms (FILE:line:column, as editors and compilers say it); the
	// server checks what the rules mean.
	r := wire.DefaultRules()
	var je *wire.JSONError
	if err := wire.DecodeJSON(b, &r); errors.As(err, &je) {
		return nil, fmt.Errorf("%s:%d:%d: %s", path, je.Line, je.Column, je.What)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func newMatchCmd() *cobra.Command {
	var c conn
	var f outFormat
	var collab, keyFile string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "match --collab COLLAB --psi-key FILE [--format table|json]",
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
			if collab == "" || keyFile == "" {
				return errors.New("match: --collab and --psi-key are required")
			}
			cl, err := c.collabClient(cmd.Context(), "match", &collab)
			if err != nil {
				return err
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
			if f == "json" {
				return printOut(cmd, m)
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
	f.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name")
	cmd.Flags().StringVar(&keyFile, "psi-key", "", "this party's blinding key file (cleanroom keygen)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once this party's half is in")
	return cmd
}
