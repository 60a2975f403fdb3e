package wire

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// IsControl reports whether r is a character a terminal acts on, or that
// misleads a reader, rather than one it shows: C0 and C1 controls and
// DEL (ESC starts the sequences that retitle or clear a terminal),
// Unicode format characters (bidi overrides such as U+202E, zero-width
// characters) and the line and paragraph separators.
func IsControl(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// CheckText refuses a name or label a person sets (a collaboration's
// name, a key's label) that is not UTF-8 or holds a control character
// (IsControl): others read it in their terminals. The error names the
// field and the character.
func CheckText(field, s string) error {
	for i, n := 0, 1; i < len(s); i += n {
		var r rune
		r, n = utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Errorf("%s: byte %d is not UTF-8; send the text as UTF-8", field, i)
		}
		if IsControl(r) {
			return fmt.Errorf("%s: character %U at byte %d is a control character; names and labels take printable text only", field, r, i)
		}
	}
	return nil
}
