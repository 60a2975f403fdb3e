package report

import (
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// Durations read in the unit a person would use: never "0 s".
func TestDuration(t *testing.T) {
	for s, want := range map[int64]string{0: "under a second", 1: "1 second", 59: "59 seconds", 60: "1 minute", 3599: "59 minutes",
		7200: "2 hours", 86400: "1 day", 3 * 86400: "3 days"} {
		if got := Duration(s); got != want {
			t.Errorf("Duration(%d) = %q, want %q", s, got, want)
		}
	}
}

// An epsilon is set against familiar figures, a delta said as "1 in N":
// no powers of e, no exponent form.
func TestExposure(t *testing.T) {
	for _, c := range []struct {
		eps, delta float64
		want       string
	}{
		{0, 0, "ε = 0: nothing has been released yet."},
		{0.5, 0, "ε = 0.5: strong protection"},
		{3.8, 1.3e-5, "ε = 3.8: moderate protection, within the range of published uses (Apple's daily figures run from 2 to 8); the bound holds but for a chance of 1 in 77,000 (δ)."},
		{12.345, 0, "ε = 12.35: weaker protection, at the high end"},
		{40, 1e-13, "than the best-known published uses (the US Census Bureau's 2020 redistricting data used 17.14); the bound holds but for a chance of under 1 in a trillion (δ)."},
		{0.001, 0, "ε = under 0.01: strong"},
	} {
		got := Exposure(c.eps, c.delta)
		if !strings.Contains(got, c.want) {
			t.Errorf("Exposure(%g, %g) = %q, want it to hold %q", c.eps, c.delta, got, c.want)
		}
		for _, bad := range []string{"e^", "×10", "e-"} {
			if strings.Contains(got, bad) {
				t.Errorf("Exposure(%g, %g) = %q says %q", c.eps, c.delta, got, bad)
			}
		}
	}
}

// Two keys labelled alike never read alike; a label of its own stays
// as it is.
func TestAnalystNames(t *testing.T) {
	qs := []wire.AnalystQueries{{AnalystKey: "k_1111abcd", AnalystLabel: "demo"}, {AnalystKey: "k_2222wxyz", AnalystLabel: "demo"},
		{AnalystKey: "k_3333", AnalystLabel: "alice"}, {AnalystKey: "k_4444", AnalystLabel: ""}}
	analystNames(qs, map[string]string{"k_1111abcd": "analyst", "k_2222wxyz": "analyst"})
	want := []string{"demo (analyst, key …abcd)", "demo (analyst, key …wxyz)", "alice", "key …4444"}
	for i, q := range qs {
		if q.AnalystName != want[i] {
			t.Errorf("key %s is named %q, want %q", q.AnalystKey, q.AnalystName, want[i])
		}
	}
	qs = []wire.AnalystQueries{{AnalystKey: "k_1abcd", AnalystLabel: "demo"}, {AnalystKey: "k_2abcd", AnalystLabel: "demo"}}
	analystNames(qs, nil)
	if qs[0].AnalystName != "demo (key k_1abcd)" || qs[1].AnalystName != "demo (key k_2abcd)" {
		t.Errorf("keys whose IDs end alike are named %q and %q", qs[0].AnalystName, qs[1].AnalystName)
	}
}
