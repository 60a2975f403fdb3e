package client

import (
	"os/exec"
	"strings"
	"testing"
)

// The client is for anyone scripting the API in Go: it must build without
// a C toolchain, so it may not depend on DuckDB (cgo) or on the server's
// DP library.
func TestClientPullsInNoServerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "duckdb") || strings.Contains(dep, "differential-privacy") || strings.Contains(dep, "/internal/") && strings.HasPrefix(dep, "github.com/cleanroom/") {
			t.Errorf("the client depends on %s", dep)
		}
	}
	// The standard library's own cgo (net, runtime/cgo) has pure-Go fallbacks.
	cgo, err := exec.Command("go", "list", "-deps", "-f", "{{if and .CgoFiles (not .Standard)}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(cgo)); s != "" {
		t.Errorf("the client needs cgo through %s", s)
	}
}
