package dp

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"
)

// noNoise is the library's Laplace noise without the noise, so that two
// ways of building the same aggregation give the same result.
type noNoise struct{ noise.Noise }

func (noNoise) AddNoiseInt64(x, _, _ int64, _, _ float64) (int64, error) { return x, nil }
func (noNoise) AddNoiseFloat64(x float64, _ int64, _, _, _ float64) (float64, error) {
	return x, nil
}

// TestSpreadIsTheLibrarysAggregation: a distribution released from a
// Spread (leaves and sums counted where the values are) is the one the
// library gives when each value is added to it, noise aside.
func TestSpreadIsTheLibrarysAggregation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 5000)
	for i := range vals {
		vals[i] = math.Round(r.ExpFloat64()*40*100) / 100 // spend, some above the bound
	}
	vals = append(vals, -3, 500, 0, 250, math.NaN())
	nz := noNoise{noise.Laplace()}
	for _, rank := range []float64{0.1, 0.5, 0.9} {
		a := Agg{Func: "quantile", Lower: 0, Upper: 250, Rank: rank}
		q, err := dpagg.NewBoundedQuantiles(&dpagg.BoundedQuantilesOptions{Epsilon: 1, MaxPartitionsContributed: 2,
			MaxContributionsPerPartition: 1, Lower: a.Lower, Upper: a.Upper, Noise: nz, TreeHeight: treeHeight})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if err := q.Add(v); err != nil {
				t.Fatal(err)
			}
		}
		want, err := q.Result(rank)
		if err != nil {
			t.Fatal(err)
		}
		got, err := distribution(nz, a, spreadOf(a, vals), 2, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("quantile %v from a spread %v, from the values %v", rank, got, want)
		}
	}
	for _, f := range []string{"variance", "stddev"} {
		a := Agg{Func: f, Lower: 0, Upper: 250}
		bv, err := dpagg.NewBoundedVariance(&dpagg.BoundedVarianceOptions{Epsilon: 1, MaxPartitionsContributed: 2,
			MaxContributionsPerPartition: 1, Lower: a.Lower, Upper: a.Upper, Noise: nz})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if err := bv.Add(v); err != nil {
				t.Fatal(err)
			}
		}
		want, err := bv.Result()
		if err != nil {
			t.Fatal(err)
		}
		if f == "stddev" {
			want = math.Sqrt(want)
		}
		got, err := distribution(nz, a, spreadOf(a, vals), 2, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-9*math.Abs(want) {
			t.Errorf("%s from a spread %v, from the values %v", f, got, want)
		}
	}
	// The leaves are the library's: a value on a leaf's edge, the upper
	// bound, and the last value below it.
	for _, c := range []struct {
		v    float64
		leaf int
	}{{0, 0}, {250, QuantileLeaves - 1}, {250.0 / QuantileLeaves, 1}, {math.Nextafter(250, 0), QuantileLeaves - 1}} {
		if got := QuantileLeaf(c.v, 0, 250); got != c.leaf {
			t.Errorf("QuantileLeaf(%v) = %d, want %d", c.v, got, c.leaf)
		}
	}
	// A leaf outside the tree is refused, not counted.
	if _, err := distribution(nz, Agg{Func: "quantile", Lower: 0, Upper: 1, Rank: 0.5}, Spread{Leaves: map[int]int64{QuantileLeaves: 1}}, 1, 1, 0); err == nil {
		t.Error("a leaf outside the tree was accepted")
	}
}
