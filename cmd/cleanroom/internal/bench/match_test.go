package bench

import "testing"

func TestMedianRun(t *testing.T) {
	runs := []MatchResult{
		{Seconds: 40, PSISeconds: 26, Ratio: 40.0 / 26, Found: 100, ServerPeakRSSBytes: 500},
		{Seconds: 33, PSISeconds: 31, Ratio: 33.0 / 31, Found: 99, ServerPeakRSSBytes: 700},
		{Seconds: 34, PSISeconds: 26, Ratio: 34.0 / 26, Found: 100, ServerPeakRSSBytes: 600},
	}
	got := medianRun(runs)
	if got.Seconds != 34 || got.PSISeconds != 26 {
		t.Errorf("median run: seconds %v, psi %v; want the 34 s / 26 s run", got.Seconds, got.PSISeconds)
	}
	if got.Found != 99 {
		t.Errorf("found %d, want the least of the runs, 99", got.Found)
	}
	if got.ServerPeakRSSBytes != 700 {
		t.Errorf("server peak RSS %d, want the most of the runs, 700", got.ServerPeakRSSBytes)
	}
	if len(got.Runs) != 3 || got.Runs[0].Ratio > got.Runs[1].Ratio || got.Runs[1].Ratio > got.Runs[2].Ratio {
		t.Errorf("runs %+v, want all three by ratio", got.Runs)
	}
	if runs[0].Seconds != 40 {
		t.Error("medianRun reordered its argument")
	}
	one := medianRun(runs[:1])
	if one.Runs != nil || one.Seconds != 40 {
		t.Errorf("one run: %+v, want it as it was, without runs", one)
	}
}
