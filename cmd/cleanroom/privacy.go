package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/psi"
)

// idValues gathers identifiers from arguments and, with --from, a file of
// one identifier a line ("-" for standard input).
func idValues(args []string, from string) ([]string, error) {
	vals := append([]string(nil), args...)
	if from != "" {
		var r io.Reader = os.Stdin
		if from != "-" {
			f, err := os.Open(from)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r = f
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				vals = append(vals, s)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	if len(vals) == 0 {
		return nil, errors.New("no identifiers: give them as arguments or with --from FILE")
	}
	return vals, nil
}

// collabKeys parses repeated --psi-key COLLAB=FILE flags.
func collabKeys(flags []string) (map[string]*psi.Key, []string, error) {
	keys := map[string]*psi.Key{}
	var order []string
	for _, f := range flags {
		cid, file, ok := strings.Cut(f, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--psi-key %q: want COLLAB_ID=KEYFILE", f)
		}
		k, err := psi.LoadKey(file)
		if err != nil {
			return nil, nil, err
		}
		keys[cid] = k
		order = append(order, cid)
	}
	if len(order) == 0 {
		return nil, nil, errors.New("give --psi-key COLLAB_ID=KEYFILE for each collaboration")
	}
	return keys, order, nil
}

func newDeleteCmd() *cobra.Command {
	var c conn
	var collab, keyFile, idType, region, from, audienceID string
	var whole bool
	cmd := &cobra.Command{
		Use:   "delete --collab COLLAB (--psi-key FILE IDENTIFIER... | --audience AID | --collaboration)",
		Short: "Delete people, an audience or a whole collaboration; prints a signed receipt",
		Long: `delete removes data from the clean room in one transaction and prints the
server's signed deletion receipt (keep it; cleanroom receipt verify checks it):

  --psi-key FILE IDENTIFIER...  people, blinded here with this party's key
  --audience AID                one of this party's audiences and its cohorts
  --collaboration               everything in the collaboration (admin key)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.collabClient(cmd.Context(), "delete", &collab)
			if err != nil {
				return err
			}
			var r audit.Receipt
			switch {
			case whole:
				r, err = cl.DeleteCollaboration(cmd.Context(), collab)
			case audienceID != "":
				r, err = cl.DeleteAudience(cmd.Context(), collab, audienceID)
			default:
				if keyFile == "" {
					return errors.New("delete: give --psi-key FILE with identifiers, --audience AID or --collaboration")
				}
				key, err := psi.LoadKey(keyFile)
				if err != nil {
					return err
				}
				vals, err := idValues(args, from)
				if err != nil {
					return err
				}
				pids, err := cl.BlindIDs(cmd.Context(), collab, key, psi.IDType(idType), region, vals)
				if err != nil {
					return err
				}
				r, err = cl.DeleteIDs(cmd.Context(), collab, key, pids, false)
				if err != nil {
					return err
				}
				return printOut(cmd, r)
			}
			if err != nil {
				return err
			}
			return printOut(cmd, r)
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID or name")
	cmd.Flags().StringVar(&keyFile, "psi-key", "", "this party's blinding key for the collaboration")
	cmd.Flags().StringVar(&idType, "id-type", "", "email, phone, maid or sha256 (default: the collaboration's)")
	cmd.Flags().StringVar(&region, "region", "", "default phone region")
	cmd.Flags().StringVar(&from, "from", "", "file of identifiers, one a line (- for stdin)")
	cmd.Flags().StringVar(&audienceID, "audience", "", "delete this audience")
	cmd.Flags().BoolVar(&whole, "collaboration", false, "delete the whole collaboration")
	return cmd
}

func newOptOutCmd() *cobra.Command {
	var c conn
	var keys []string
	var idType, region, from string
	cmd := &cobra.Command{
		Use:   "optout --psi-key COLLAB=FILE [--psi-key ...] IDENTIFIER...",
		Short: "Opt people out of every collaboration this party holds a key for",
		Long: `optout blinds each identifier here with each collaboration's key and submits
it; the server removes those people from this party's audiences and from
every cohort they are in, and keeps them out of later uploads and matches.
It prints one signed receipt per collaboration.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			ks, order, err := collabKeys(keys)
			if err != nil {
				return err
			}
			vals, err := idValues(args, from)
			if err != nil {
				return err
			}
			// Every collaboration is resolved before any opt-out, so a
			// misspelt name changes nothing.
			cids := make([]string, len(order))
			for i, name := range order {
				if cids[i], err = resolveCollab(cmd.Context(), cl, name); err != nil {
					return fmt.Errorf("optout: %w", err)
				}
			}
			var receipts []audit.Receipt
			for i, name := range order {
				pids, err := cl.BlindIDs(cmd.Context(), cids[i], ks[name], psi.IDType(idType), region, vals)
				if err == nil {
					var r audit.Receipt
					if r, err = cl.DeleteIDs(cmd.Context(), cids[i], ks[name], pids, true); err == nil {
						receipts = append(receipts, r)
						continue
					}
				}
				if len(receipts) == 0 {
					return fmt.Errorf("optout: %s: %w", cids[i], err)
				}
				// The opt-outs already made stand: their receipts are the
				// proof to keep, so they are printed before the error.
				if perr := printOut(cmd, receipts); perr != nil {
					return perr
				}
				return fmt.Errorf("optout: opted out of %s (receipts above), not yet of %s: %s: %w; run optout again with the --psi-key of those left",
					strings.Join(cids[:i], ", "), strings.Join(cids[i:], ", "), cids[i], err)
			}
			return printOut(cmd, receipts)
		},
	}
	c.flags(cmd)
	cmd.Flags().StringArrayVar(&keys, "psi-key", nil, "COLLAB=KEYFILE, a collaboration (id or name) and its key file, once per collaboration")
	cmd.Flags().StringVar(&idType, "id-type", "", "email, phone, maid or sha256 (default: each collaboration's)")
	cmd.Flags().StringVar(&region, "region", "", "default phone region")
	cmd.Flags().StringVar(&from, "from", "", "file of identifiers, one a line (- for stdin)")
	return cmd
}

func newAccessRequestCmd() *cobra.Command {
	var c conn
	var keys []string
	var idType, region string
	cmd := &cobra.Command{
		Use:   "access-request --psi-key COLLAB=FILE [--psi-key ...] [--id-type T] IDENTIFIER",
		Short: "What the clean room holds for one person, across this party's collaborations",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			ks, order, err := collabKeys(keys)
			if err != nil {
				return err
			}
			out := map[string]json.RawMessage{}
			for _, name := range order {
				cid, err := resolveCollab(cmd.Context(), cl, name)
				if err != nil {
					return fmt.Errorf("access-request: %w", err)
				}
				pids, err := cl.BlindIDs(cmd.Context(), cid, ks[name], psi.IDType(idType), region, args)
				if err != nil {
					return fmt.Errorf("access-request: %s: %w", cid, err)
				}
				res, err := cl.AccessRequest(cmd.Context(), cid, ks[name], pids[0])
				if err != nil {
					return fmt.Errorf("access-request: %s: %w", cid, err)
				}
				out[cid] = res
			}
			return printOut(cmd, out)
		},
	}
	c.flags(cmd)
	cmd.Flags().StringArrayVar(&keys, "psi-key", nil, "COLLAB=KEYFILE, a collaboration (id or name) and its key file, once per collaboration")
	cmd.Flags().StringVar(&idType, "id-type", "", "email, phone, maid or sha256 (default: each collaboration's)")
	cmd.Flags().StringVar(&region, "region", "", "default phone region")
	return cmd
}

func newReceiptCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "receipt", Short: "List, get and verify deletion receipts"}
	var key, logFile string
	verify := &cobra.Command{
		Use:   "verify --pubkey KEY RECEIPT.json [--log EXPORT.ndjson]",
		Short: "Verify a receipt's signature and, with --log, that the verified log records it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := readPubKey("receipt verify", key)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var r audit.Receipt
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("receipt verify: %s: %w", args[0], err)
			}
			var entries []audit.Entry
			if logFile != "" {
				f, err := os.Open(logFile)
				if err != nil {
					return err
				}
				defer f.Close()
				var head audit.Head
				if entries, head, err = audit.ReadExport(f); err != nil {
					return fmt.Errorf("receipt verify: %s: %w", logFile, err)
				}
				if err := audit.Verify(entries, head, pub); err != nil {
					return fmt.Errorf("receipt verify: the log does not verify: %w", err)
				}
			}
			if err := audit.VerifyReceipt(pub, r, entries); err != nil {
				return fmt.Errorf("receipt verify: FAILED: %w", err)
			}
			where := ""
			if logFile != "" {
				where = fmt.Sprintf(", recorded at log entry %d", r.AuditSeq)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: receipt %s: %s deletion of %d audience rows, %d tokens at %s%s\n",
				printable(r.ID), printable(string(r.Kind)), r.AudienceRows, r.Tokens, r.At.Format("2006-01-02 15:04:05Z07:00"), where)
			return nil
		},
	}
	verify.Flags().StringVar(&key, "pubkey", "", "the server's audit public key, or a file holding it")
	verify.Flags().StringVar(&logFile, "log", "", "an audit export (cleanroom audit export) to find the receipt in")
	cmd.AddCommand(verify, newReceiptListCmd(), newReceiptGetCmd())
	return cmd
}
