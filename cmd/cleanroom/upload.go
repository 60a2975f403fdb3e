package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// defaultBlindCacheMiB is upload's --blind-cache-mib: the encoder's.
const defaultBlindCacheMiB = audience.DefaultCacheBytes >> 20

// uploadFlags are the choices of an upload besides the file.
type uploadFlags struct {
	collab, keyFile, idColumn, idType, region, consentColumn, consentAll, table string
	attrs                                                                       []string
	skipBlank, quiet, replace, dryRun                                           bool
	retention                                                                   time.Duration
	// cacheMiB is the memory that remembers identifiers already blinded;
	// 0 blinds every row.
	cacheMiB int64
}

func newUploadCmd() *cobra.Command {
	var c conn
	var f uploadFlags
	var format outFormat
	cmd := &cobra.Command{
		Use:   "upload --collab COLLAB --psi-key FILE --id-column COL [--table NAME] FILE.csv|FILE.parquet",
		Short: "Normalize, hash and blind a table on this machine and upload it",
		Long: `upload reads a CSV (with a header row) or Parquet file, normalizes each
identifier, hashes it and blinds it with this party's key on this machine,
and streams the blinded points with the chosen attribute columns to the
server as Arrow. Identifiers never leave this machine, not even hashed.

The identifier kind and the Gmail rule come from the collaboration's rules,
so both parties normalize alike; --id-type sha256 takes identifiers that
are already normalized and SHA-256 hashed (64 hex characters).

A party may bring several tables (customers, purchases; exposures, clicks)
when the collaboration's rules declare them: --table names the one this
file is, and its columns must be the declared ones. Without --table the
upload is the party's table named audience, its one table where the rules
declare none. A person's point is the same in all the party's tables, so
the match joins them on the person.

Uploading a table this party already has is refused unless --replace is
given: replacing deletes the table's data and the matches built from it,
and only it. --dry-run runs every check of an upload (the rules' columns,
min_upload_users, --replace) and prints what would be stored, storing
nothing.

The upload states the fingerprint of the blinding key (a hash of its
public point, never the key): the server then refuses a match half run
with another key, and an upload blinded with another key than this
party's other tables.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.collab == "" {
				return errors.New("upload: --collab, --psi-key and --id-column are required")
			}
			cl, err := c.collabClient(cmd.Context(), "upload", &f.collab)
			if err != nil {
				return err
			}
			a, err := runUpload(cmd.Context(), cl, args[0], f, cmd.ErrOrStderr())
			if err != nil {
				if consentHint(f) == "" {
					return err
				}
				switch {
				case strings.Contains(err.Error(), `"consent" is reserved`):
					return fmt.Errorf("%w\nhint: if the file's consent column holds each row's purposes, pass --consent-column consent", err)
				case client.CodeOf(err) == wire.CodeInvalid && strings.Contains(err.Error(), "people who can match"):
					return fmt.Errorf("%w\n%s", err, consentHint(f))
				}
				return err
			}
			if format == "json" {
				if err := printOut(cmd, a); err != nil {
					return err
				}
			} else if err := printUploaded(cmd.OutOrStdout(), a); err != nil {
				return err
			}
			if hint := consentHint(f); hint != "" && a.PeopleMatchable == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), hint)
			}
			return nil
		},
	}
	c.flags(cmd)
	format.flags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.collab, "collab", "", "collaboration ID or name")
	fl.StringVar(&f.table, "table", "", "the table this file is, as the rules declare it (default: audience, a party's one table)")
	fl.StringVar(&f.keyFile, "psi-key", "", "this party's blinding key for the collaboration (cleanroom keygen)")
	fl.StringVar(&f.idColumn, "id-column", "", "column holding the identifier")
	fl.StringVar(&f.idType, "id-type", "", "email, phone, maid, or sha256 for pre-hashed ids (default: the collaboration's id_type)")
	fl.StringVar(&f.region, "region", "", "default region for phone numbers without a country code (e.g. US)")
	fl.StringArrayVar(&f.attrs, "attr", nil, "attribute to send, NAME[:TYPE[:COLUMN]] with TYPE string, int, float, bool or date (repeatable; default: every other column, types inferred)")
	fl.StringVar(&f.consentColumn, "consent-column", "", "column holding consent purposes, separated by ';'")
	fl.StringVar(&f.consentAll, "consent-all", "", "attest that every row consents to this purpose")
	fl.BoolVar(&f.skipBlank, "skip-blank", false, "skip rows whose identifier is blank instead of failing")
	fl.DurationVar(&f.retention, "retention", 0, "delete the audience on the server once it is this old (e.g. 2160h); 0 keeps it")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar")
	fl.BoolVar(&f.replace, "replace", false, "replace this party's table of the same name (its data and the matches built from it are deleted)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "check the file as an upload would, and store nothing")
	fl.Int64Var(&f.cacheMiB, "blind-cache-mib", defaultBlindCacheMiB, "MiB that remember identifiers already blinded, so a person with many rows costs one blinding (about 12,000 people a MiB); 0 blinds every row")
	return cmd
}

var errUploadEnded = errors.New("the upload request ended")

// runUpload encodes and uploads a file; the CLI and the demo share it.
func runUpload(ctx context.Context, cl *client.Client, path string, f uploadFlags, progress io.Writer) (wire.Audience, error) {
	if f.collab == "" || f.keyFile == "" || f.idColumn == "" {
		return wire.Audience{}, errors.New("upload: --collab, --psi-key and --id-column are required")
	}
	key, err := psi.LoadKey(f.keyFile)
	if err != nil {
		return wire.Audience{}, err
	}
	co, err := cl.Collaboration(ctx, f.collab)
	if err != nil {
		return wire.Audience{}, err
	}
	opts := audience.EncodeOptions{
		IDColumn:      f.idColumn,
		Normalize:     psi.NormalizeOptions{GmailRule: co.Rules.GmailRule, DefaultRegion: f.region},
		ConsentColumn: f.consentColumn,
		ConsentAll:    f.consentAll,
		SkipBlankIDs:  f.skipBlank,
		CacheBytes:    f.cacheMiB << 20,
	}
	if f.cacheMiB < 0 {
		return wire.Audience{}, errors.New("upload: --blind-cache-mib must be 0 or more")
	}
	if f.cacheMiB == 0 {
		opts.CacheBytes = -1
	}
	kind := psi.IDType(co.Rules.IDType)
	opts.IDType = kind
	if f.idType != "" {
		t, err := psi.ParseIDType(f.idType)
		if err != nil {
			return wire.Audience{}, err
		}
		if t != psi.SHA256 && t != kind {
			return wire.Audience{}, fmt.Errorf("upload: the collaboration matches on %s; --id-type %s would match nothing (use %s, or sha256 for pre-hashed %s)", kind, t, kind, kind)
		}
		opts.IDType, opts.HashedKind = t, kind
	}
	for _, a := range f.attrs {
		parts := strings.SplitN(a, ":", 3)
		spec := audience.AttrSpec{Name: parts[0]}
		if len(parts) > 1 {
			spec.Type = parts[1]
		}
		if len(parts) > 2 {
			spec.Column = parts[2]
		}
		opts.Attributes = append(opts.Attributes, spec)
	}

	file, err := os.Open(path)
	if err != nil {
		return wire.Audience{}, err
	}
	defer file.Close()
	var bar *rowProgress
	var in io.Reader = file
	parquetFile := strings.EqualFold(filepath.Ext(path), ".parquet")
	if !f.quiet && progress != nil {
		bar = newRowProgress(progress, "blinding and uploading "+filepath.Base(path))
		opts.Progress = bar.Set
		// The whole, for a share and an ETA: a Parquet footer counts the
		// rows; a CSV file's rows are known only once read, so its bytes
		// measure it.
		if parquetFile {
			if n, err := parquetRows(file); err == nil {
				bar.setTotal(n, nil)
			}
		} else if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
			cr := &countingReader{r: file}
			in = cr
			bar.setTotal(st.Size(), cr.count)
		}
	}

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	encErr := make(chan error, 1)
	go func() {
		var err error
		if parquetFile {
			_, err = audience.EncodeParquet(ctx, file, pw, key, opts)
		} else {
			_, err = audience.EncodeCSV(ctx, in, pw, key, opts)
		}
		pw.CloseWithError(err)
		if err == nil && bar != nil {
			bar.Encoded()
		}
		encErr <- err
	}()
	a, upErr := cl.UploadTable(ctx, f.collab, pr, client.UploadOptions{Table: f.table, Retention: f.retention, Key: key, Replace: f.replace, DryRun: f.dryRun})
	pr.CloseWithError(errUploadEnded)
	if err := <-encErr; err != nil && !errors.Is(err, errUploadEnded) && !strings.Contains(err.Error(), errUploadEnded.Error()) {
		// The encoder's error (a bad row) explains the failed upload.
		return wire.Audience{}, fmt.Errorf("upload: %s: %w", path, err)
	}
	if bar != nil {
		bar.Finish(upErr == nil)
	}
	return a, upErr
}

// printUploaded says what an upload (or a dry run) stored.
func printUploaded(out io.Writer, a wire.Audience) error {
	if a.DryRun {
		fmt.Fprintf(out, "dry run: table %s would be stored with %d rows, %d people, %d who can match; columns %s; nothing was stored\n", printable(a.Table), a.Rows, a.People, a.PeopleMatchable, columnList(a.Columns))
		if a.Replaced != "" {
			fmt.Fprintf(out, "it would replace audience %s (table %s)\n", printable(a.Replaced), printable(a.Table))
		}
		return nil
	}
	fmt.Fprintf(out, "uploaded table %s as audience %s: %d rows, %d people, %d who can match; content sha256 %s; key fingerprint %s\n",
		printable(a.Table), printable(a.ID), a.Rows, a.People, a.PeopleMatchable, printable(a.ContentSHA256), printable(psi.ShortFingerprint(a.KeyFingerprint)))
	if a.Replaced != "" {
		fmt.Fprintf(out, "it replaces audience %s (table %s), whose data the server deleted; run cleanroom match again for a fresh cohort\n", printable(a.Replaced), printable(a.Table))
	}
	return nil
}

// consentHint is what to say when an upload has no one who can match
// and gave no consent: a row without consent to the collaboration's
// purpose never matches, so the likely cause is a missing flag. "" when
// a consent flag was given.
func consentHint(f uploadFlags) string {
	if f.consentColumn != "" || f.consentAll != "" {
		return ""
	}
	return "hint: no row carries consent: pass --consent-column COLUMN (the column holding each row's purposes, separated by ';'), or --consent-all PURPOSE if every row consents to the collaboration's purpose"
}

// parquetRows is the number of rows a Parquet file's footer records; f
// is left where it was.
func parquetRows(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := file.NewParquetReader(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return 0, err
	}
	return pf.NumRows(), nil
}
