package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/psi"
)

func newKeygenCmd() *cobra.Command {
	var out, collab string
	cmd := &cobra.Command{
		Use:   "keygen -o FILE [--collab ID]",
		Short: "Create this party's secret blinding key for one collaboration",
		Long: `keygen writes a new random blinding key to FILE with mode 0600.

Use one key per collaboration and keep it: the key blinds your identifiers
before they leave this machine, and the same key is needed to match. A key
used in two collaborations would let their blinded audiences be joined.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("keygen: say where to write the key with -o FILE")
			}
			k, err := psi.GenerateKey(nil)
			if err != nil {
				return err
			}
			comment := "cleanroom psi blinding key, created " + time.Now().UTC().Format(time.RFC3339)
			if collab != "" {
				comment += "\ncollaboration: " + collab
			}
			if err := psi.SaveKey(out, k, comment); err != nil {
				return err
			}
			// The fingerprint (of the public point) is what the server and
			// its refusals name the key by.
			fmt.Fprintf(cmd.OutOrStdout(), "wrote a new blinding key to %s (mode 0600, fingerprint %s); keep it safe, and use it for this collaboration only\n", out, psi.ShortFingerprint(k.Fingerprint()))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write the key to (must not exist)")
	cmd.Flags().StringVar(&collab, "collab", "", "collaboration ID, recorded as a comment in the key file")
	return cmd
}
