package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/report"
	"github.com/cleanroom/cleanroom/wire"
)

// A page of HTML is refused on a terminal, before anything is asked of
// the server, with what to do instead; -o or a redirect is fine.
func TestReportHTMLRefusedOnATerminal(t *testing.T) {
	defer func(f func(io.Writer) bool) { outIsTTY = f }(outIsTTY)
	outIsTTY = func(io.Writer) bool { return true }
	for _, args := range [][]string{
		{"report", "c_x", "--format", "html"},
		{"privacy-report", "--format", "html"},
	} {
		root := newRoot()
		root.SetArgs(append(args, "--url", "http://127.0.0.1:1", "--key", "crk_x"))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "give -o FILE") {
			t.Errorf("%s: got %v, want a refusal saying to give -o FILE", strings.Join(args, " "), err)
		}
		root = newRoot()
		root.SetArgs(append(args, "-o", filepath.Join(t.TempDir(), "r.html"), "--url", "http://127.0.0.1:1", "--key", "crk_x"))
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "cannot reach") {
			t.Errorf("%s -o FILE: got %v, want it to go on to the server", strings.Join(args, " "), err)
		}
	}
	if isTTY(io.Discard) || isTTY(&bytes.Buffer{}) {
		t.Error("a buffer is taken for a terminal")
	}
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		defer null.Close()
		if isTTY(null) {
			t.Errorf("%s is taken for a terminal", os.DevNull)
		}
	}
}

func TestParseDate(t *testing.T) {
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		end  bool
		want time.Time
	}{
		{"", false, time.Time{}},
		{"2025-03-01", false, day},
		{"2025-03-01", true, day.AddDate(0, 0, 1)},
		{"2025-03-01T12:30:00+01:00", true, time.Date(2025, 3, 1, 11, 30, 0, 0, time.UTC)},
	} {
		got, err := parseDate("privacy-report", "--since", c.in, c.end)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseDate(%q, end %v) = %v, %v; want %v", c.in, c.end, got, err, c.want)
		}
	}
	for _, bad := range []string{"yesterday", "2025-13-01", "01/03/2025"} {
		if _, err := parseDate("privacy-report", "--since", bad, false); err == nil || !strings.Contains(err.Error(), "want a day (2025-03-01) or an RFC 3339 time") {
			t.Errorf("parseDate(%q): %v", bad, err)
		}
	}
}

// The text report is for people: names, not partner ids; columns as a
// list, not escaped JSON.
func TestPrintReportIsReadable(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	size := int64(961)
	rep := wire.Report{
		Collaboration: wire.Collaboration{ID: "c_1", Name: "spring", Proposer: "p_b", Partner: "p_p", ProposerName: "Brand Co", PartnerName: "Publisher",
			State: wire.StateActive, Rules: wire.Rules{Purpose: "measurement"}},
		GeneratedAt: at,
		DataHeld: []wire.HeldData{
			{PartnerID: "p_b", Audience: &wire.Audience{ID: "a_1", Rows: 3000, People: 3000, PeopleMatchable: 2700, CreatedAt: at,
				Columns: json.RawMessage(`[{"name":"pid","type":"fixed_size_binary[32]"},{"name":"consent","type":"list<item: utf8, nullable>"},{"name":"region","type":"utf8"}]`)},
				ConsentRowsByPurpose: []wire.PurposeRows{{Purpose: "measurement", Rows: 2700}}},
			{PartnerID: "p_p", Audience: &wire.Audience{ID: "a_2", CreatedAt: at, Columns: json.RawMessage(`[{"name":"pid","type":"fixed_size_binary[32]"}]`)}},
		},
		Matches:          []wire.ReportMatch{{ID: "m_1", State: "done", CohortSizeNoisy: &size, Epsilon: 0.1, CreatedAt: at}},
		QueriesByAnalyst: []wire.AnalystQueries{{AnalystKey: "k_1", AnalystLabel: "demo", PartnerID: "p_b", Queries: 3, Epsilon: 3}},
		BudgetSpentByDay: []wire.DaySpend{{Day: "2025-03-01", PartnerID: "p_p", Kind: "match", Charges: 1, Epsilon: 0.1}},
		RefusalsByReason: []wire.ReasonRefusals{{Reason: wire.CodeHiddenColumn, Refusals: 1}},
		Deletions:        []wire.DeletionReceipts{{Kind: wire.DeleteOptOut, PartnerID: "p_b", Receipts: 1, IdentifiersSubmitted: 3}},
		Honoured:         []wire.HonouredDeletion{{ReceiptID: "r_1", Kind: wire.DeleteOptOut, PartnerID: "p_b", RequestedAt: at, HonouredAt: at, Seconds: 0}},
		Exposure:         wire.Exposure{CollaborationEpsilonSpent: 3.2, CollaborationDeltaSpent: 2e-6},
	}
	var b bytes.Buffer
	if err := printReport(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		"Transparency report: collaboration spring (c_1), active\nbetween Brand Co (proposer) and Publisher; purpose measurement; generated 2025-03-01 09:30 UTC\n",
		"  Brand Co   audience a_1: 3000 rows, 3000 people, 2700 who can match; uploaded 2025-03-01 09:30 UTC\n",
		"             columns: pid (fixed_size_binary[32]), consent (list<string>), region (string)\n",
		"             consent: measurement 2700 rows\n",
		"  Publisher  audience a_2; uploaded",
		"  demo (k_1)  Brand Co  3        3\n",
		"  2025-03-01  Publisher  match  1        0.1      0\n",
		"  hidden_column  1         a hidden column",
		"  optout  Brand Co  1         3\n",
		"  r_1      optout  Brand Co  2025-03-01 09:30 UTC  under a second\n",
		"Exposure (epsilon 3.2, delta 2e-06):\n",
		"  Everything both partners spent over the collaboration's life, matches\n",
		"ε = 3.2: moderate protection",
		"1 in 500,000 (δ).\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("the report lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"p_b", "p_p", `\u003c`, `"name"`, "{"} {
		if strings.Contains(out, s) {
			t.Errorf("the report shows %q:\n%s", s, out)
		}
	}
}

