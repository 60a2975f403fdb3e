package dp

import "testing"

func TestReleaseDeltaIsTheCharge(t *testing.T) {
	groups := []Group{{Key: []any{"a"}, Users: 1000, Sums: []float64{0, 5000}}}
	for _, grouped := range []bool{false, true} {
		for _, gaussian := range []bool{false, true} {
			o := ReleaseOptions{Epsilon: 1, Delta: 7e-6, Grouped: grouped, Gaussian: gaussian, MaxGroups: 1,
				Aggs: []Agg{{Func: "count"}, {Func: "sum", Lower: 0, Upper: 10}}}
			rel, err := ReleaseGroups(groups, o)
			if err != nil {
				t.Fatal(err)
			}
			want := 0.0
			if grouped || gaussian {
				want = 7e-6
			}
			if rel.Delta != want || o.DeltaCost() != want || rel.Epsilon != 1 {
				t.Errorf("grouped=%v gaussian=%v: released delta %v, cost %v, want %v", grouped, gaussian, rel.Delta, o.DeltaCost(), want)
			}
		}
	}
}

func TestReleaseRefusesParametersWithoutData(t *testing.T) {
	for _, eps := range []float64{1e-17, 1e-300} {
		o := ReleaseOptions{Epsilon: eps, Delta: 1e-5, Grouped: true, MaxGroups: 1, Aggs: []Agg{{Func: "count"}}}
		for _, groups := range [][]Group{nil, {{Key: []any{"a"}, Users: 3}}} {
			if _, err := ReleaseGroups(groups, o); err == nil {
				t.Errorf("epsilon %v with %d groups: released", eps, len(groups))
			}
		}
	}
}
