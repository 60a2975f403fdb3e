package bench

import (
	"os/exec"
	"strings"
	"testing"
)

// The benchmarks drive a server only through its HTTP client: the
// command hands them a server to run, so bench never links the API.
func TestBenchDoesNotImportTheAPI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/cleanroom/cleanroom/api" {
			t.Fatal("bench depends on api")
		}
	}
}
