package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBuildTimeDoesNotTellMembership (opt-in: CLEANROOM_TIMING=1, about
// two minutes): two worlds differ in one person of the brand, who holds
// many rows with a different value in each (the shape that once sent the
// build down a dearer path); in one world the publisher also holds that
// person, in the other a stranger. Matches alternate between the worlds
// on one server. Neither what a party can time (its match from start to
// finish) nor the gap between the match's audit entries may separate
// them: a Mann-Whitney test must not find the durations different
// (p > 0.001), and the entries' times are whole seconds.
func TestBuildTimeDoesNotTellMembership(t *testing.T) {
	if os.Getenv("CLEANROOM_TIMING") == "" {
		t.Skip("set CLEANROOM_TIMING=1 to run the timing test (about two minutes)")
	}
	runs := 16
	if n, err := strconv.Atoi(os.Getenv("CLEANROOM_TIMING_RUNS")); err == nil && n > 1 {
		runs = n
	}
	const people = 8000
	e := newEnv(t, tablesRules)
	var cu, pu strings.Builder
	cu.WriteString("email,region,consent\n")
	pu.WriteString("email,amount,purchase_date\n")
	for k := 0; k < people; k++ {
		fmt.Fprintf(&cu, "person%d@example.com,r%d,measurement\n", k, k%4)
		fmt.Fprintf(&pu, "person%d@example.com,%d,2026-11-%02d\n", k, 10+k%50, 1+k%28)
	}
	// The target: 40 purchases and customer rows in 20 regions.
	for i := 0; i < 40; i++ {
		if i < 20 {
			fmt.Fprintf(&cu, "target@example.com,t%d,measurement\n", i)
		}
		fmt.Fprintf(&pu, "target@example.com,%d,2026-11-%02d\n", i, 1+i%28)
	}
	e.mustUploadTable(e.brand, "customers", cu.String(), "")
	e.mustUploadTable(e.brand, "purchases", pu.String(), "")
	exposures := func(withTarget bool) string {
		var b strings.Builder
		b.WriteString("email,campaign,exposure_date,consent\n")
		for k := people / 2; k < people+people/2; k++ {
			fmt.Fprintf(&b, "person%d@example.com,c%d,2026-10-%02d,measurement\n", k, k%3, 1+k%28)
		}
		who := "stranger@example.com"
		if withTarget {
			who = "target@example.com"
		}
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&b, "%s,c%d,2026-10-%02d,measurement\n", who, i, 1+i%28)
		}
		return b.String()
	}
	worlds := map[bool]string{true: exposures(true), false: exposures(false)}
	durations := map[bool][]float64{}
	gaps := map[bool][]float64{}
	ctx := context.Background()
	for run := 0; run < 2*runs; run++ {
		in := run%2 == 0
		replace := ""
		if run > 0 {
			replace = "&replace=true"
		}
		e.mustUploadTable(e.pub, "exposures", worlds[in], replace)
		t0 := time.Now()
		mid, _ := e.matchBoth()
		durations[in] = append(durations[in], time.Since(t0).Seconds())
		// The gap the other party's auditor reads: from the match's
		// start to its completion, in the entries' shared times.
		raw, err := e.pub.audit.AuditLog(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Entries []struct {
				At      time.Time       `json:"at"`
				Action  string          `json:"action"`
				Details json.RawMessage `json:"details"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatal(err)
		}
		var start, done time.Time
		for _, x := range l.Entries {
			if !strings.Contains(string(x.Details), mid) {
				continue
			}
			if x.At.Nanosecond() != 0 {
				t.Fatalf("an audit time finer than a second: %s %s", x.Action, x.At.Format(time.RFC3339Nano))
			}
			switch {
			case x.Action == "match.start" && (start.IsZero() || x.At.Before(start)):
				start = x.At
			case x.Action == "match.complete":
				done = x.At
			}
		}
		if start.IsZero() || done.IsZero() {
			t.Fatalf("match %s: no start or completion entry", mid)
		}
		gaps[in] = append(gaps[in], done.Sub(start).Seconds())
	}
	p := mannWhitneyP(durations[true], durations[false])
	t.Logf("%d matches a world, %d people a side: match seconds, target in: median %.3f; out: %.3f; Mann-Whitney p = %.3f; audit gaps in %v, out %v",
		runs, people, medianOf(durations[true]), medianOf(durations[false]), p, gaps[true], gaps[false])
	if p < 0.001 {
		t.Errorf("the match's duration tells whether the target is in the other party's data (p = %.5f)", p)
	}
	if pg := mannWhitneyP(gaps[true], gaps[false]); pg < 0.001 {
		t.Errorf("the audit entries' gap tells whether the target is in (p = %.5f)", pg)
	}
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// mannWhitneyP is the two-sided p-value of the Mann-Whitney U test (normal
// approximation, ties given half), that a and b come from one
// distribution.
func mannWhitneyP(a, b []float64) float64 {
	var u float64
	for _, x := range a {
		for _, y := range b {
			switch {
			case x > y:
				u++
			case x == y:
				u += 0.5
			}
		}
	}
	n1, n2 := float64(len(a)), float64(len(b))
	mu, sigma := n1*n2/2, math.Sqrt(n1*n2*(n1+n2+1)/12)
	z := math.Abs(u-mu) / sigma
	return math.Erfc(z / math.Sqrt2)
}
