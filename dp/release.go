package dp

import (
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"
)

// Agg is one aggregate of a query, with its per-user bounds.
type Agg struct {
	Func         string  // count, sum, avg, quantile, variance or stddev
	Lower, Upper float64 // per-user bounds of the metric (all but count)
	Rank         float64 // a quantile's rank, in (0, 1)
}

// distribution reports whether an aggregate is released from each
// user's value (Group.Values) by one of the DP library's bounded
// distributions, rather than from a sum.
func (a Agg) distribution() bool {
	return a.Func == "quantile" || a.Func == "variance" || a.Func == "stddev"
}

// Group is one group's exact statistics after per-user bounding: each
// user contributes to at most MaxGroups groups, and a user's metric in a
// group is the sum of their own rows, clamped to the bounds.
type Group struct {
	Key   []any
	Users int64
	// Sums holds, per aggregate, the sum over users of their clamped
	// values (ignored for count).
	Sums []float64
	// Values holds, for an aggregate released from its distribution
	// (quantile, variance, stddev), each user's clamped value; nil for
	// the others. A caller may give Spreads instead.
	Values [][]float64
	// Spreads holds, for such an aggregate, its users' values summarised
	// where they are (Spread); used where present, in place of Values.
	Spreads []*Spread
}

// ReleaseOptions say how to release groups.
type ReleaseOptions struct {
	// Epsilon and Delta are the query's whole budget: Epsilon is split
	// evenly over partition selection (when grouped), the user count and
	// each sum or average; Delta goes to partition selection (and, with
	// Gaussian noise, is shared with the noise).
	Epsilon, Delta float64
	// Gaussian selects Gaussian noise instead of Laplace.
	Gaussian bool
	// Grouped: the group keys come from the data and must be protected by
	// partition selection. A query without GROUP BY has one fixed group.
	Grouped bool
	// Public: the groups are declared in advance, none from the data (the
	// caller passes every declared group, empty ones with no users). No
	// partition selection runs and no delta is spent for it; every group
	// is released, min_group_users dropping none (a threshold would only
	// hide noisy zeros, and the analyst asked for the declared groups).
	// Grouped must then be false.
	Public bool
	// MaxGroups is how many groups one user can contribute to (the L0
	// sensitivity); the caller has enforced it.
	MaxGroups int64
	// MinGroupUsers drops groups whose noisy user count is below it.
	MinGroupUsers int64
	Aggs          []Agg
	// noise overrides the noise, for the statistical tests' negative
	// controls only.
	noise noise.Noise
}

// Value is a released number with its 95% confidence interval.
type Value struct {
	Value float64 `json:"value"`
	Lower float64 `json:"ci_lower"`
	Upper float64 `json:"ci_upper"`
	// NoInterval: the library states none (quantiles, variances).
	NoInterval bool `json:"-"`
}

// Row is one released group.
type Row struct {
	Key    []any
	Values []Value
}

// Release is what a query releases, and what it cost.
type Release struct {
	Rows    []Row
	Epsilon float64            // spent
	Delta   float64            // spent
	Split   map[string]float64 // epsilon per part: selection, count, aggregate i
}

// DeltaCost is the delta a release with these options spends: all of
// Delta when the query is grouped (partition selection) or uses Gaussian
// noise, else 0 (Laplace noise needs none). ReleaseGroups reports exactly
// this, and a query is charged exactly this.
func (o ReleaseOptions) DeltaCost() float64 {
	if o.Grouped || o.Gaussian {
		return o.Delta
	}
	return 0
}

// alpha is the confidence intervals' error rate: 95% intervals.
const alpha = 0.05

