package wire

import (
	"fmt"
	"math"
	"testing"
)

func TestUnitsAreExactAndRefuseFractions(t *testing.T) {
	for _, c := range []struct {
		eps  float64
		want int64
	}{{0, 0}, {1e-6, 1}, {0.1, 100000}, {0.3, 300000}, {1, 1000000}, {10.2, 10200000}, {0.000123, 123}, {1234567.891011, 1234567891011}} {
		u, err := EpsilonUnits(c.eps)
		if err != nil || u != c.want {
			t.Errorf("EpsilonUnits(%v) = %d, %v; want %d", c.eps, u, err, c.want)
		}
		if back := EpsilonOf(u); back != c.eps {
			t.Errorf("EpsilonOf(%d) = %v, want %v", u, back, c.eps)
		}
	}
	tenth := 0.1 // a variable: 0.1 + 0.2 between constants is exact
	for _, eps := range []float64{1e-10, 1e-17, 1e-300, 1.5e-6, tenth + 0.2, -0.1, math.NaN(), math.Inf(1), 1e30} {
		if u, err := EpsilonUnits(eps); err == nil {
			t.Errorf("EpsilonUnits(%v) = %d, want an error", eps, u)
		}
	}
	for _, c := range []struct {
		delta float64
		want  int64
	}{{0, 0}, {1e-12, 1}, {1e-6, 1000000}, {1e-5, 10000000}, {5e-4, 500000000}, {1, 1000000000000}} {
		u, err := DeltaUnits(c.delta)
		if err != nil || u != c.want || DeltaOf(u) != c.delta {
			t.Errorf("DeltaUnits(%v) = %d, %v; want %d", c.delta, u, err, c.want)
		}
	}
	for _, d := range []float64{5e-13, 1e-15, 1e-5 / 3, -1e-6} {
		if _, err := DeltaUnits(d); err == nil {
			t.Errorf("DeltaUnits(%v) accepted", d)
		}
	}
	// Sums of units print without float noise: 0.1 + 0.2 + 0.9 is 1.2.
	var sum int64
	for _, e := range []float64{0.1, 0.2, 0.9} {
		u, _ := EpsilonUnits(e)
		sum += u
	}
	if s := fmt.Sprint(EpsilonOf(sum)); s != "1.2" {
		t.Errorf("0.1 + 0.2 + 0.9 in units prints %s", s)
	}
}

// TestDebitExactNoSlack: ten charges of 0.1 fill a budget of 1 exactly; at

// 0 nothing more fits, not even one unit (the old 1e-9 slack let nine

// charges of 1e-10 through a spent budget), and a charge that is not a

// whole number of units is an error, not a silent rounding.

// TestDebitDeltaBudget: delta is budgeted like epsilon; a charge that the

// delta budget cannot cover is refused, naming delta, while charges of

// delta 0 still fit.

// TestCollaborationSpent: the total over both partners, matches included,

// and over every budget period (a refresh restores budgets, not privacy).

// TestReleaseDeltaIsTheCharge: the delta a release reports is exactly the

// rule delta when it is grouped or Gaussian, else 0 (the old sum of the

// parts' shares gave 6.999999999999999e-06 for 7e-06).

// TestReleaseRefusesParametersWithoutData: parameters the noise library

// rejects are refused whether or not any group exists, so a refusal says

// nothing about the data.
