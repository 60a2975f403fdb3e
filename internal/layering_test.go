package internal

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cleanroom/cleanroom/"

// rank orders the packages: each may import only packages of a lower
// rank, whatever docs/design.md allows. Public packages that hold one
// concept come first; the HTTP layer and the command last.
var rank = map[string]int{
	"psi": 0, "dp": 0, "wire": 0, "audit": 0,
	"internal/errs": 1, "audience": 1, "internal/store": 1, "internal/console": 1,
	"client": 2, "internal/auditlog": 2, "internal/ledger": 2,
	"internal/backup":              3,
	"partners":                     3,
	"internal/cohort":              4,
	"query":                        5,
	"internal/deletion":            5,
	"internal/report":              6,
	"cmd/cleanroom/internal/bench": 6,
	"api":                          7,
	"cmd/cleanroom":                8,
	"internal":                     0, // this test
}

// dpLibrary is google's DP library: noise is drawn in package dp alone,
// so that every draw is where the privacy accounting can see it.
const dpLibrary = "github.com/google/differential-privacy/"

// documented reads docs/design.md's layout: the packages of its first
// block under "## Layout and dependencies" (folders end in /) and the
// allowed imports of its second.
func documented(t *testing.T) (pkgs map[string]bool, allowed map[string][]string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, allowed = map[string]bool{}, map[string][]string{}
	in, block := false, 0
	inFence := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Layout and dependencies"
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(line, "```") {
			if !inFence {
				block++
			}
			inFence = !inFence
			continue
		}
		if !inFence || strings.TrimSpace(line) == "" {
			continue
		}
		switch block {
		case 1:
			name := strings.Fields(line)[0]
			if !strings.HasSuffix(name, "/") {
				pkgs[name] = true
			}
		case 2:
			pkg, deps, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("design.md: import line %q is not \"pkg: deps\"", line)
			}
			allowed[pkg] = strings.Fields(deps)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pkgs) == 0 || len(allowed) == 0 {
		t.Fatalf("design.md: no layout (%d packages) or no imports (%d) under \"## Layout and dependencies\"", len(pkgs), len(allowed))
	}
	return pkgs, allowed
}

func TestDependenciesFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	docPkgs, allowed := documented(t)
	used := map[string]bool{}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		seen[pkg] = true
		if !docPkgs[pkg] {
			t.Errorf("package %s is not in docs/design.md's layout: add it there, with what it holds", pkg)
		}
		r, ok := rank[pkg]
		if !ok {
			t.Errorf("package %s has no place in the layering; add it to rank", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, dpLibrary) && pkg != "dp" {
				t.Errorf("%s imports %s: noise comes from package dp alone", pkg, imp)
			}
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			used[pkg+": "+dep] = true
			if dr, ok := rank[dep]; ok && dr >= r {
				t.Errorf("%s imports %s: data must flow one way (api -> services -> store; psi, dp and wire import nothing of ours)", pkg, dep)
			}
			if dep == "api" && pkg != "cmd/cleanroom" {
				t.Errorf("%s imports api: only the command may", pkg)
			}
			if !slices.Contains(allowed[pkg], dep) {
				t.Errorf("%s imports %s, which docs/design.md does not allow: add it to the imports there if it flows one way", pkg, dep)
			}
		}
	}
	for pkg := range docPkgs {
		if !seen[pkg] {
			t.Errorf("docs/design.md's layout names %s, which is not a package", pkg)
		}
	}
	if len(seen) < len(rank) {
		t.Errorf("go list saw %d of our packages, want %d", len(seen), len(rank))
	}
	for pkg := range rank {
		if !seen[pkg] {
			t.Errorf("rank names %s, which is not a package", pkg)
		}
	}
	for pkg, deps := range allowed {
		for _, dep := range deps {
			if !used[pkg+": "+dep] {
				t.Errorf("docs/design.md allows %s: %s, which is not imported: keep the list true", pkg, dep)
			}
		}
	}
}

// TestOnlyDPImportsNoiseInTests extends TestDependenciesFlowOneWay's
// rule (noise comes from package dp alone) to tests: a test drawing its
// own noise would test something other than what the server releases.
func TestOnlyDPImportsNoiseInTests(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}`, module+"...").CombinedOutput()
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
			if strings.HasPrefix(imp, dpLibrary) {
				t.Errorf("tests of %s import %s: noise comes from package dp alone", pkg, imp)
			}
		}
	}
}
