package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Off a terminal, progress is a plain line every few seconds and one at
// the end, however often the rows move.
func TestPlainProgressLines(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPlainProgress(&out, "blinding and uploading big.csv", func() time.Time { return clock }, 5*time.Second)
	// 60 s of records, one every 100 ms.
	for i := 1; i <= 600; i++ {
		clock = clock.Add(100 * time.Millisecond)
		p.Set(int64(i) * 1000)
	}
	p.Finish()
	p.Finish() // once only
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 13 {
		t.Fatalf("%d lines, want 12 (one each 5 s) and one at the end:\n%s", len(lines), out.String())
	}
	if lines[0] != "blinding and uploading big.csv: 50000 rows so far (10000 rows/s, 5s)" {
		t.Errorf("first line %q", lines[0])
	}
	if lines[12] != "blinding and uploading big.csv: 600000 rows in 1m0s (10000 rows/s)" {
		t.Errorf("last line %q", lines[12])
	}
	if strings.Contains(out.String(), "\r") {
		t.Error("carriage returns in plain output")
	}

	// A quick step prints only its closing line.
	out.Reset()
	p = newPlainProgress(&out, "quick", func() time.Time { return clock }, 5*time.Second)
	p.Set(10)
	clock = clock.Add(250 * time.Millisecond)
	p.Set(20)
	p.Finish()
	if got := out.String(); got != "quick: 20 rows in 250ms (80 rows/s)\n" {
		t.Errorf("quick step: %q", got)
	}
}

// A file or pipe is not a terminal; the plain lines go there.
func TestProgressOffTerminalIsPlain(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p := newRowProgress(f, "x"); p.bar != nil {
		t.Error("a bar for a regular file")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p := newRowProgress(w, "x"); p.bar != nil {
		t.Error("a bar for a pipe")
	}
}
