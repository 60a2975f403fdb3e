package main

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/backup"
)

func newBackupCmd() *cobra.Command {
	var cn conn
	var to string
	var withKeys bool
	cmd := &cobra.Command{
		Use:   "backup --to DIR [--with-keys]",
		Short: "Take a consistent backup of a running server (operator's key) into DIR",
		Long: "Streams a snapshot of the whole database, as one transaction saw it, with a manifest the server signs, into DIR.\n" +
			"The backup is written beside DIR under a temporary name and then takes DIR's place, so a backup cut short\n" +
			"(a killed server or command) leaves the previous one in DIR as it was. DIR must not exist, or hold an earlier backup.\n" +
			"It holds every partner's data (blinded points and attributes): keep it as you keep the data directory.\n" +
			"--with-keys adds the audit signing key, so that a restored server keeps its identity.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("backup: --to DIR is required")
			}
			cl, err := cn.client()
			if err != nil {
				return err
			}
			m, err := takeBackup(cmd.Context(), to, func(w io.Writer) error { return cl.Backup(cmd.Context(), withKeys, w) })
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			keys := "without the audit signing key"
			if m.WithKeys {
				keys = "with the audit signing key (" + backup.KeyFile + ", 0600)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup in %s: %d bytes, %d tables, audit log up to entry %d, %s\n", to, m.Database.Bytes, len(m.Tables), m.AuditHead.Seq, keys)
			fmt.Fprintln(cmd.OutOrStdout(), "it holds every partner's data (blinded points): keep it as you keep the data directory")
			return nil
		},
	}
	cn.flags(cmd)
	cmd.Flags().StringVar(&to, "to", "", "directory to write the backup to (replaced whole only once the new backup is complete)")
	cmd.Flags().BoolVar(&withKeys, "with-keys", false, "include the audit signing key (written 0600)")
	return cmd
}

// takeBackup receives a backup stream into a new directory beside to and,
// once it is whole and checked, swaps it in for to.
func takeBackup(ctx context.Context, to string, fetch func(io.Writer) error) (backup.Manifest, error) {
	var m backup.Manifest
	to = filepath.Clean(to)
	if err := checkBackupTarget(to); err != nil {
		return m, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := to + ".partial-" + hex.EncodeToString(b)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return m, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	pr, pw := io.Pipe()
	fetched := make(chan error, 1)
	go func() {
		err := fetch(pw)
		pw.CloseWithError(err)
		fetched <- err
	}()
	m, err := receiveBackup(pr, tmp)
	pr.CloseWithError(errors.New("backup: stopped reading"))
	if ferr := <-fetched; ferr != nil {
		return m, ferr
	}
	if err != nil {
		return m, err
	}
	if err := syncPath(tmp); err != nil {
		return m, err
	}
	if err := swapIn(tmp, to); err != nil {
		return m, err
	}
	done = true
	return m, ctx.Err()
}

// checkBackupTarget refuses a DIR that holds something other than an
// earlier backup: the swap replaces it whole.
func checkBackupTarget(to string) error {
	entries, err := os.ReadDir(to)
	if errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Dir(to)); err != nil {
			return fmt.Errorf("the directory to hold %s: %w", to, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(to, backup.ManifestFile)); err != nil {
		return fmt.Errorf("%s exists and is not a cleanroom backup (no %s); give a new directory, or an earlier backup to replace", to, backup.ManifestFile)
	}
	return nil
}

// receiveBackup writes the tar's files into dir, 0600, checking names and
// that the database matches the manifest, which comes last.
func receiveBackup(r io.Reader, dir string) (backup.Manifest, error) {
	var m backup.Manifest
	tr := tar.NewReader(r)
	var dbSum string
	var dbBytes int64
	got := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, fmt.Errorf("the backup stream was cut short (no manifest): %w", err)
		}
		switch h.Name {
		case backup.DatabaseFile, backup.KeyFile, backup.ManifestFile:
		default:
			return m, fmt.Errorf("the backup stream holds an unexpected file %q", h.Name)
		}
		if got[h.Name] {
			return m, fmt.Errorf("the backup stream holds %s twice", h.Name)
		}
		got[h.Name] = true
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return m, err
		}
		sum := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, sum), tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return m, fmt.Errorf("the backup stream was cut short in %s: %w", h.Name, err)
		}
		if h.Name == backup.DatabaseFile {
			dbSum, dbBytes = hex.EncodeToString(sum.Sum(nil)), n
		}
	}
	if !got[backup.ManifestFile] {
		return m, errors.New("the backup stream was cut short: it has no manifest")
	}
	m, err := backup.ReadManifest(dir)
	if err != nil {
		return m, err
	}
	if !got[backup.DatabaseFile] || dbSum != m.Database.SHA256 || dbBytes != m.Database.Bytes {
		return m, fmt.Errorf("the database received (%d bytes) does not match the manifest's (%d bytes, sha256 %s)", dbBytes, m.Database.Bytes, m.Database.SHA256)
	}
	if m.WithKeys != got[backup.KeyFile] {
		return m, errors.New("the manifest and the files disagree on whether the signing key is included")
	}
	pub, err := audit.ParsePublicKey(m.AuditPublicKey)
	if err != nil {
		return m, fmt.Errorf("%s: %w", backup.ManifestFile, err)
	}
	if err := m.Verify(ed25519.PublicKey(pub)); err != nil {
		return m, err
	}
	return m, nil
}

