package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/wire"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"Brand Co":          "Brand Co",
		"Café Zoë":          "Café Zoë",
		"":                  "",
		"a\tb":              `"a\tb"`,
		"red\x1b[31mnow":    `"red\x1b[31mnow"`,
		"two\nlines":        `"two\nlines"`,
		"bad \xff byte":     `"bad \xff byte"`,
		"bidi \u202e ecaps": `"bidi \u202e ecaps"`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %s, want %s", in, got, want)
		}
	}
}

// printTables shows every declared table, uploaded or not, with its
// columns' roles; sizes only where the server gave them; and anything
// the server sent escaped.
func TestPrintTables(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	rules, err := wire.ParseRules([]byte(`{"tables": [
		{"party": "proposer", "name": "customers", "columns": [{"name": "region", "role": "dimension"}]},
		{"party": "proposer", "name": "purchases", "columns": [{"name": "amount", "role": "metric", "bounds": [0, 500]}, {"name": "day", "role": "time"}]},
		{"party": "partner", "name": "exposures", "columns": [{"name": "campaign", "role": "dimension"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	co := wire.Collaboration{ID: "c_1", Name: "spring\x1b[2J", Proposer: "p_b", Partner: "p_p", ProposerName: "Brand Co", PartnerName: "Pub\nlisher",
		State: wire.StateActive, RulesVersion: 2, Rules: rules}
	cols := func(s string) json.RawMessage { return json.RawMessage(s) }
	list := wire.AudienceList{Tables: map[string][]wire.Audience{
		"p_b": {
			{ID: "a_1", PartnerID: "p_b", Table: "customers", Rows: 12, People: 12, PeopleMatchable: 11, ContentSHA256: "ab", CreatedAt: at,
				Columns: cols(`[{"name":"pid","type":"fixed_size_binary[32]"},{"name":"region","type":"utf8"}]`)},
			{ID: "a_2", PartnerID: "p_b", Table: "purchases", Rows: 40, People: 12, PeopleMatchable: 11, ContentSHA256: "cd", CreatedAt: at,
				Columns: cols(`[{"name":"pid","type":"fixed_size_binary[32]"},{"name":"amount","type":"double"},{"name":"day","type":"date32"}]`)},
		},
		"p_p": {{ID: "a_3", PartnerID: "p_p", Table: "exposures", CreatedAt: at, Columns: cols(`[{"name":"pid","type":"fixed_size_binary[32]"},{"name":"campaign","type":"utf8"}]`)}},
	}}
	var b bytes.Buffer
	if err := printTables(&b, co, list); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		"Tables of collaboration \"spring\\x1b[2J\" (c_1), rules v2, active\n",
		"\nBrand Co (proposer)\n  customers: audience a_1, uploaded 2025-03-01 09:30 UTC; 12 rows, 12 people, 11 who can match\n",
		"    region  string                 dimension\n",
		"  purchases: audience a_2, uploaded 2025-03-01 09:30 UTC; 40 rows, 12 people, 11 who can match\n",
		"    amount  double                 metric [0, 500]\n",
		"    day     date                   time\n",
		"\n\"Pub\\nlisher\" (partner)\n  exposures: audience a_3, uploaded 2025-03-01 09:30 UTC; its sizes are \"Pub\\nlisher\"'s own\n",
		"    campaign  string                 dimension\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("the tables lack %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "declare no tables") {
		t.Errorf("the tables print a raw escape or the note for undeclared tables:\n%s", out)
	}

	// Not uploaded yet: the declared columns, without types.
	b.Reset()
	delete(list.Tables, "p_p")
	if err := printTables(&b, co, list); err != nil {
		t.Fatal(err)
	}
	if s := "  exposures: declared, not uploaded yet\n    COLUMN    TYPE  ROLE\n    campaign  -     dimension\n"; !strings.Contains(b.String(), s) {
		t.Errorf("a declared table not uploaded: want %q in\n%s", s, b.String())
	}

	// While a change awaits approval, the roles are the rules' in force.
	pending := co
	pending.ApprovedRules = &rules
	pending.Rules = wire.Rules{}
	b.Reset()
	if err := printTables(&b, pending, list); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a change of the rules awaits approval", "    amount  double                 metric [0, 500]\n"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("with a change pending: want %q in\n%s", s, b.String())
		}
	}

	// Without declared tables: one table named audience, columns not
	// declared, and the rules' lists are what may be queried.
	co.Rules = wire.Rules{Dimensions: []string{"brand_co_region"}, Metrics: map[string][2]float64{"brand_co_spend": {0, 20}}}
	list = wire.AudienceList{Tables: map[string][]wire.Audience{"p_b": {{ID: "a_9", Table: "audience", Rows: 5, People: 5, PeopleMatchable: 5, CreatedAt: at,
		Columns: cols(`[{"name":"pid","type":"fixed_size_binary[32]"},{"name":"region","type":"utf8"}]`)}}}}
	b.Reset()
	if err := printTables(&b, co, list); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"  audience: audience a_9, uploaded 2025-03-01 09:30 UTC; 5 rows, 5 people, 5 who can match\n",
		"    region  string                 not declared\n",
		"\"Pub\\nlisher\" (partner)\n  no table uploaded yet\n",
		"The rules declare no tables: each party has one, named audience, and analysts may use the rules' dimensions (brand_co_region) and metrics (brand_co_spend [0, 20]).\n",
	} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("without declared tables: want %q in\n%s", s, b.String())
		}
	}
}

// The report's data held lists every table of a party, by name.
func TestPrintReportTables(t *testing.T) {
	at := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	purchases := wire.Audience{ID: "a_2", Table: "purchases", Rows: 40, People: 12, PeopleMatchable: 11, CreatedAt: at,
		Columns: json.RawMessage(`[{"name":"amount","type":"double"}]`)}
	rep := wire.Report{
		Collaboration: wire.Collaboration{ID: "c_1", Name: "spring", Proposer: "p_b", Partner: "p_p", ProposerName: "Brand Co", PartnerName: "Publisher"},
		DataHeld: []wire.HeldData{{PartnerID: "p_b", Audience: &purchases, Tables: []wire.Audience{
			{ID: "a_1", Table: "customers", Rows: 12, People: 12, PeopleMatchable: 11, CreatedAt: at, Columns: json.RawMessage(`[{"name":"region","type":"utf8"}]`)},
			purchases,
		}}},
	}
	var b bytes.Buffer
	if err := printReport(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"  Brand Co  table customers, audience a_1: 12 rows, 12 people, 11 who can match; uploaded 2025-03-01 09:30 UTC\n",
		"            columns: region (string)\n",
		"            table purchases, audience a_2: 40 rows, 12 people, 11 who can match; uploaded 2025-03-01 09:30 UTC\n",
		"            columns: amount (double)\n",
	} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("the report lacks %q:\n%s", s, b.String())
		}
	}
}