// ReleaseGroups adds noise to groups and selects which may be released.
//
// Privacy: the released rows are (Epsilon, Delta)-differentially private
// with respect to adding or removing one user, provided each user
// contributes to at most MaxGroups groups with values inside the bounds.
// Partition selection (dpagg.PreAggSelectPartition) hides groups that
// only a few users could reveal; min_group_users is then applied to the
// noisy count, which is post-processing and costs nothing.
func ReleaseGroups(groups []Group, o ReleaseOptions) (Release, error) {
	if !(o.Epsilon > 0) || math.IsInf(o.Epsilon, 0) {
		return Release{}, fmt.Errorf("dp.ReleaseGroups: epsilon must be positive and finite, got %v", o.Epsilon)
	}
	if o.MaxGroups < 1 {
		return Release{}, fmt.Errorf("dp.ReleaseGroups: MaxGroups must be at least 1")
	}
	if o.Public && o.Grouped {
		return Release{}, fmt.Errorf("dp.ReleaseGroups: public groups need no partition selection: Grouped must be false")
	}
	nz := o.noise
	if nz == nil {
		nz = noise.Laplace()
		if o.Gaussian {
			nz = noise.Gaussian()
		}
	}
	rel, sh, selDelta, noiseDelta, err := o.split()
	if err != nil {
		return Release{}, err
	}
	eps := sh.agg

	l0 := o.MaxGroups
	if err := checkParams(nz, o, sh, selDelta, noiseDelta); err != nil {
		return Release{}, fmt.Errorf("dp.ReleaseGroups: %w", err)
	}
	for _, g := range groups {
		if o.Grouped {
			sel, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
				Epsilon: sh.sel, Delta: selDelta, MaxPartitionsContributed: l0})
			if err != nil {
				return Release{}, fmt.Errorf("dp.ReleaseGroups: %w", err)
			}
			if err := sel.IncrementBy(g.Users); err != nil {
				return Release{}, err
			}
			keep, err := sel.ShouldKeepPartition()
			if err != nil {
				return Release{}, err
			}
			if !keep {
				continue
			}
		}
		// The people count: released, or used for the threshold; a
		// public release that holds none draws none (sh.count is 0).
		var users int64
		var usersCI noise.ConfidenceInterval
		if sh.count > 0 {
			if users, err = nz.AddNoiseInt64(g.Users, l0, 1, sh.count, noiseDelta); err != nil {
				return Release{}, fmt.Errorf("dp.ReleaseGroups: %w", err)
			}
			if users < o.MinGroupUsers && !o.Public {
				continue
			}
			if usersCI, err = nz.ComputeConfidenceIntervalInt64(users, l0, 1, sh.count, noiseDelta, alpha); err != nil {
				return Release{}, err
			}
		}
		row := Row{Key: g.Key, Values: make([]Value, len(o.Aggs))}
		for i, a := range o.Aggs {
			switch a.Func {
			case "count":
				row.Values[i] = Value{Value: float64(users), Lower: max(usersCI.LowerBound, 0), Upper: usersCI.UpperBound}
			case "sum":
				lInf := math.Max(math.Abs(a.Lower), math.Abs(a.Upper))
				if lInf == 0 {
					row.Values[i] = Value{}
					continue
				}
				v, err := nz.AddNoiseFloat64(g.Sums[i], l0, lInf, eps, noiseDelta)
				if err != nil {
					return Release{}, err
				}
				ci, err := nz.ComputeConfidenceIntervalFloat64(v, l0, lInf, eps, noiseDelta, alpha)
				if err != nil {
					return Release{}, err
				}
				row.Values[i] = Value{Value: v, Lower: ci.LowerBound, Upper: ci.UpperBound}
			case "avg":
				row.Values[i], err = noisyMean(nz, g, i, a, users, l0, eps, sh.count, noiseDelta)
				if err != nil {
					return Release{}, err
				}
			case "quantile", "variance", "stddev":
				var sp Spread
				switch {
				case i < len(g.Spreads) && g.Spreads[i] != nil:
					sp = *g.Spreads[i]
				case i < len(g.Values):
					sp = spreadOf(a, g.Values[i])
				}
				v, err := distribution(nz, a, sp, l0, eps, noiseDelta)
				if err != nil {
					return Release{}, fmt.Errorf("dp.ReleaseGroups: %w", err)
				}
				row.Values[i] = Value{Value: v, NoInterval: true}
			default:
				return Release{}, fmt.Errorf("dp.ReleaseGroups: unknown aggregate %q", a.Func)
			}
		}
		rel.Rows = append(rel.Rows, row)
	}
	return rel, nil
}

