package main

import (
	"context"
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
