package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// What the CLI prints from the server (the other party's values, names,
// labels, errors) may hold characters a terminal acts on rather than
// shows: ESC sequences retitle or clear it, bidi controls reorder a line.
// Every such character is printed as a visible escape, here: printable
// for a field of text output, escapeControls for whole documents (JSON,
// CSV and NDJSON on a terminal, error messages).

// unsafeRune reports whether r is printed escaped: anything but letters,
// marks, numbers, punctuation, symbols and the ASCII space. That is wider
// than wire.IsControl, which the server refuses in names: a non-ASCII
// space, say, is a name's right but could pass for a column gap here.
func unsafeRune(r rune) bool { return !unicode.IsPrint(r) }

// printable is s as a terminal may show it: unchanged when it is valid
// UTF-8 of printable characters, else quoted with its control and
// invalid bytes escaped (strconv.Quote), so text from the server can
// neither move the cursor nor pass for another line or column.
func printable(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if unsafeRune(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// escapeControls returns b with every unsafe rune but the newline written
// as a \uXXXX escape (a surrogate pair past U+FFFF), and every byte that
// is not UTF-8 as \xNN. Applied to JSON it keeps the document valid and
// its values the same: encoding/json leaves DEL, C1 controls and bidi
// characters raw in strings, and only strings can hold them.
func escapeControls(b []byte) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&out, `\x%02x`, b[0])
		case r != '\n' && unsafeRune(r):
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&out, `\u%04x`, r)
			}
		default:
			out.Write(b[:n])
		}
		b = b[n:]
	}
	return out.Bytes()
}

// escaper is a writer that passes on what it is given through
// escapeControls: for a stream from the server (CSV, an audit export)
// shown on a terminal. A character split across writes waits for its
// end; Close writes what is left.
type escaper struct {
	w    io.Writer
	rest []byte
}

func (e *escaper) Write(p []byte) (int, error) {
	b := append(e.rest, p...)
	end := len(b)
	for i := len(b) - 1; i >= 0 && i > len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				end = i
			}
			break
		}
	}
	e.rest = bytes.Clone(b[end:])
	if _, err := e.w.Write(escapeControls(b[:end])); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (e *escaper) Close() error {
	rest := e.rest
	e.rest = nil
	_, err := e.w.Write(escapeControls(rest))
	return err
}

// toTerminal is w, or w behind an escaper when w is a terminal, with the
// function that flushes it: a stream the server sent is written byte for
// byte to a file or a pipe, and shown escaped on a terminal.
func toTerminal(w io.Writer) (io.Writer, func() error) {
	if !outIsTTY(w) {
		return w, func() error { return nil }
	}
	e := &escaper{w: w}
	return e, e.Close
}