// shares is the epsilon of each part of a release.
type shares struct {
	sel, count, agg float64
}

// asksCount reports whether the people count is part of the answer: a
// COUNT(*), or an average (whose denominator it is).
func (o ReleaseOptions) asksCount() bool {
	for _, a := range o.Aggs {
		if a.Func == "count" || a.Func == "avg" {
			return true
		}
	}
	return false
}

// split returns how a release with these options divides its budget:
// the Release (no rows yet) stating epsilon, delta and the split, the
// epsilon of each part, and the delta of selection and of each part's
// noise. Selection and each aggregate weigh 1. The people count weighs 1
// when the answer holds it (COUNT(*), or an AVG's denominator), 1/2 when
// it serves only min_group_users (a threshold needs a rough count, not a
// precise one), and nothing in a release of public groups that holds no
// count (no threshold applies there): the stated errors of what was asked
// are smaller for it.
func (o ReleaseOptions) split() (rel Release, sh shares, selDelta, noiseDelta float64, err error) {
	countWeight := 1.0
	switch {
	case o.asksCount():
	case o.Public:
		countWeight = 0
	default:
		countWeight = 0.5
	}
	weight, parts := countWeight, 0
	if countWeight > 0 {
		parts++
	}
	for _, a := range o.Aggs {
		if a.Func != "count" {
			weight++
			parts++
		}
	}
	if o.Grouped {
		weight++
		parts++
	}
	if parts == 0 {
		return Release{}, shares{}, 0, 0, fmt.Errorf("dp.ReleaseGroups: nothing to release")
	}
	unit := o.Epsilon / weight
	sh = shares{agg: unit, count: unit * countWeight}
	if o.Grouped {
		sh.sel = unit
	}
	// Delta: Laplace noise needs none; selection takes it all. Gaussian
	// noise shares it with selection.
	selDelta, noiseDelta = o.Delta, 0.0
	if o.Gaussian {
		if o.Delta <= 0 {
			return Release{}, shares{}, 0, 0, fmt.Errorf("dp.ReleaseGroups: Gaussian noise needs delta > 0")
		}
		noiseDelta = o.Delta / float64(parts)
		selDelta = noiseDelta
	}
	if o.Grouped && !(selDelta > 0) {
		return Release{}, shares{}, 0, 0, fmt.Errorf("dp.ReleaseGroups: grouped queries need delta > 0 for partition selection")
	}
	// Selection spends selDelta and each Gaussian part noiseDelta: in all,
	// exactly o.Delta when grouped or Gaussian (DeltaCost), stated as the
	// rule's own number so that it is the delta the ledger is charged.
	rel = Release{Epsilon: o.Epsilon, Delta: o.DeltaCost(), Split: map[string]float64{}}
	if sh.count > 0 {
		rel.Split["count"] = sh.count
	}
	if o.Grouped {
		rel.Split["selection"] = sh.sel
	}
	for i, a := range o.Aggs {
		if a.Func != "count" {
			rel.Split[fmt.Sprintf("%s_%d", a.Func, i)] = sh.agg
		}
	}
	return rel, sh, selDelta, noiseDelta, nil
}

// Expectation is what a release would spend and how wide its intervals
// would be, known before any data is read.
type Expectation struct {
	Epsilon, Delta float64
	Split          map[string]float64
	// HalfWidths holds, per aggregate, the expected half-width of its 95%
	// interval: for a count and a sum whatever the data; for an average,
	// for a group of GroupUsers people.
	HalfWidths []float64
	GroupUsers int64
}

