package wire

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDesignStatesTheSubset: docs/design.md states the subset in the
// words of QuerySubset, which the CLI and the OpenAPI document use.
func TestDesignStatesTheSubset(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "## Queries\n\n```\n"+QuerySubset+"\n```") {
		t.Errorf("docs/design.md's \"Queries\" does not open with QuerySubset:\n%s", QuerySubset)
	}
}
