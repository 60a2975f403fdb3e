package main

import (
	"context"
	"os/exec"
	"slices"
	"testing"

	"github.com/cleanroom/cleanroom/cmd/cleanroom/internal/bench"
)

// bench query runs end to end, through the API the command serves in
// process: the cohort it registers is one the server can query.
func TestBenchQueryOverHTTP(t *testing.T) {
	res, err := bench.RunQuery(context.Background(), bench.QueryOptions{Rows: 4000, Runs: 2, Serve: serveInProcess})
	if err != nil {
		t.Fatal(err)
	}
	if res.Users != 2000 || res.DPMsP50 <= 0 || res.RawMsP50 <= 0 || res.HTTPMsP50 <= 0 {
		t.Errorf("result %+v", res)
	}
}

// bench query -shape events answers its three questions on event tables,
// private and plain, and times both.
func TestBenchQueryEvents(t *testing.T) {
	res, err := bench.RunQuery(context.Background(), bench.QueryOptions{Rows: 3000, Runs: 1, Shape: bench.ShapeEvents})
	if err != nil {
		t.Fatal(err)
	}
	if res.Users != 3000 || res.Rows < 3000*20 || len(res.Questions) != 3 {
		t.Fatalf("result %+v", res)
	}
	for _, q := range res.Questions {
		if q.DPMsP50 <= 0 || q.RawMsP50 <= 0 || q.Ratio <= 0 || q.FirstMs <= 0 {
			t.Errorf("question %q: %+v", q.Name, q)
		}
	}
}

// bench match runs both shapes end to end against a server process (the
// cleanroom testscript.Main puts on PATH): every person found, every
// table stored whole (all its rows are consented) and linked for the
// people both parties have, and no table larger than the largest upload.
func TestBenchMatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	self, err := exec.LookPath("cleanroom")
	if err != nil {
		t.Fatal(err)
	}
	for _, shape := range []string{bench.ShapePeople, bench.ShapeEvents} {
		t.Run(shape, func(t *testing.T) {
			res, err := bench.RunMatch(context.Background(), bench.MatchOptions{N: 3000, Overlap: 300, Shape: shape,
				Purchases: 3, Exposures: 5, Server: []string{self, "serve"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Found != res.Expected || res.Expected != 300 {
				t.Errorf("found %d, expected %d", res.Found, res.Expected)
			}
			want := []string{"people proposer", "people partner"}
			if shape == bench.ShapeEvents {
				want = []string{"customers proposer", "purchases proposer", "exposures partner"}
			}
			var got []string
			for _, tr := range res.Tables {
				got = append(got, tr.Table+" "+tr.Party)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("tables %v, want %v", got, want)
			}
			var up, largest int64
			for _, tr := range res.Tables {
				if tr.UploadedRows < 3000 || tr.StoredRows != tr.UploadedRows {
					t.Errorf("%s: %d rows uploaded, %d stored", tr.Table, tr.UploadedRows, tr.StoredRows)
				}
				if tr.LinkedRows != tr.ExpectedLinkedRows || tr.LinkedRows < 300 {
					t.Errorf("%s: %d rows linked, want %d", tr.Table, tr.LinkedRows, tr.ExpectedLinkedRows)
				}
				if tr.Blinded != 3000 {
					t.Errorf("%s: %d blindings, want one for each of the 3000 people", tr.Table, tr.Blinded)
				}
				up += tr.UploadedRows
				largest = max(largest, tr.UploadedRows)
			}
			if res.LargestStoredTableRows <= 0 || res.LargestStoredTableRows > largest {
				t.Errorf("largest table %s has %d rows; the largest upload %d", res.LargestStoredTable, res.LargestStoredTableRows, largest)
			}
			if shape == bench.ShapeEvents && up < 3000*(1+3+5)*9/10 {
				t.Errorf("%d rows uploaded, want about %d", up, 3000*(1+3+5))
			}
			if res.BytesPerUploadedRow <= 0 || res.PSISeconds <= 0 || res.Ratio <= 0 || res.ServerPeakRSSBytes <= 0 {
				t.Errorf("result %+v", res)
			}
		})
	}
}
