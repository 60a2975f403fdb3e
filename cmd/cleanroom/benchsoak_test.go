package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/cmd/cleanroom/internal/bench"
)

// make test's soak: a minute of mixed load on a server process killed
// (SIGKILL) and restarted every 7 to 15 s, with every invariant checked
// after each restart and at the end. The checks themselves are shown to
// catch broken invariants in internal/bench's TestSoakChecksCatchBrokenInvariants.
func TestBenchSoakMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of load on a server process")
	}
	self, err := exec.LookPath("cleanroom")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "bench", "soak", "-minutes", "1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("bench soak: %s", stdout.String())
	if err != nil {
		t.Fatalf("bench soak: %v\n%s", err, stderr.String())
	}
	var res bench.SoakResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bench soak printed %q: %v", stdout.String(), err)
	}
	if res.InvariantFailures != 0 {
		t.Errorf("%d invariant failures (seed %d):\n%s", res.InvariantFailures, res.Seed, stderr.String())
	}
	// Killed and restarted, and checked down and up each time (a kill
	// every 7.5 to 15 s leaves room for 3 or more; a loaded machine's
	// slow starts for 2).
	if res.Restarts < 2 || res.InvariantChecks < 2*res.Restarts+2 {
		t.Errorf("%d restarts, %d invariant checks: want at least 2 restarts, each checked twice", res.Restarts, res.InvariantChecks)
	}
	for _, op := range []string{"upload", "match", "query", "query_cached", "deletion"} {
		if res.Operations[op] == 0 {
			t.Errorf("no %s succeeded in a minute: operations %v, refused %v", op, res.Operations, res.Refused)
		}
	}
	// Each start's check exports the log (and the load sometimes does).
	if n := res.LatencyMs["audit_export"].Count; n < res.Restarts {
		t.Errorf("%d audit exports answered over %d restarts", n, res.Restarts)
	}
	if !strings.HasPrefix(res.Backup, "ok, switched") && !strings.HasPrefix(res.Backup, "skipped") {
		t.Errorf("the midway backup: %s", res.Backup)
	}
	if res.PeakRSSBytes <= 0 || res.PeakRSSBytes > res.RSSLimitBytes {
		t.Errorf("peak RSS %d bytes, bound %d", res.PeakRSSBytes, res.RSSLimitBytes)
	}
}