func TestPrintPrivacyReport(t *testing.T) {
	med, capEps := int64(0), 5.0
	r := wire.PrivacyReport{PartnerID: "p_b", PartnerName: "Brand Co",
		Since: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		Collaborations: []wire.PrivacyCollaboration{{Name: "spring", PartnerName: "Publisher", Purpose: "measurement", State: "active",
			Noise: wire.NoiseLaplace, EpsilonSpent: 3.2, DeltaSpent: 2e-6, Queries: 3, Matches: 1},
			{Name: "autumn", PartnerName: "Publisher", Purpose: "measurement", State: "active", Noise: wire.NoiseLaplace, EpsilonSpent: 1.2}},
		TotalEpsilonSpent: 4.4, TotalDeltaSpent: 2e-6,
		ExposureCap:     wire.ExposureCap{Epsilon: &capEps, Refresh: wire.RefreshMonthly, EpsilonSpent: 1.5},
		OptOutsHonoured: 1, DeletionsHonoured: 1, IdentifiersSubmitted: 5, MedianSecondsToHonour: &med,
		About: wire.ReportSettings{Introduction: "We sell shoes.\nWrite to us.", OptOutURL: "https://brand.example/opt-out", PrivacyContact: "privacy@brand.example"},
	}
	var b bytes.Buffer
	if err := printPrivacyReport(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		"Brand Co: how your data was used\nA report for the people in Brand Co's data, from 1 March 2024 to 28 February 2025.\n",
		"We sell shoes.\n\n  Write to us.\n",
		"  Brand Co's data was sent to 2 collaborations in this period.",
		"  - \"spring\" with Publisher, for the purpose measurement: 3 answers and 1\n    match in the period (ongoing).\n",
		"  0 identifiers (email addresses, phone numbers) reached the clean room in the\n",
		"  - \"spring\" so far: ε = 3.2: moderate protection",
		"Opt-outs honoured:                            1\n",
		"Median time to honour one:                    under a second\n",
		"Each of the 2 requests got a signed receipt; 5 people were named in them.\n",
		"Your choices\n  To opt out: https://brand.example/opt-out\n  Questions about privacy: privacy@brand.example\n",
		// Someone in both collaborations: the total, and the cap on it.
		"exposed to epsilon 4.4 in total.",
		"Brand Co caps it at epsilon 5 in each calendar month (UTC)",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("the privacy report lacks %q:\n%s", s, out)
		}
	}
	// Nothing of the old arithmetic: no power of e, no exponent form.
	for _, s := range []string{"e^", "factor", "e-06", "×10"} {
		if strings.Contains(out, s) {
			t.Errorf("the privacy report says %q:\n%s", s, out)
		}
	}
	// The words are the server's when it sends them.
	report.PrivacyWords(&r)
	r.Words.Uses = "As the server says."
	b.Reset()
	if err := printPrivacyReport(&b, r); err != nil || !strings.Contains(b.String(), "  As the server says.\n") {
		t.Errorf("the printed report does not show the server's words: %v\n%s", err, b.String())
	}
}

// Two keys labelled alike print as the report names them, apart; the
// time a deletion took prints as the report words it.
func TestPrintReportNamesKeysApart(t *testing.T) {
	rep := wire.Report{Collaboration: wire.Collaboration{ID: "c_1", Name: "spring", Proposer: "p_b", ProposerName: "Brand Co"},
		QueriesByAnalyst: []wire.AnalystQueries{
			{AnalystKey: "k_1abcd", AnalystLabel: "demo", AnalystName: "demo (analyst, key …abcd)", PartnerID: "p_b", Queries: 2, Epsilon: 1},
			{AnalystKey: "k_2wxyz", AnalystLabel: "demo", AnalystName: "demo (analyst, key …wxyz)", PartnerID: "p_b", Queries: 1, Epsilon: 0.5}},
		Deletions: []wire.DeletionReceipts{{Kind: wire.DeleteOptOut, PartnerID: "p_b", Receipts: 1}},
		Honoured:  []wire.HonouredDeletion{{ReceiptID: "r_1", Kind: wire.DeleteOptOut, PartnerID: "p_b", Seconds: 200, Took: "3 minutes"}},
	}
	var b bytes.Buffer
	if err := printReport(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"demo (analyst, key …abcd)  Brand Co  2", "demo (analyst, key …wxyz)  Brand Co  1", "3 minutes\n"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("the report lacks %q:\n%s", s, b.String())
		}
	}
}
