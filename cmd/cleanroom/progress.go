package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// plainProgressEvery is how often a plain progress line is printed when
// the output is not a terminal.
const plainProgressEvery = 5 * time.Second

// rowProgress shows how many rows a long step has done. On a terminal it
// is a progress bar redrawn in place. Anywhere else (a CI log, a pipe to
// tee) a bar's redraws would each become a line, so it prints a plain line
// every plainProgressEvery and one at the end instead.
type rowProgress struct {
	bar *progressbar.ProgressBar // on a terminal

	mu        sync.Mutex
	w         io.Writer
	desc      string
	now       func() time.Time
	every     time.Duration
	start     time.Time
	lastPrint time.Time
	rows      int64
	finished  bool
}

// newRowProgress returns the progress of desc (say "blinding and
// uploading brand.csv"), written to w.
func newRowProgress(w io.Writer, desc string) *rowProgress {
	if isTerminal(w) {
		return &rowProgress{bar: progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
			progressbar.OptionSpinnerType(14), progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))}
	}
	return newPlainProgress(w, desc, time.Now, plainProgressEvery)
}

// newPlainProgress is the progress for output that is not a terminal,
// with its clock and interval given.
func newPlainProgress(w io.Writer, desc string, now func() time.Time, every time.Duration) *rowProgress {
	t := now()
	return &rowProgress{w: w, desc: desc, now: now, every: every, start: t, lastPrint: t}
}

// isTerminal reports whether w is a terminal (a character device: a
// terminal, or /dev/null, where a bar does no harm either).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Set records that rows rows are done.
func (p *rowProgress) Set(rows int64) {
	if p.bar != nil {
		p.bar.Set64(rows)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rows = rows
	if t := p.now(); !p.finished && t.Sub(p.lastPrint) >= p.every {
		p.lastPrint = t
		elapsed := t.Sub(p.start)
		fmt.Fprintf(p.w, "%s: %d rows so far (%s, %s)\n", p.desc, rows, rate(rows, elapsed), round(elapsed))
	}
}

// Finish ends the progress: the bar's last state, or the closing line.
func (p *rowProgress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	elapsed := p.now().Sub(p.start)
	fmt.Fprintf(p.w, "%s: %d rows in %s (%s)\n", p.desc, p.rows, round(elapsed), rate(p.rows, elapsed))
}

func rate(rows int64, d time.Duration) string {
	if d <= 0 {
		return "- rows/s"
	}
	return fmt.Sprintf("%.0f rows/s", float64(rows)/d.Seconds())
}

// round gives a duration to a tenth of a second, or a millisecond under
// one second.
func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
