package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Off a terminal, progress is a plain line every few seconds with the
// share done and an ETA, one when the rows are all sent, one while the
// server commits and one when it has.
func TestPlainProgressLines(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPlainProgress(&out, "blinding and uploading big.csv", func() time.Time { return clock }, 5*time.Second)
	// A 6,000,000-byte file read at 100,000 bytes a second, 1,000 rows
	// (10,000 bytes) every 100 ms.
	var read int64
	p.setTotal(6_000_000, func() int64 { return read })
	for i := 1; i <= 600; i++ {
		clock = clock.Add(100 * time.Millisecond)
		read = int64(i) * 10_000
		p.Set(int64(i) * 1000)
	}
	p.Encoded()
	clock = clock.Add(2500 * time.Millisecond)
	p.Finish(true)
	p.Finish(true) // once only
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 15 {
		t.Fatalf("%d lines, want 12 (one each 5 s), one at the end of the rows and two for the commit:\n%s", len(lines), out.String())
	}
	if want := "blinding and uploading big.csv:   8%, 50000 rows, 10000 rows/s, ETA 55s (5s)"; lines[0] != want {
		t.Errorf("first line\n%q, want\n%q", lines[0], want)
	}
	if want := "blinding and uploading big.csv:  50%, 300000 rows, 10000 rows/s, ETA 30s (30s)"; lines[5] != want {
		t.Errorf("sixth line\n%q, want\n%q", lines[5], want)
	}
	if want := "blinding and uploading big.csv: 600000 rows in 1m0s (10000 rows/s)"; lines[12] != want {
		t.Errorf("the rows' last line %q, want %q", lines[12], want)
	}
	if lines[13] != "committing on the server…" || lines[14] != "committed on the server in 2.5s" {
		t.Errorf("the commit's lines: %q", lines[13:])
	}
	if strings.Contains(out.String(), "\r") {
		t.Error("carriage returns in plain output")
	}

	// A quick step prints only its closing lines.
	out.Reset()
	p = newPlainProgress(&out, "quick", func() time.Time { return clock }, 5*time.Second)
	p.Set(10)
	clock = clock.Add(250 * time.Millisecond)
	p.Set(20)
	p.Encoded()
	p.Finish(true)
	if got := out.String(); got != "quick: 20 rows in 250ms (80 rows/s)\ncommitting on the server…\ncommitted on the server in 0s\n" {
		t.Errorf("quick step: %q", got)
	}

	// A refused upload does not claim a commit.
	out.Reset()
	p = newPlainProgress(&out, "refused", func() time.Time { return clock }, 5*time.Second)
	p.Set(10)
	p.Encoded()
	p.Finish(false)
	if strings.Contains(out.String(), "committed") {
		t.Errorf("a refused upload's progress: %q", out.String())
	}
}

// On a terminal the bar shows the share, rows, rate and ETA, redrawn in
// place; over its first second it shows no rate (start-up is not the
// step's speed), and the wait for the server's commit has its line.
func TestProgressBar(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPlainProgress(&out, "up.csv", func() time.Time { return clock }, barRedrawEvery)
	p.tty = true
	p.setTotal(1000, nil) // rows, as a Parquet footer gives them

	clock = clock.Add(200 * time.Millisecond)
	p.Set(200) // a first batch done at once: 1000 rows/s is no rate yet
	first := out.String()
	if !strings.HasPrefix(first, "\rup.csv: [") || !strings.Contains(first, " 20%, 200 rows (200ms)") {
		t.Errorf("first draw %q", first)
	}
	if strings.Contains(first, "rows/s") || strings.Contains(first, "ETA") {
		t.Errorf("a rate or an ETA after 200 ms: %q", first)
	}

	out.Reset()
	clock = clock.Add(1800 * time.Millisecond)
	p.Set(500)
	if got, want := out.String(), "\rup.csv: ["+strings.Repeat("=", 12)+strings.Repeat(" ", 12)+"]  50%, 500 rows, 250 rows/s, ETA 2s (2s)\x1b[K"; got != want {
		t.Errorf("after 2 s\n%q, want\n%q", got, want)
	}
	out.Reset()
	clock = clock.Add(50 * time.Millisecond)
	p.Set(510)
	if out.Len() != 0 {
		t.Errorf("redrawn after 50 ms: %q", out.String())
	}

	out.Reset()
	clock = clock.Add(1950 * time.Millisecond)
	p.Set(1000)
	p.Encoded()
	clock = clock.Add(3 * time.Second)
	p.Finish(true)
	if got := out.String(); !strings.HasSuffix(got, "\rup.csv: 1000 rows in 4s (250 rows/s)\x1b[K\ncommitting on the server… done in 3s\n") {
		t.Errorf("the end %q", got)
	}
}

// A file or pipe is not a terminal; the plain lines go there.
func TestProgressOffTerminalIsPlain(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := newRowProgress(f, "x"); p.tty {
		t.Error("a bar for a regular file")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p := newRowProgress(w, "x"); p.tty {
		t.Error("a bar for a pipe")
	}
}