// Expect returns what ReleaseGroups with these options would spend and
// the half-widths of its intervals, from the options alone (an average's
// for a group of groupUsers people). It reads no data, so it says nothing
// about any.
func Expect(o ReleaseOptions, groupUsers int64) (Expectation, error) {
	if !(o.Epsilon > 0) || math.IsInf(o.Epsilon, 0) {
		return Expectation{}, fmt.Errorf("dp.Expect: epsilon must be positive and finite, got %v", o.Epsilon)
	}
	if o.MaxGroups < 1 {
		return Expectation{}, fmt.Errorf("dp.Expect: MaxGroups must be at least 1")
	}
	nz := noise.Laplace()
	if o.Gaussian {
		nz = noise.Gaussian()
	}
	rel, sh, selDelta, noiseDelta, err := o.split()
	if err != nil {
		return Expectation{}, err
	}
	if err := checkParams(nz, o, sh, selDelta, noiseDelta); err != nil {
		return Expectation{}, fmt.Errorf("dp.Expect: %w", err)
	}
	eps := sh.agg
	groupUsers = max(groupUsers, 1)
	x := Expectation{Epsilon: rel.Epsilon, Delta: rel.Delta, Split: rel.Split, HalfWidths: make([]float64, len(o.Aggs)), GroupUsers: groupUsers}
	half := func(lInf, e, a float64) (float64, error) {
		if lInf == 0 || e == 0 {
			return 0, nil
		}
		ci, err := nz.ComputeConfidenceIntervalFloat64(0, o.MaxGroups, lInf, e, noiseDelta, a)
		return (ci.UpperBound - ci.LowerBound) / 2, err
	}
	count, err := half(1, sh.count, alpha)
	if err != nil {
		return Expectation{}, err
	}
	for i, a := range o.Aggs {
		switch a.Func {
		case "count":
			x.HalfWidths[i] = count
		case "sum":
			if x.HalfWidths[i], err = half(math.Max(math.Abs(a.Lower), math.Abs(a.Upper)), eps, alpha); err != nil {
				return Expectation{}, err
			}
		case "quantile", "variance", "stddev":
			x.HalfWidths[i] = math.NaN() // the library states no interval
		case "avg":
			// The numerator's half-width over the group's people, as
			// noisyMean divides it (its count's own error adds a little).
			num, err := half((a.Upper-a.Lower)/2, eps, alpha/2)
			if err != nil {
				return Expectation{}, err
			}
			x.HalfWidths[i] = math.Min(num/float64(groupUsers), (a.Upper-a.Lower)/2)
		default:
			return Expectation{}, fmt.Errorf("dp.Expect: unknown aggregate %q", a.Func)
		}
	}
	return x, nil
}

// distribution releases a quantile, variance or standard deviation of
// users' values, each user adding one value (MaxContributionsPerPartition
// 1) to at most l0 groups, clamped to the bounds: the library's
// aggregation holding the Spread's state, as if each value were added.
func distribution(nz noise.Noise, a Agg, s Spread, l0 int64, eps, delta float64) (float64, error) {
	switch a.Func {
	case "quantile":
		q, err := dpagg.NewBoundedQuantiles(&dpagg.BoundedQuantilesOptions{Epsilon: eps, Delta: delta, MaxPartitionsContributed: l0,
			MaxContributionsPerPartition: 1, Lower: a.Lower, Upper: a.Upper, Noise: nz,
			TreeHeight: treeHeight, BranchingFactor: branchingFactor})
		if err != nil {
			return 0, err
		}
		if err := fillQuantiles(q, nz, s); err != nil {
			return 0, err
		}
		return q.Result(a.Rank)
	case "variance", "stddev":
		bv, err := dpagg.NewBoundedVariance(&dpagg.BoundedVarianceOptions{Epsilon: eps, Delta: delta, MaxPartitionsContributed: l0,
			MaxContributionsPerPartition: 1, Lower: a.Lower, Upper: a.Upper, Noise: nz})
		if err != nil {
			return 0, err
		}
		if s.N < 0 {
			return 0, fmt.Errorf("a variance of %d users", s.N)
		}
		if err := bv.Count.IncrementBy(s.N); err != nil {
			return 0, err
		}
		if err := fillSum(&bv.NormalizedSum, nz, s.Sum); err != nil {
			return 0, err
		}
		if err := fillSum(&bv.NormalizedSumOfSquares, nz, s.SumSquares); err != nil {
			return 0, err
		}
		r, err := bv.Result()
		if err != nil {
			return 0, err
		}
		if a.Func == "stddev" {
			return math.Sqrt(math.Max(r, 0)), nil
		}
		return r, nil
	}
	return 0, fmt.Errorf("unknown aggregate %q", a.Func)
}

