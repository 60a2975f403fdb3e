package main

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "List, export and verify the audit log"}
	var pc conn
	pubkey := &cobra.Command{
		Use: "pubkey", Short: "Print the server's audit public key (keep it to verify exports)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := pc.clientNoKey()
			if err != nil {
				return err
			}
			k, err := cl.AuditPublicKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), printable(k))
			return nil
		},
	}
	pc.flags(pubkey)
	var ec conn
	var out string
	export := &cobra.Command{
		Use: "export [-o FILE]", Short: "Export the log your key may read, with a signed head (NDJSON)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := ec.client()
			if err != nil {
				return err
			}
			if out == "" {
				w, flush := toTerminal(cmd.OutOrStdout())
				if err := cl.AuditExport(cmd.Context(), w); err != nil {
					return err
				}
				return flush()
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			// Close's error is the write's last chance to fail (a full
			// disk): an export that did not reach the file must not look
			// like one that did. The file is ours (O_EXCL), so a partial
			// one goes.
			err = cl.AuditExport(cmd.Context(), f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
			}
			return err
		},
	}
	ec.flags(export)
	export.Flags().StringVarP(&out, "output", "o", "", "file to write (must not exist)")
	var key string
	verify := &cobra.Command{
		Use:   "verify --pubkey KEY FILE",
		Short: "Verify an export offline: chain, hashes and the server's signature",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := readPubKey("audit verify", key)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			entries, head, err := audit.ReadExport(f)
			if err != nil {
				return fmt.Errorf("audit verify: %s: %w", args[0], err)
			}
			if err := audit.Verify(entries, head, pub); err != nil {
				return fmt.Errorf("audit verify: FAILED: %w", err)
			}
			redacted := 0
			for _, e := range entries {
				if e.Redacted {
					redacted++
				}
			}
			// Other partners' entries are redacted: bound by their content
			// hash (version 2) but not shown.
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %d entries (%d of other partners, bound but not shown), signed head at %d (%s)\n",
				len(entries), redacted, head.Seq, head.At.Format("2006-01-02 15:04:05Z07:00"))
			return nil
		},
	}
	verify.Flags().StringVar(&key, "pubkey", "", "the server's audit public key, or a file holding it")
	cmd.AddCommand(newAuditListCmd(), pubkey, export, verify)
	return cmd
}

// readPubKey reads --pubkey: the key's text, or a file holding it.
func readPubKey(cmdName, key string) (ed25519.PublicKey, error) {
	if key == "" {
		return nil, fmt.Errorf("%s: --pubkey is required (cleanroom audit pubkey prints it)", cmdName)
	}
	if b, err := os.ReadFile(key); err == nil {
		key = strings.TrimSpace(string(b))
	}
	pub, err := audit.ParsePublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: --pubkey: %w", cmdName, err)
	}
	return pub, nil
}
