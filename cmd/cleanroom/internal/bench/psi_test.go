package bench

import (
	"context"
	"testing"
	"time"
)

func TestRunPSIFindsTheOverlap(t *testing.T) {
	for _, c := range []struct{ na, nb, overlap int }{{1500, 1500, 150}, {700, 1200, 700}, {300, 200, 0}} {
		res, err := RunPSI(context.Background(), PSIOptions{NA: c.na, NB: c.nb, Overlap: c.overlap, RateTime: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Found != int64(c.overlap) || res.Expected != int64(c.overlap) {
			t.Errorf("%+v: found %d, expected %d", c, res.Found, res.Expected)
		}
		if res.MultPerSecOneCore <= 0 || res.BaselineMultPerSecOneCore <= 0 || res.HashPerSecOneCore <= 0 || res.LimitSeconds <= 0 || res.PeakRSSBytes <= 0 {
			t.Errorf("%+v: missing measurements: %+v", c, res)
		}
		// The limit follows from the measured rates: 2(na+nb) blindings at
		// circl's rate and na+nb hashes, on all cores.
		total := float64(c.na + c.nb)
		want := (2*total/res.BaselineMultPerSecOneCore + total/res.HashPerSecOneCore) / float64(res.Cores)
		if d := res.LimitSeconds - want; d > 1e-9 || d < -1e-9 {
			t.Errorf("limit %v, want %v", res.LimitSeconds, want)
		}
	}
	if _, err := RunPSI(context.Background(), PSIOptions{NA: 10, NB: 10, Overlap: 11}); err == nil {
		t.Error("an overlap larger than the audiences was accepted")
	}
}

func TestRunIntersect(t *testing.T) {
	res, err := RunIntersect(context.Background(), 100000, 12345)
	if err != nil {
		t.Fatal(err)
	}
	if res.Found != 12345 {
		t.Errorf("found %d, want 12345", res.Found)
	}
}

func TestParseFraction(t *testing.T) {
	for in, want := range map[string]float64{"0.1": 0.1, "10%": 0.1, "1": 1, "0": 0} {
		if got, err := ParseFraction(in); err != nil || got != want {
			t.Errorf("%q: got %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-0.1", "101%", "1.01"} {
		if _, err := ParseFraction(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
