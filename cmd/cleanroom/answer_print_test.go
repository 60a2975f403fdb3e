package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// An answer printed as a table shows the digits that tell a value and its
// interval apart, and a median (no interval) without failing.
func TestPrintAnswerDigitsApart(t *testing.T) {
	a := wire.Answer{
		Columns: []wire.Column{{Name: "region", Kind: "dimension"}, {Name: "people", Kind: "count"}, {Name: "avg", Kind: "avg"}, {Name: "med", Kind: "median"}},
		Rows: [][]any{
			{"north", 112.0, 1.5234, 40.0},
			{"south", 89.0, 1.5011, 41.0},
		},
		Intervals: [][]*wire.Interval{
			{nil, {Lower: 102, Upper: 122}, {Lower: 1.4712, Upper: 1.5701}, nil},
			{nil, {Lower: 79, Upper: 99}, {Lower: 1.4995, Upper: 1.5027}, nil},
		},
	}
	var out bytes.Buffer
	printAnswer(&out, a)
	got := out.String()
	for _, want := range []string{
		"112", "[102, 122]",
		// 1.4995 and 1.5027 need three decimals to read apart from 1.501.
		"1.523", "[1.471, 1.570]", "1.501", "[1.500, 1.503]",
		"40", "–",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("printed answer lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "%!") {
		t.Errorf("a value failed to format:\n%s", got)
	}
}
