package wire

import (
	"fmt"
	"math"
)

// The ledger counts epsilon and delta in whole units, so that sums are
// exact: ten charges of 0.1 make exactly 1, and a budget at 0 is 0.
const (
	// EpsilonUnit is the smallest epsilon the ledger counts (a micro-epsilon).
	EpsilonUnit = 1e-6
	// DeltaUnit is the smallest delta the ledger counts.
	DeltaUnit = 1e-12

	epsilonPerOne = 1e6  // units in an epsilon of 1; exact as a float64
	deltaPerOne   = 1e12 // units in a delta of 1; exact as a float64

	// maxUnits keeps every count of units an exact float64 integer.
	maxUnits = 1 << 53
)

// EpsilonUnits returns eps as a whole number of EpsilonUnit, or an error
// when it is negative, not finite or not a whole number of units. Float
// representation error is tolerated: 0.1 is exactly 100000 units.
func EpsilonUnits(eps float64) (int64, error) {
	return toUnits("epsilon", eps, epsilonPerOne, EpsilonUnit)
}

// DeltaUnits returns delta as a whole number of DeltaUnit, or an error as
// EpsilonUnits does.
func DeltaUnits(delta float64) (int64, error) {
	return toUnits("delta", delta, deltaPerOne, DeltaUnit)
}

// EpsilonOf returns the epsilon of u units: the float64 nearest to the
// exact decimal, so 1200000 units print as 1.2.
func EpsilonOf(u int64) float64 { return float64(u) / epsilonPerOne }

// DeltaOf returns the delta of u units, as EpsilonOf does.
func DeltaOf(u int64) float64 { return float64(u) / deltaPerOne }

// toUnits converts x to units. A float64 x is a whole number u of units
// exactly when x is the float64 nearest to u/perOne (division is
// correctly rounded, and perOne is exact); u can only be round(x*perOne).
func toUnits(name string, x, perOne, unit float64) (int64, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0, fmt.Errorf("%s %v must be finite and not negative", name, x)
	}
	u := math.Round(x * perOne)
	if u > maxUnits {
		return 0, fmt.Errorf("%s %v is too large (at most %v)", name, x, maxUnits/perOne)
	}
	if u/perOne != x {
		return 0, fmt.Errorf("%s %v is not a whole number of units of %v", name, x, unit)
	}
	return int64(u), nil
}

// Amount is an epsilon and a delta, in units.
type Amount struct {
	EpsilonUnits int64
	DeltaUnits   int64
}

// Epsilon returns the amount's epsilon.
func (a Amount) Epsilon() float64 { return EpsilonOf(a.EpsilonUnits) }

// Delta returns the amount's delta.
func (a Amount) Delta() float64 { return DeltaOf(a.DeltaUnits) }

// Sub returns a - b, each part at least 0.
func (a Amount) Sub(b Amount) Amount {
	return Amount{max(a.EpsilonUnits-b.EpsilonUnits, 0), max(a.DeltaUnits-b.DeltaUnits, 0)}
}
