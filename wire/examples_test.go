package wire

import (
	"os"
	"testing"
)

// TestExampleRulesParse: the measurement example in examples/ parses, and
// declare what the docs say they do.
func TestExampleRulesParse(t *testing.T) {
	b, err := os.ReadFile("../examples/measurement/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRules(b)
	if err != nil {
		t.Fatalf("examples/measurement/rules.json: %v", err)
	}
	want := map[string][]string{
		PartyProposer: {"customers", "purchases"},
		PartyPartner:  {"exposures"},
	}
	for party, names := range want {
		got := r.TablesOf(party)
		if len(got) != len(names) {
			t.Fatalf("the %s declares %d tables, want %v", party, len(got), names)
		}
		for i, n := range names {
			if got[i].Name != n {
				t.Errorf("the %s's table %d is %s, want %s", party, i+1, got[i].Name, n)
			}
		}
	}
	p, ok := r.Table(PartyProposer, "purchases")
	if !ok {
		t.Fatal("no purchases table")
	}
	for _, c := range p.Columns {
		if c.Name == "amount" && (c.Role != RoleMetric || c.Bounds == nil || *c.Bounds != [2]float64{0, 500}) {
			t.Errorf("amount is %s %v, want a metric in [0, 500]", c.Role, c.Bounds)
		}
	}
}
