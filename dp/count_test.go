package dp

import (
	"math"
	"testing"
)

// NoisyCount is Laplace noise of scale Sensitivity/Epsilon: over many
// draws far from 0 (where flooring changes nothing), the mean is the count
// and the mean absolute deviation is the scale.
func TestNoisyCountLaplace(t *testing.T) {
	const count, eps, n = 10000, 0.1, 20000
	var sum, dev float64
	for i := 0; i < n; i++ {
		v, err := NoisyCount(count, CountOptions{Epsilon: eps, Sensitivity: 1})
		if err != nil {
			t.Fatal(err)
		}
		sum += float64(v)
		dev += math.Abs(float64(v - count))
	}
	// Standard errors: sqrt(2)*10/sqrt(n) = 0.1 for the mean, 10/sqrt(n)
	// = 0.07 for the deviation; 6 of them.
	if mean := sum / n; math.Abs(mean-count) > 0.6 {
		t.Errorf("mean %v, want %v", mean, count)
	}
	if mad := dev / n; math.Abs(mad-1/eps) > 0.45 {
		t.Errorf("mean absolute deviation %v, want %v", mad, 1/eps)
	}
}

func TestNoisyCountFloorAndParameters(t *testing.T) {
	for i := 0; i < 1000; i++ {
		if v, err := NoisyCount(0, CountOptions{Epsilon: 0.1, Sensitivity: 1}); err != nil || v < 0 {
			t.Fatalf("NoisyCount(0) = %d, %v: want a count of at least 0", v, err)
		}
	}
	for _, o := range []CountOptions{{Epsilon: 0, Sensitivity: 1}, {Epsilon: math.Inf(1), Sensitivity: 1}, {Epsilon: math.NaN(), Sensitivity: 1}, {Epsilon: 1, Sensitivity: 0}} {
		if _, err := NoisyCount(5, o); err == nil {
			t.Errorf("NoisyCount with %+v: no error", o)
		}
	}
}
