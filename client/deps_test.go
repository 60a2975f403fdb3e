package client

import (
	"os"
	"os/exec"
	"slices"
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
	// Nor the server's storage: the audit log's SQL side is in
	// internal/auditlog, the client reads only package audit.
	if slices.Contains(strings.Fields(string(out)), "database/sql") {
		t.Error("the client depends on database/sql")
	}
	// And it builds with cgo off: every package resolves, runtime/cgo is
	// not needed.
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	nocgo, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list with CGO_ENABLED=0: %v: %s", err, nocgo)
	}
	if slices.Contains(strings.Fields(string(nocgo)), "runtime/cgo") {
		t.Error("the client needs runtime/cgo even with cgo off")
	}
}
