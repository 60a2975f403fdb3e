package console_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/console"
)

// The audit view's action filter offers exactly the actions the server
// writes, so an auditor never filters on a name no entry has.
func TestConsoleOffersTheActionsTheServerWrites(t *testing.T) {
	w := get(t, console.Handler(), "GET", "/console/js/audit.js")
	list := regexp.MustCompile(`(?s)var actions = \[(.*?)\];`).FindSubmatch(w.Body.Bytes())
	if list == nil {
		t.Fatal("audit.js has no `var actions = [...];`")
	}
	var got []audit.Action
	for _, m := range regexp.MustCompile(`'([^']*)'`).FindAllSubmatch(list[1], -1) {
		got = append(got, audit.Action(m[1]))
	}
	if want := audit.Actions(); !slices.Equal(got, want) {
		t.Errorf("audit.js offers %q,\nthe server writes %q (audit.Actions)", got, want)
	}
}
