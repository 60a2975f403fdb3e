package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	// plainProgressEvery is how often a plain progress line is printed
	// when the output is not a terminal.
	plainProgressEvery = 5 * time.Second
	// barRedrawEvery bounds how often the bar is redrawn on a terminal.
	barRedrawEvery = 200 * time.Millisecond
	// rateAfter is how long a step runs before a rate and an ETA are
	// shown: over the first milliseconds they measure start-up (buffers
	// filling, the first batch done at once), not the step.
	rateAfter = time.Second
	barWidth  = 24
)

// rowProgress shows how far a long step (blinding and uploading a file)
// has gone: rows done, the share of the whole with an ETA when the total
// is known, and a line while the server commits. On a terminal it is a
// bar redrawn in place. Anywhere else (a CI log, a pipe to tee) each
// redraw would be a line, so it prints a plain line every
// plainProgressEvery and one at the end instead. Ours, not
// schollz/progressbar: see docs/design.md (its first rate reading is
// computed from a near-zero elapsed time).
type rowProgress struct {
	mu    sync.Mutex
	w     io.Writer
	desc  string
	now   func() time.Time
	tty   bool
	every time.Duration

	// measure is how far the step is, out of total (0: unknown): the
	// bytes of a CSV file read so far, say; nil measures rows.
	measure   func() int64
	total     int64
	start     time.Time
	lastPrint time.Time
	rows      int64
	encoded   time.Time // when the last row went; zero before
	finished  bool
	drawn     bool // a bar line is on the terminal, not yet ended
}

// newRowProgress returns the progress of desc (say "blinding and
// uploading brand.csv"), written to w.
func newRowProgress(w io.Writer, desc string) *rowProgress {
	if isTerminal(w) {
		p := newPlainProgress(w, desc, time.Now, barRedrawEvery)
		p.tty = true
		return p
	}
	return newPlainProgress(w, desc, time.Now, plainProgressEvery)
}

// newPlainProgress is the progress for output that is not a terminal,
// with its clock and interval given.
func newPlainProgress(w io.Writer, desc string, now func() time.Time, every time.Duration) *rowProgress {
	t := now()
	return &rowProgress{w: w, desc: desc, now: now, every: every, start: t, lastPrint: t}
}

// setTotal says how much the whole step is: total units, of which
// measure says how many are done (nil: the rows Set records).
func (p *rowProgress) setTotal(total int64, measure func() int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.measure = total, measure
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
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rows = rows
	if t := p.now(); !p.finished && p.encoded.IsZero() && t.Sub(p.lastPrint) >= p.every {
		p.lastPrint = t
		p.print(t, false)
	}
}

// Encoded records that every row went; the server now commits them,
// which for a large table takes a while: say so, so the wait is not
// mistaken for a hang.
func (p *rowProgress) Encoded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished || !p.encoded.IsZero() {
		return
	}
	p.encoded = p.now()
	p.print(p.encoded, true)
	fmt.Fprint(p.w, "committing on the server…")
	if !p.tty {
		fmt.Fprintln(p.w)
	}
	p.drawn = p.tty
}

// Finish ends the progress once the server answered: ok says whether it
// stored the upload.
func (p *rowProgress) Finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	t := p.now()
	switch {
	case !ok:
		if p.drawn {
			fmt.Fprintln(p.w) // the error starts on a line of its own
		}
	case p.encoded.IsZero():
		p.print(t, true)
		fmt.Fprintln(p.w)
	case p.tty:
		fmt.Fprintf(p.w, " done in %s\n", round(t.Sub(p.encoded)))
	default:
		fmt.Fprintf(p.w, "committed on the server in %s\n", round(t.Sub(p.encoded)))
	}
	p.drawn = false
}

// print writes the progress at t: the bar (on a terminal) or a line;
// final for the line saying the rows are all done.
func (p *rowProgress) print(t time.Time, final bool) {
	elapsed := t.Sub(p.start)
	if final {
		line := fmt.Sprintf("%s: %d rows in %s (%s)", p.desc, p.rows, round(elapsed), rate(p.rows, elapsed))
		if p.tty {
			// The bar's line becomes the closing line.
			fmt.Fprintf(p.w, "\r%s\x1b[K\n", line)
		} else {
			fmt.Fprintln(p.w, line)
		}
		p.drawn = false
		return
	}
	done := p.rows
	if p.measure != nil {
		done = p.measure()
	}
	var b strings.Builder
	b.WriteString(p.desc + ": ")
	if p.total > 0 {
		frac := min(float64(done)/float64(p.total), 1)
		if p.tty {
			n := int(frac * barWidth)
			b.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", barWidth-n) + "] ")
		}
		fmt.Fprintf(&b, "%3.0f%%, ", frac*100)
	}
	fmt.Fprintf(&b, "%d rows", p.rows)
	if elapsed >= rateAfter {
		fmt.Fprintf(&b, ", %s", rate(p.rows, elapsed))
		if p.total > 0 && done > 0 && done < p.total {
			eta := time.Duration(float64(elapsed) * float64(p.total-done) / float64(done))
			fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
		}
	}
	fmt.Fprintf(&b, " (%s)", round(elapsed))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", b.String())
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, b.String())
	}
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

// countingReader counts the bytes read through it, for a CSV upload's
// progress against the file's size.
type countingReader struct {
	r  io.Reader
	mu sync.Mutex
	n  int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.mu.Lock()
	c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