func syncPath(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newRestoreCmd() *cobra.Command {
	var from, data, pubkey string
	cmd := &cobra.Command{
		Use:   "restore --from DIR --data NEWDIR [--pubkey KEY]",
		Short: "Build a data directory from a backup and check it (offline, no server)",
		Long: "Copies the backup in DIR into NEWDIR (which must not exist, or be empty) and checks it: the manifest's\n" +
			"signature, the database file's SHA-256, the audit chain up to the manifest's head and the head's signature,\n" +
			"the ledger's totals, every table and its rows, and that every live audience's and cohort's tables are there.\n" +
			"On any failure it names each and leaves NEWDIR empty. Then: cleanroom serve --data NEWDIR.\n" +
			"--pubkey (the server's audit key, from cleanroom audit pubkey, or a file holding it) checks the backup was\n" +
			"signed by that server, not only by the key it carries.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || data == "" {
				return errors.New("restore: --from DIR and --data NEWDIR are required")
			}
			var pub ed25519.PublicKey
			if pubkey != "" {
				text := pubkey
				if !strings.HasPrefix(text, "cleanroom-audit-ed25519:") {
					b, err := os.ReadFile(pubkey)
					if err != nil {
						return fmt.Errorf("restore: --pubkey is neither a key (cleanroom-audit-ed25519:...) nor a readable file: %v", err)
					}
					text = strings.TrimSpace(string(b))
					var j struct {
						PublicKey string `json:"public_key"`
					}
					if json.Unmarshal(b, &j) == nil && j.PublicKey != "" {
						text = j.PublicKey
					}
				}
				p, err := audit.ParsePublicKey(text)
				if err != nil {
					return fmt.Errorf("restore: --pubkey: %w", err)
				}
				pub = p
			}
			r, err := backup.Restore(cmd.Context(), from, data, pub)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "restored %s into %s: taken %s by cleanroom %s\n", from, data, r.Manifest.TakenAt.UTC().Format("2006-01-02 15:04:05 UTC"), r.Manifest.ServerVersion)
			fmt.Fprintf(out, "checked: audit log verifies up to entry %d (%d entries), ledger totals match (%d), %d tables and their rows match\n",
				r.Manifest.AuditHead.Seq, r.Entries, len(r.Manifest.Ledger), r.Tables)
			if r.Keys {
				fmt.Fprintln(out, "the audit signing key is restored: the server keeps its identity")
			} else {
				fmt.Fprintln(out, "no signing key in the backup: the restored server makes a new one (auditors need its new public key)")
			}
			fmt.Fprintf(out, "start it with: cleanroom serve --data %s\n", data)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "a backup directory (cleanroom backup --to)")
	cmd.Flags().StringVar(&data, "data", "", "the new data directory to build (must not exist, or be empty)")
	cmd.Flags().StringVar(&pubkey, "pubkey", "", "the server's audit public key, or a file holding it, to check the backup against")
	return cmd
}

// swapByRenames moves the previous backup aside, the new one in, and
// removes the previous one: between the renames to is missing, with the
// previous backup whole under to.previous-*.
func swapByRenames(tmp, to string) error {
	old := to + ".previous-" + filepath.Base(tmp)[len(filepath.Base(to))+len(".partial-"):]
	if err := os.Rename(to, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, to); err != nil {
		_ = os.Rename(old, to)
		return err
	}
	return os.RemoveAll(old)
}
