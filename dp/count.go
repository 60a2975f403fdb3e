package dp

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
)

// CountOptions say how to release one count.
type CountOptions struct {
	// Epsilon is what the release spends; positive and finite.
	Epsilon float64
	// Sensitivity is the most that adding or removing one person can
	// change the count: 1 for a count of distinct people. At least 1.
	Sensitivity int64
}

// NoisyCount releases count with Laplace noise of scale
// Sensitivity/Epsilon, rounded to an integer and floored at 0 (a count is
// never negative; flooring is post-processing and costs nothing).
//
// Privacy: the result is (Epsilon, 0)-differentially private (pure
// epsilon, no delta) with respect to adding or removing one person,
// provided one person changes count by at most Sensitivity. The caller
// charges Epsilon to every party that reads the result.
func NoisyCount(count int64, o CountOptions) (int64, error) {
	if !(o.Epsilon > 0) || math.IsInf(o.Epsilon, 0) {
		return 0, fmt.Errorf("dp.NoisyCount: epsilon must be positive and finite, got %v", o.Epsilon)
	}
	if o.Sensitivity < 1 {
		return 0, fmt.Errorf("dp.NoisyCount: sensitivity must be at least 1, got %d", o.Sensitivity)
	}
	// One partition (l0 = 1) whose count one person moves by at most
	// Sensitivity (lInf); Laplace noise needs no delta.
	n, err := noise.Laplace().AddNoiseInt64(count, 1, o.Sensitivity, o.Epsilon, 0)
	if err != nil {
		return 0, fmt.Errorf("dp.NoisyCount: %w", err)
	}
	return max(n, 0), nil
}
