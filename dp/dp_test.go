package dp

import (
	"math"
	"testing"
)

func TestReleaseGroupsThresholdsAndSelection(t *testing.T) {
	groups := []Group{
		{Key: []any{"big"}, Users: 100000, Sums: []float64{0, 500000}},
		{Key: []any{"tiny"}, Users: 1, Sums: []float64{0, 5}},
	}
	o := ReleaseOptions{Epsilon: 1, Delta: 1e-6, Grouped: true, MaxGroups: 1, MinGroupUsers: 50,
		Aggs: []Agg{{Func: "count"}, {Func: "avg", Lower: 0, Upper: 10}}}
	for _, gaussian := range []bool{false, true} {
		o.Gaussian = gaussian
		// A 95% interval misses the truth one release in twenty: count
		// the misses over many releases rather than fail on one.
		var rel Release
		misses := 0
		const runs = 400
		for range runs {
			var err error
			if rel, err = ReleaseGroups(groups, o); err != nil {
				t.Fatal(err)
			}
			if len(rel.Rows) != 1 || rel.Rows[0].Key[0] != "big" {
				t.Fatalf("gaussian=%v: released %v, want only the big group", gaussian, rel.Rows)
			}
			c, avg := rel.Rows[0].Values[0], rel.Rows[0].Values[1]
			if math.Abs(c.Value-100000) > 200 || !(c.Lower <= c.Value && c.Value <= c.Upper) {
				t.Fatalf("count %+v", c)
			}
			if math.Abs(avg.Value-5) > 0.1 {
				t.Fatalf("avg %+v, want about 5", avg)
			}
			if avg.Lower > 5 || avg.Upper < 5 {
				misses++
			}
		}
		if misses > runs/10 {
			t.Errorf("gaussian=%v: the average's 95%% interval missed the truth in %d of %d releases", gaussian, misses, runs)
		}
		if rel.Epsilon != 1 || math.Abs(rel.Split["selection"]+rel.Split["count"]+rel.Split["avg_1"]-1) > 1e-12 {
			t.Errorf("split %v does not add up to epsilon 1", rel.Split)
		}
	}
	// Ungrouped: one fixed row, released even when small (only the noisy
	// count decides), dropped when its noisy count is under the minimum.
	o = ReleaseOptions{Epsilon: 1, MaxGroups: 1, MinGroupUsers: -1000, Aggs: []Agg{{Func: "count"}}}
	rel, err := ReleaseGroups([]Group{{Users: 0, Sums: []float64{0}}}, o)
	if err != nil || len(rel.Rows) != 1 {
		t.Errorf("ungrouped zero users: %v %v", rel.Rows, err)
	}
	if _, err := ReleaseGroups(nil, ReleaseOptions{Epsilon: 0, MaxGroups: 1}); err == nil {
		t.Error("epsilon 0 accepted")
	}
}

// TestPublicGroupsReleaseEveryGroup: declared groups are all released,
// empty ones as noisy zeros, with no selection, no threshold and no
// delta spent.
func TestPublicGroupsReleaseEveryGroup(t *testing.T) {
	groups := []Group{{Key: []any{"north"}, Users: 5000}, {Key: []any{"south"}, Users: 0}, {Key: []any{"east"}, Users: 3}}
	o := ReleaseOptions{Epsilon: 1, Delta: 1e-7, Public: true, MaxGroups: 1, MinGroupUsers: 50, Aggs: []Agg{{Func: "count"}}}
	if o.DeltaCost() != 0 {
		t.Errorf("a public release costs delta %v", o.DeltaCost())
	}
	rel, err := ReleaseGroups(groups, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Rows) != 3 || rel.Delta != 0 || rel.Split["selection"] != 0 || rel.Split["count"] != 1 {
		t.Fatalf("release %+v", rel)
	}
	if v := rel.Rows[1].Values[0].Value; math.Abs(v) > 30 {
		t.Errorf("the empty group's count %v is not a noisy zero", v)
	}
	if _, err := ReleaseGroups(groups, ReleaseOptions{Epsilon: 1, Delta: 1e-7, Public: true, Grouped: true, MaxGroups: 1}); err == nil {
		t.Error("a release both public and selected was accepted")
	}
}

