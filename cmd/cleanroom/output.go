package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// outFormat is the --format of a command that prints what the server
// answered: table for people (the default), json for programs. Parsed as
// a flag value, so a wrong one is refused before anything is asked.
type outFormat string

func (f *outFormat) String() string { return string(*f) }
func (f *outFormat) Type() string   { return "table|json" }
func (f *outFormat) Set(s string) error {
	switch s {
	case "table", "json":
		*f = outFormat(s)
		return nil
	}
	return fmt.Errorf("want table or json")
}

func (f *outFormat) flags(cmd *cobra.Command) {
	*f = "table"
	cmd.Flags().Var(f, "format", "table (for people) or json (for programs)")
}

// print writes v as JSON, or as the table printed by table; both escaped.
func (f outFormat) print(cmd *cobra.Command, v any, table func(w io.Writer)) error {
	if f == "json" {
		return printOut(cmd, v)
	}
	var b strings.Builder
	table(&b)
	_, err := cmd.OutOrStdout().Write(escapeControls([]byte(b.String())))
	return err
}

// fields prints name/value pairs aligned, one a line: a single object as
// a table. Values are printed as given: the caller makes them printable.
func fields(w io.Writer, kv ...string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s\t%s\n", kv[i], kv[i+1])
	}
	tw.Flush()
}

// secretFile is --secret-file and --force: where a new key's secret is
// written (0600) instead of being printed.
type secretFile struct {
	path  string
	force bool
	f     *os.File
	tmp   string // with --force: written here, then renamed over path
}

func (s *secretFile) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.path, "secret-file", "", "write the new key's secret to this file (mode 0600) instead of printing it; --key takes the file's path")
	cmd.Flags().BoolVar(&s.force, "force", false, "overwrite --secret-file if it exists")
}

// prepare opens the file before the server is asked: a path that cannot
// be written must fail before a key exists whose secret would be lost.
func (s *secretFile) prepare() error {
	if s.path == "" {
		return nil
	}
	var err error
	if s.force {
		// A file truncated in place would keep its old mode (0644, say);
		// a new one renamed over it has 0600.
		s.f, err = os.CreateTemp(filepath.Dir(s.path), ".cleanroom-secret-*")
		if err == nil {
			s.tmp = s.f.Name()
		}
	} else {
		s.f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("--secret-file %s exists: give another path, or --force to overwrite it", s.path)
		}
	}
	if err != nil {
		return fmt.Errorf("--secret-file: %w", err)
	}
	return nil
}

// abort removes the file prepare made, when no secret came.
func (s *secretFile) abort() {
	if s.f == nil {
		return
	}
	s.f.Close()
	if s.tmp != "" {
		os.Remove(s.tmp)
	} else {
		os.Remove(s.path)
	}
	s.f = nil
}

// store writes the secret to the file prepare opened.
func (s *secretFile) store(secret string) error {
	_, err := io.WriteString(s.f, secret+"\n")
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	if err == nil && s.tmp != "" {
		err = os.Rename(s.tmp, s.path)
	}
	if err != nil {
		if s.tmp != "" {
			os.Remove(s.tmp)
		}
		return fmt.Errorf("--secret-file %s: %w", s.path, err)
	}
	return nil
}

// withSecret runs create (which makes a key and returns it with its
// secret) with the secret going to --secret-file when given, and prints
// the result: the secret in the output only without --secret-file, or
// when writing the file failed (the secret must not be lost; the error
// still says the file was not written).
func (s *secretFile) withSecret(cmd *cobra.Command, f outFormat, create func() (v any, secret string, err error), table func(w io.Writer, secret string)) error {
	if err := s.prepare(); err != nil {
		return err
	}
	v, secret, err := create()
	if err != nil {
		s.abort()
		return err
	}
	shown, storeErr := secret, error(nil)
	if s.path != "" {
		if storeErr = s.store(secret); storeErr == nil {
			shown = ""
			v = withoutSecret(v, s.path)
		}
	}
	if err := f.print(cmd, v, func(w io.Writer) {
		if shown == "" {
			table(w, "written to "+printable(s.path)+" (mode 0600), not shown")
		} else {
			table(w, printable(shown))
		}
	}); err != nil {
		return err
	}
	if storeErr != nil {
		return fmt.Errorf("%w: the secret is printed above instead, once; keep it", storeErr)
	}
	if s.path != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "the secret is in %s; pass --key %s to use it\n", printable(s.path), printable(s.path))
	}
	return nil
}

// withoutSecret is v as a JSON object with its secret replaced by the
// file it was written to.
func withoutSecret(v any, path string) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return v
	}
	delete(m, "secret")
	m["secret_file"] = path
	return m
}
