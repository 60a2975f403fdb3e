package internal

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cleanroom/cleanroom/"

// rank orders the packages: each may import only packages of a lower
// rank. Public packages that hold one concept come first; the HTTP layer
// and the command last.
var rank = map[string]int{
	"psi": 0, "dp": 0, "wire": 0, "internal/errs": 0,
	"audience": 1, "audit": 1, "client": 2,
	"internal/store":   1,
	"internal/console": 1,
	"internal/ledger":  2, "partners": 2,
	"internal/cohort":              3,
	"query":                        4,
	"api":                          5,
	"cmd/cleanroom/internal/bench": 5,
	"cmd/cleanroom":                6,
	"internal":                     0, // this test
}

func TestDependenciesFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		r, ok := rank[pkg]
		if !ok {
			t.Errorf("package %s has no place in the layering; add it to rank (and to docs/design.md)", pkg)
			continue
		}
		seen++
		for _, imp := range f[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if dr, ok := rank[dep]; ok && dr >= r {
				t.Errorf("%s imports %s: data must flow one way (api -> services -> store; psi, dp and wire import nothing of ours)", pkg, dep)
			}
			if dep == "api" && pkg != "cmd/cleanroom" {
				t.Errorf("%s imports api: only the command may", pkg)
			}
		}
	}
	if seen < len(rank)-1 {
		t.Errorf("go list saw %d of our packages, want %d", seen, len(rank))
	}
}

// TestOnlyDPImportsNoise: every noise draw goes through package dp, whose
// functions state what they spend; no other package of ours may import
// google's differential-privacy library.
// Tests count too: a test drawing its own noise tests something else.
func TestOnlyDPImportsNoise(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		if pkg == "dp" {
			continue
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, "github.com/google/differential-privacy/") {
				t.Errorf("%s imports %s: only dp may draw noise; add a function to dp", pkg, imp)
			}
		}
	}
}
