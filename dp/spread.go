package dp

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"
)

// The quantile tree's shape, fixed so that a caller can place values in
// its leaves (QuantileLeaf) where they are. The library's default height
// is 4 (65,536 leaves); at 3, each user touches three counts instead of
// four, so every count's noise is three quarters of the default's, and a
// quantile resolves to a 4,096th of the bounds' range (0.05 on [0, 200]),
// interpolated within its leaf. Counting 4,096 leaves costs the database
// what its own median costs; 65,536 cost half as much again.
const (
	treeHeight      = 3
	branchingFactor = 16
	// QuantileLeaves is how many leaves the quantile tree has: the
	// bounds' range is cut into this many equal intervals.
	QuantileLeaves = 4096 // branchingFactor^treeHeight
)

// Spread is one group's users' values for an aggregate released from its
// distribution, held as the DP library's own aggregations hold them: a
// quantile's tree leaves, a variance's count and centred sums. A caller
// that counts leaves and sums where the values are (in the database)
// passes a Spread instead of the values; the release is the same.
type Spread struct {
	// Leaves counts users by the leaf of the quantile tree their
	// clamped value falls in (QuantileLeaf); for quantiles.
	Leaves map[int]int64
	// N is how many users gave a value; Sum and SumSquares are the sums
	// of (v - mid) and (v - mid)^2 over their clamped values v, mid being
	// the bounds' midpoint (Midpoint); for variance and stddev.
	N               int64
	Sum, SumSquares float64
}

// QuantileLeaf is the leaf of the quantile tree a value clamped to
// [lower, upper] falls in, from 0 to QuantileLeaves-1: the library's own
// placement, (v-lower)/(upper-lower)*QuantileLeaves rounded down.
func QuantileLeaf(v, lower, upper float64) int {
	if v >= upper {
		return QuantileLeaves - 1
	}
	return int((v - lower) / (upper - lower) * QuantileLeaves)
}

// Midpoint is the centre a variance's sums are taken about, as the
// library computes it.
func Midpoint(lower, upper float64) float64 { return lower + (upper-lower)/2 }

// spreadOf summarises users' values as a Spread for aggregate a.
func spreadOf(a Agg, vals []float64) Spread {
	var s Spread
	if a.Func == "quantile" {
		s.Leaves = map[int]int64{}
	}
	mid := Midpoint(a.Lower, a.Upper)
	for _, v := range vals {
		if math.IsNaN(v) {
			continue // the library skips NaN
		}
		v = math.Min(math.Max(v, a.Lower), a.Upper)
		if s.Leaves != nil {
			s.Leaves[QuantileLeaf(v, a.Lower, a.Upper)]++
		}
		s.N++
		s.Sum += v - mid
		s.SumSquares += (v - mid) * (v - mid)
	}
	return s
}

// encodedQuantiles and encodedSum mirror the fields of the library's
// serialised BoundedQuantiles and BoundedSumFloat64 (gob matches fields
// by name): its way to carry a partial aggregation computed elsewhere,
// which is what a Spread is. The sensitivities and parameters come from
// the library's own constructor and are written back unchanged.
type encodedQuantiles struct {
	Epsilon, Delta               float64
	L0Sensitivity                int64
	LInfSensitivity              float64
	TreeHeight, BranchingFactor  int
	Lower, Upper                 float64
	NumLeaves, LeftmostLeafIndex int
	NoiseKind                    noise.Kind
	QuantileTree                 map[int]int64
}

type encodedSum struct {
	Epsilon, Delta                float64
	L0Sensitivity                 int64
	LInfSensitivity, Lower, Upper float64
	NoiseKind                     noise.Kind
	Sum                           float64
}

// refill round-trips a library aggregation through its gob form, letting
// fill change the state between.
func refill[T any](enc interface{ GobEncode() ([]byte, error) }, dec interface{ GobDecode([]byte) error }, fill func(*T) error) error {
	b, err := enc.GobEncode()
	if err != nil {
		return err
	}
	var t T
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&t); err != nil {
		return err
	}
	if err := fill(&t); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(t); err != nil {
		return err
	}
	return dec.GobDecode(buf.Bytes())
}

// fillQuantiles gives q the tree that adding one value to each leaf of s
// as many times as s counts would give: each leaf and its ancestors up to
// (not including) the root, as BoundedQuantiles.Add counts them.
func fillQuantiles(q *dpagg.BoundedQuantiles, nz noise.Noise, s Spread) error {
	err := refill(q, q, func(t *encodedQuantiles) error {
		if t.NumLeaves != QuantileLeaves || t.BranchingFactor != branchingFactor {
			return fmt.Errorf("quantile tree of %d leaves, branching %d: want %d, %d", t.NumLeaves, t.BranchingFactor, QuantileLeaves, branchingFactor)
		}
		t.QuantileTree = make(map[int]int64, 2*len(s.Leaves))
		for leaf, n := range s.Leaves {
			if leaf < 0 || leaf >= QuantileLeaves || n < 0 {
				return fmt.Errorf("quantile leaf %d with %d users is outside the tree", leaf, n)
			}
			for i := t.LeftmostLeafIndex + leaf; i != 0; i = (i - 1) / branchingFactor {
				t.QuantileTree[i] += n
			}
		}
		return nil
	})
	q.Noise = nz // decoding restores the noise by kind; keep the caller's
	return err
}

// fillSum sets a bounded sum's total; each user's term is within its
// bounds (the values were clamped), as Add would have checked.
func fillSum(b *dpagg.BoundedSumFloat64, nz noise.Noise, sum float64) error {
	err := refill(b, b, func(t *encodedSum) error { t.Sum = sum; return nil })
	b.Noise = nz
	return err
}
