package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
)

// Every answer read is logged, cached ones too: an auditor counts as many
// reads as happened. A cached answer's entry (query.cached) charges
// nothing and holds nothing of the answer: its hash, like its rows, is a
// DP output the first release already logged.
func TestCachedAnswersAreLogged(t *testing.T) {
	e := newQueryEnv(t)
	const q = `SELECT brand_co_label, COUNT(*) AS people FROM cohort GROUP BY brand_co_label`
	eps0, delta0 := e.ledger(e.brand.id)
	for i := range 3 {
		st, body, _ := e.ask(e.brand.analyst.Key, q, 0.5, "")
		if st != 200 {
			t.Fatalf("query %d: %d %s", i, st, body)
		}
		var a struct{ Cached bool }
		json.Unmarshal(body, &a)
		if a.Cached != (i > 0) {
			t.Errorf("query %d: cached %v", i, a.Cached)
		}
	}
	// One grouped charge: epsilon 0.5, and the default rule delta (1e-7).
	if eps, delta := e.ledger(e.brand.id); eps-eps0 != 500000 || delta-delta0 != 100000 {
		t.Errorf("the three reads charged %d epsilon units and %d delta units, want one charge (500000, 100000)", eps-eps0, delta-delta0)
	}

	// Both partners' auditors read the same entries for the reads.
	for _, auditor := range []struct {
		name string
		p    party
	}{{"brand", e.brand}, {"publisher", e.pub}} {
		raw, err := auditor.p.audit.AuditLog(context.Background(), url.Values{"collab": {e.collab}})
		if err != nil {
			t.Fatal(err)
		}
		var log struct {
			Entries []struct {
				Action    string
				PartnerID string `json:"partner_id"`
				Details   map[string]any
			}
		}
		if err := json.Unmarshal(raw, &log); err != nil {
			t.Fatal(err)
		}
		var run map[string]any
		var cached []map[string]any
		for _, en := range log.Entries {
			switch en.Action {
			case "query.run":
				run = en.Details
			case "query.cached":
				if en.PartnerID != e.brand.id {
					t.Errorf("%s: a cached read logged for partner %s", auditor.name, en.PartnerID)
				}
				cached = append(cached, en.Details)
			}
		}
		if run == nil || len(cached) != 2 {
			t.Fatalf("%s reads %d query.cached entries (and query.run: %v), want 2", auditor.name, len(cached), run != nil)
		}
		for _, d := range cached {
			keys := make([]string, 0, len(d))
			for k := range d {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"charged", "cohort_version", "epsilon", "plan_hash", "sql"}; !slices.Equal(keys, want) {
				t.Errorf("%s: cached entry has %q, want %q (nothing of the answer)", auditor.name, keys, want)
			}
			for _, k := range []string{"plan_hash", "cohort_version", "epsilon", "sql"} {
				if d[k] != run[k] {
					t.Errorf("%s: cached entry's %s %v, the released one's %v", auditor.name, k, d[k], run[k])
				}
			}
			if d["charged"] != false {
				t.Errorf("%s: cached entry charged %v", auditor.name, d["charged"])
			}
		}
	}
}
