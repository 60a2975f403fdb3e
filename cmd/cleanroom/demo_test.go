package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

// TestDemoServe runs demo --serve: it prints the console's address and a
// working key of each role of each partner, leaves something for every
// view of the console, and stops cleanly when its context ends (Ctrl-C).
func TestDemoServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runDemo(ctx, pw, io.Discard, demoOptions{dir: t.TempDir(), brandN: 3000, pubN: 2500, overlap: 1200, quiet: true, serve: true, addr: "127.0.0.1:0"})
		pw.CloseWithError(io.EOF)
		done <- err
	}()

	line := regexp.MustCompile(`^(analyst|engineer|auditor|admin) \((Brand Co|Publisher)\): (crk_\S+)$`)
	consoleLine := regexp.MustCompile(`^console: (http://127\.0\.0\.1:[0-9]+)/console/ \(Ctrl-C stops the server\)$`)
	type who struct{ role, partner string }
	var order []who
	keys := map[who]string{}
	var printed strings.Builder
	var base string
	sc := bufio.NewScanner(pr)
	for len(keys) < 8 && sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if m := consoleLine.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			w := who{m[1], m[2]}
			order = append(order, w)
			keys[w] = m[3]
		}
	}
	if len(keys) < 8 || base == "" {
		t.Fatalf("the demo ended before printing the console and 8 keys: %v\n%s", <-done, printed.String())
	}
	// The rest (the line printed on stopping) is read after the cancel.
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(pr); rest <- string(b) }()

	want := []who{{"analyst", "Brand Co"}, {"engineer", "Brand Co"}, {"auditor", "Brand Co"}, {"admin", "Brand Co"},
		{"analyst", "Publisher"}, {"engineer", "Publisher"}, {"auditor", "Publisher"}, {"admin", "Publisher"}}
	if !slices.Equal(order, want) {
		t.Errorf("key lines in the order %v, want %v", order, want)
	}
	for w, k := range keys {
		me, err := client.New(base, k).Me(ctx)
		if err != nil {
			t.Fatalf("%s (%s): %v", w.role, w.partner, err)
		}
		if string(me.Role) != w.role || me.PartnerName != w.partner {
			t.Errorf("the key printed for %s (%s) is %s's %s", w.role, w.partner, me.PartnerName, me.Role)
		}
	}
	resp, err := http.Get(base + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /console/: %s", resp.Status)
	}

	// Something for every view: a rules change awaiting approval, a
	// refusal, deletions and opt-outs with receipts.
	brandAud := client.New(base, keys[who{"auditor", "Brand Co"}])
	cs, err := brandAud.Collaborations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var spring, summer wire.Collaboration
	for _, c := range cs {
		switch c.Name {
		case "spring campaign":
			spring = c
		case "summer campaign":
			summer = c
		}
	}
	if spring.State != wire.StateActive {
		t.Errorf("spring campaign is %q, want active (its queries must keep working)", spring.State)
	}
	if summer.State != wire.StateProposed || summer.ApprovedRules == nil || summer.ApprovedRules.EpsilonBudget == summer.Rules.EpsilonBudget {
		t.Errorf("summer campaign: want a rules change awaiting approval, got state %q, approved rules %v", summer.State, summer.ApprovedRules)
	}
	rep, err := brandAud.Report(ctx, spring.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.RefusalsByReason, func(r wire.ReasonRefusals) bool { return r.Reason == wire.CodeHiddenColumn }) {
		t.Errorf("the report shows no hidden_column refusal: %+v", rep.RefusalsByReason)
	}
	var kinds []wire.DeletionKind
	for _, h := range rep.Honoured {
		kinds = append(kinds, h.Kind)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []wire.DeletionKind{wire.DeleteIdentifiers, wire.DeleteOptOut}) {
		t.Errorf("the brand's honoured deletions are %v, want one deletion and one opt-out", kinds)
	}
	hist, err := client.New(base, keys[who{"analyst", "Brand Co"}]).QueryHistory(ctx, spring.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(hist.Queries); n != 4 || hist.Queries[0].Outcome != wire.OutcomeRefused {
		t.Errorf("the brand analyst's history has %d queries, newest %+v; want 4, newest refused", n, hist.Queries)
	}

	// The commands a user runs next, against the demo's server.
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"privacy-report", "--url", base, "--key", keys[who{"auditor", "Brand Co"}]})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"Brand Co: how your data was used",
		"Brand Co's data was sent to 1 collaboration in this period.",
		`"spring campaign" with Publisher, for the purpose measurement: 3 answers`,
		"Opt-outs honoured:                            1",
		"Deletion requests honoured:                   1",
		"5 people were named in them.",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the privacy report lacks %q:\n%s", s, out.String())
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo --serve ended with %v on Ctrl-C, want a clean stop", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo --serve did not stop within 30 s of Ctrl-C")
	}
	if r := <-rest; !strings.Contains(r, "stopping the server") {
		t.Errorf("after Ctrl-C the demo printed %q", r)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after the demo stopped")
	}
}