// TestExpectMatchesTheRelease: the expected half-widths are those of the
// intervals a release states, and shrink as epsilon grows; the cost and
// split are the release's.
func TestExpectMatchesTheRelease(t *testing.T) {
	o := ReleaseOptions{Epsilon: 0.6, Delta: 1e-7, Grouped: true, MaxGroups: 1,
		Aggs: []Agg{{Func: "count"}, {Func: "sum", Lower: 0, Upper: 50}, {Func: "avg", Lower: 0, Upper: 50}}}
	x, err := Expect(o, 1000)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := ReleaseGroups([]Group{{Key: []any{"a"}, Users: 100000, Sums: []float64{0, 2e6, 2e6}}}, o)
	if err != nil || len(rel.Rows) != 1 {
		t.Fatal(rel, err)
	}
	for i := range 2 {
		v := rel.Rows[0].Values[i]
		// A count's interval is stated in whole people.
		tol := map[int]float64{0: 1, 1: 1e-9 * x.HalfWidths[1]}[i]
		if got := (v.Upper - v.Lower) / 2; math.Abs(got-x.HalfWidths[i]) > tol {
			t.Errorf("aggregate %d: expected half-width %v, the release states %v", i, x.HalfWidths[i], got)
		}
	}
	if x.Epsilon != rel.Epsilon || x.Delta != rel.Delta || len(x.Split) != len(rel.Split) || x.HalfWidths[2] <= 0 {
		t.Errorf("expectation %+v, release spent %v %v %v", x, rel.Epsilon, rel.Delta, rel.Split)
	}
	o.Epsilon *= 2
	y, err := Expect(o, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(y.HalfWidths[0]*2-x.HalfWidths[0]) > 1e-9 {
		t.Errorf("doubling epsilon: count half-width %v -> %v, want half", x.HalfWidths[0], y.HalfWidths[0])
	}
}

// TestSplitWeighsWhatWasAsked: the people count takes a full share when
// the answer holds it, half when it only serves min_group_users, none in
// a public release without it; the shares add up to the epsilon.
func TestSplitWeighsWhatWasAsked(t *testing.T) {
	sum := []Agg{{Func: "sum", Lower: 0, Upper: 10}}
	for _, c := range []struct {
		name string
		o    ReleaseOptions
		want map[string]float64
	}{
		{"grouped count and sum", ReleaseOptions{Epsilon: 1.5, Delta: 1e-7, Grouped: true, Aggs: append([]Agg{{Func: "count"}}, sum...)},
			map[string]float64{"selection": 0.5, "count": 0.5, "sum_1": 0.5}},
		{"grouped sum", ReleaseOptions{Epsilon: 1.25, Delta: 1e-7, Grouped: true, Aggs: sum},
			map[string]float64{"selection": 0.5, "count": 0.25, "sum_0": 0.5}},
		{"public sum", ReleaseOptions{Epsilon: 1, Public: true, Aggs: sum}, map[string]float64{"sum_0": 1}},
		{"public count", ReleaseOptions{Epsilon: 1, Public: true, Aggs: []Agg{{Func: "count"}}}, map[string]float64{"count": 1}},
	} {
		c.o.MaxGroups = 1
		rel, err := ReleaseGroups([]Group{{Key: []any{"a"}, Users: 1000, Sums: []float64{0, 5000}}}, c.o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		total := 0.0
		for k, v := range rel.Split {
			total += v
			if math.Abs(v-c.want[k]) > 1e-12 {
				t.Errorf("%s: %s share %v, want %v (split %v)", c.name, k, v, c.want[k], rel.Split)
			}
		}
		if len(rel.Split) != len(c.want) || math.Abs(total-c.o.Epsilon) > 1e-12 {
			t.Errorf("%s: split %v, want %v adding up to %v", c.name, rel.Split, c.want, c.o.Epsilon)
		}
	}
}

// TestIntervalsCoverTheTruth: at the default query epsilon (0.09), the
// stated 95% intervals of a count, a sum and an average cover the truth
// in 92-98% of repeated releases.
func TestIntervalsCoverTheTruth(t *testing.T) {
	groups := []Group{{Key: []any{"a"}, Users: 800, Sums: []float64{0, 800 * 12.5, 800 * 12.5}}}
	o := ReleaseOptions{Epsilon: 0.09, MaxGroups: 1, Aggs: []Agg{{Func: "count"}, {Func: "sum", Lower: 0, Upper: 25}, {Func: "avg", Lower: 0, Upper: 25}}}
	truth := []float64{800, 800 * 12.5, 12.5}
	const runs = 2000
	covered := make([]int, 3)
	for range runs {
		rel, err := ReleaseGroups(groups, o)
		if err != nil || len(rel.Rows) != 1 {
			t.Fatal(rel, err)
		}
		for i, v := range rel.Rows[0].Values {
			if v.Lower <= truth[i] && truth[i] <= v.Upper {
				covered[i]++
			}
		}
	}
	for i, name := range []string{"count", "sum", "avg"} {
		// The average's interval combines two 97.5% ones: at least 95%.
		hi := 0.98
		if name == "avg" {
			hi = 1
		}
		if r := float64(covered[i]) / runs; r < 0.92 || r > hi {
			t.Errorf("%s: the 95%% interval covered the truth in %.1f%% of %d releases", name, 100*r, runs)
		}
	}
}
