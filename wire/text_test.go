package wire

import (
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	for _, ok := range []string{"", "Spring campaign", "Café Zoë & Co.", "春のキャンペーン", "emoji 🎉"} {
		if err := CheckText("name", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"x\x1b]0;pwned\x07": "name: character U+001B at byte 1 is a control character",
		"tab\there":         "U+0009 at byte 3",
		"line\nbreak":       "U+000A",
		"del\x7f":           "U+007F",
		"c1 \u009b2J":       "U+009B",
		"bidi \u202eevil":   "U+202E",
		"zero\u200bwidth":   "U+200B",
		"sep\u2028":         "U+2028",
		"bad \xff":          "name: byte 4 is not UTF-8",
	} {
		if err := CheckText("name", in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