// checkParams runs the noise library's checks of every parameter the
// release will use, once and on no data, so that a release refused for
// its parameters is refused whatever groups the data holds.
func checkParams(nz noise.Noise, o ReleaseOptions, sh shares, selDelta, noiseDelta float64) error {
	l0 := o.MaxGroups
	eps := sh.agg
	if o.Grouped {
		if _, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
			Epsilon: sh.sel, Delta: selDelta, MaxPartitionsContributed: l0}); err != nil {
			return err
		}
	}
	if sh.count > 0 {
		if _, err := nz.AddNoiseInt64(0, l0, 1, sh.count, noiseDelta); err != nil {
			return err
		}
		for _, a := range []float64{alpha, alpha / 2} {
			if _, err := nz.ComputeConfidenceIntervalInt64(0, l0, 1, sh.count, noiseDelta, a); err != nil {
				return err
			}
		}
	}
	for _, a := range o.Aggs {
		var lInf, al float64
		if a.distribution() {
			if a.Func == "quantile" && !(a.Rank > 0 && a.Rank < 1) {
				return fmt.Errorf("quantile rank %v is not in (0, 1)", a.Rank)
			}
			if _, err := distribution(nz, a, Spread{}, l0, eps, noiseDelta); err != nil {
				return err
			}
			continue
		}
		switch a.Func {
		case "count":
			continue
		case "sum":
			lInf, al = math.Max(math.Abs(a.Lower), math.Abs(a.Upper)), alpha
		case "avg":
			lInf, al = (a.Upper-a.Lower)/2, alpha/2
		default:
			return fmt.Errorf("unknown aggregate %q", a.Func)
		}
		if lInf == 0 {
			continue // released without noise
		}
		if _, err := nz.AddNoiseFloat64(0, l0, lInf, eps, noiseDelta); err != nil {
			return err
		}
		if _, err := nz.ComputeConfidenceIntervalFloat64(0, l0, lInf, eps, noiseDelta, al); err != nil {
			return err
		}
	}
	return nil
}

// noisyMean releases an average as dpagg.BoundedMean does: the sum of
// values shifted by the bounds' midpoint gets noise of half the bounds'
// width, and is divided by the noisy user count (already released, so
// free to reuse). Its interval combines the numerator's and the count's
// 97.5% intervals, so it covers at least 95%.
func noisyMean(nz noise.Noise, g Group, i int, a Agg, users, l0 int64, eps, countEps, delta float64) (Value, error) {
	mid := (a.Lower + a.Upper) / 2
	half := (a.Upper - a.Lower) / 2
	if half == 0 {
		return Value{Value: mid, Lower: mid, Upper: mid}, nil
	}
	norm := g.Sums[i] - float64(g.Users)*mid
	v, err := nz.AddNoiseFloat64(norm, l0, half, eps, delta)
	if err != nil {
		return Value{}, err
	}
	den := math.Max(float64(users), 1)
	mean := clamp(v/den+mid, a.Lower, a.Upper)
	nci, err := nz.ComputeConfidenceIntervalFloat64(v, l0, half, eps, delta, alpha/2)
	if err != nil {
		return Value{}, err
	}
	cci, err := nz.ComputeConfidenceIntervalInt64(users, l0, 1, countEps, delta, alpha/2)
	if err != nil {
		return Value{}, err
	}
	dl, du := math.Max(cci.LowerBound, 1), math.Max(cci.UpperBound, 1)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, n := range []float64{nci.LowerBound, nci.UpperBound} {
		for _, d := range []float64{dl, du} {
			lo, hi = math.Min(lo, n/d), math.Max(hi, n/d)
		}
	}
	return Value{Value: mean, Lower: clamp(lo+mid, a.Lower, a.Upper), Upper: clamp(hi+mid, a.Lower, a.Upper)}, nil
}

func clamp(x, lo, hi float64) float64 { return math.Min(math.Max(x, lo), hi) }
