package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/cleanroom/cleanroom/wire"
)

// hostile is text a party or a server might send to take over a
// terminal: retitle and clear it, colour it through a C1 CSI, reverse a
// line, and a character past U+FFFF for good measure.
const hostile = "x\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eevil\x7f\u2028\U000e0001🎉"

// raw reports the first rune of out a terminal would act on (anything
// unsafe but the newline), or -1.
func raw(out string) rune {
	for _, r := range out {
		if r != '\n' && unsafeRune(r) {
			return r
		}
	}
	if !utf8.ValidString(out) {
		return utf8.RuneError
	}
	return -1
}

// TestEscapeControlsKeepsJSON: escaped JSON is valid, decodes to the
// same values, and holds nothing a terminal acts on.
func TestEscapeControlsKeepsJSON(t *testing.T) {
	in := map[string]any{"name": hostile, "list": []string{hostile, "plain"}}
	b, err := encodeJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	if r := raw(string(b)); r != -1 {
		t.Errorf("escaped JSON holds %U raw:\n%s", r, b)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("escaped JSON does not decode: %v\n%s", err, b)
	}
	if back["name"] != hostile {
		t.Errorf("decoded %q, want %q", back["name"], hostile)
	}
	for _, s := range []string{`\u001b]0;pwned\u0007`, `\u009b31m`, `\u202eevil`, `\u007f`, `\u2028`, `\udb40\udc01🎉`} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("escaped JSON lacks %s:\n%s", s, b)
		}
	}
}

// TestEscaperAcrossWrites: a stream escaped in pieces, a character split
// between two writes, reads as the whole escaped at once.
func TestEscaperAcrossWrites(t *testing.T) {
	in := []byte("a,b\n" + hostile + ",1\nbad \xff byte,2\n")
	want := escapeControls(in)
	for _, size := range []int{1, 2, 3, 5} {
		var out bytes.Buffer
		e := &escaper{w: &out}
		for p := in; len(p) > 0; {
			n := min(size, len(p))
			if _, err := e.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != string(want) {
			t.Errorf("in writes of %d bytes: %q, want %q", size, out.String(), want)
		}
	}
	if !strings.Contains(string(want), `bad \xff byte`) {
		t.Errorf("an invalid byte: %q", want)
	}
}

// TestReportsEscapeServerText: the transparency and privacy reports, as
// text and JSON, print every name, label and value the server sent with
// its control characters escaped.
func TestReportsEscapeServerText(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	rep := wire.Report{
		Collaboration: wire.Collaboration{ID: "c_1", Name: hostile, Proposer: "p_b", Partner: "p_p", ProposerName: hostile, PartnerName: "Publisher",
			State: hostile, Rules: wire.Rules{Purpose: hostile}},
		GeneratedAt: at,
		DataHeld: []wire.HeldData{{PartnerID: "p_b", Audience: &wire.Audience{ID: "a_1", Table: hostile, CreatedAt: at,
			Columns: json.RawMessage(`[{"name":"x\u001b[2J","type":"utf8"}]`)}, ConsentRowsByPurpose: []wire.PurposeRows{{Purpose: hostile, Rows: 1}}}},
		Matches:          []wire.ReportMatch{{ID: hostile, State: wire.MatchState(hostile), CreatedAt: at}},
		QueriesByAnalyst: []wire.AnalystQueries{{AnalystKey: "k_1", AnalystLabel: hostile, PartnerID: "p_b", Queries: 1, Epsilon: 1}},
		BudgetSpentByDay: []wire.DaySpend{{Day: hostile, PartnerID: "p_p", Kind: hostile, Charges: 1}},
		RefusalsByReason: []wire.ReasonRefusals{{Reason: wire.ErrorCode(hostile), Refusals: 1}},
		Honoured:         []wire.HonouredDeletion{{ReceiptID: hostile, Kind: wire.DeleteOptOut, PartnerID: "p_b", RequestedAt: at}},
		Deletions:        []wire.DeletionReceipts{{Kind: wire.DeleteOptOut, PartnerID: "p_b", Receipts: 1}},
	}
	priv := wire.PrivacyReport{PartnerID: "p_b", PartnerName: hostile, Since: at, Until: at.AddDate(0, 1, 0),
		Collaborations: []wire.PrivacyCollaboration{{Name: hostile, PartnerName: hostile, Purpose: hostile, State: hostile, Noise: wire.Noise(hostile)}}}
	for _, c := range []struct {
		name string
		v    any
		text func(io.Writer, any) error
	}{
		{"report", rep, func(w io.Writer, v any) error { return printReport(w, v.(wire.Report)) }},
		{"privacy", priv, func(w io.Writer, v any) error { return printPrivacyReport(w, v.(wire.PrivacyReport)) }},
	} {
		for _, format := range []string{"text", "json"} {
			var b bytes.Buffer
			cmd := &cobra.Command{}
			cmd.SetOut(&b)
			o := reportOutput{format: format}
			if err := o.write(cmd, c.v, c.name, c.text); err != nil {
				t.Fatal(err)
			}
			if r := raw(b.String()); r != -1 {
				t.Errorf("%s as %s prints %U raw:\n%s", c.name, format, r, b.String())
			}
			if !strings.Contains(b.String(), `0;pwned`) {
				t.Errorf("%s as %s lost the text around the escapes:\n%s", c.name, format, b.String())
			}
		}
	}
}

// TestServerStreamsOnATerminal: on a terminal a CSV answer shows its
// control characters escaped and an Arrow one is refused before the
// question is asked (so nothing is spent); an error the server answers
// is printed escaped wherever it goes.
func TestServerStreamsOnATerminal(t *testing.T) {
	defer func(f func(io.Writer) bool) { outIsTTY = f }(outIsTTY)
	outIsTTY = func(io.Writer) bool { return true }
	asked := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/partners" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.Error{Code: wire.CodeInvalid, Message: "name " + hostile}})
			return
		}
		asked++
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, "campaign,count\n"+hostile+",12\n")
	}))
	defer srv.Close()
	run := func(args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs(append(args, "--url", srv.URL, "--key", "crk_k_1.secret"))
		err := root.Execute()
		return out.String(), err
	}

	out, err := run("query", "--collab", "c_1", "--format", "csv", "SELECT publisher_campaign, COUNT(*) FROM cohort GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	if r := raw(out); r != -1 || !strings.Contains(out, `x\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202eevil`) || !strings.HasPrefix(out, "campaign,count\n") {
		t.Errorf("CSV on a terminal:\n%s", out)
	}

	if _, err := run("query", "--collab", "c_1", "--format", "arrow", "SELECT COUNT(*) FROM cohort"); err == nil || !strings.Contains(err.Error(), "not for a terminal") {
		t.Errorf("Arrow on a terminal: %v", err)
	}
	if asked != 1 {
		t.Errorf("the server was asked %d questions, want the CSV one only", asked)
	}

	_, err = run("partners", "list")
	if err == nil {
		t.Fatal("an error answer passed")
	}
	var b bytes.Buffer
	printErr(&b, err)
	if r := raw(b.String()); r != -1 || !strings.Contains(b.String(), `name x\u001b]0;pwned`) {
		t.Errorf("the server's error printed as %q", b.String())
	}
}
