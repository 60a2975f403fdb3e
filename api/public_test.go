package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// TestPublicGroupsReleaseEveryDeclaredGroup: a GROUP BY over dimensions
// the rules declare public releases every declared group, in declared
// order, empty ones as noisy zeros, spends no delta and drops nothing
// below min_group_users; values outside the list are not released; a
// question also grouped by a dimension that is not public selects
// partitions and spends delta as before.
func TestPublicGroupsReleaseEveryDeclaredGroup(t *testing.T) {
	e := newEnv(t, `{"purpose": "measurement", "min_upload_users": 1000, "min_group_users": 10,
		"dimensions": ["brand_co_label", "publisher_label"], "metrics": {"brand_co_value": [0, 50]},
		"public_groups": {"brand_co_label": {"values": ["region2", "region0", "nowhere"]}}}`)
	e.uploadBoth()
	e.matchBoth()
	key := e.brand.analyst.Key
	st, body, _ := e.ask(key, `SELECT brand_co_label, COUNT(*) AS people, SUM(brand_co_value) FROM cohort GROUP BY brand_co_label`, 0.5, "")
	if st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	var a wire.Answer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range a.Rows {
		keys = append(keys, r[0].(string))
	}
	if strings.Join(keys, ",") != "region2,region0,nowhere" {
		t.Errorf("released groups %v, want every declared one in declared order", keys)
	}
	if a.Delta != 0 || a.DeltaRemaining != 1e-5 || a.EpsilonSplit["selection"] != 0 {
		t.Errorf("a public grouping spent delta %v (left %v), split %v", a.Delta, a.DeltaRemaining, a.EpsilonSplit)
	}
	// The empty group is a noisy zero, not dropped for min_group_users.
	if n := a.Rows[2][1].(float64); n > 40 || n < -40 {
		t.Errorf("the empty group's count %v", n)
	}
	// A non-public dimension in the grouping: partition selection, delta.
	st, body, _ = e.ask(key, `SELECT brand_co_label, publisher_label, COUNT(*) FROM cohort GROUP BY brand_co_label, publisher_label`, 0.5, "")
	json.Unmarshal(body, &a)
	if st != 200 || a.Delta != 1e-7 || a.EpsilonSplit["selection"] == 0 {
		t.Errorf("grouped also by a dimension that is not public: %d delta %v split %v", st, a.Delta, a.EpsilonSplit)
	}
}
