package audit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
)

// Actions lists every Action constant once: the console's filter (checked
// against it in internal/console) then misses none.
func TestActionsListsEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "action.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []Action
	ast.Inspect(f, func(n ast.Node) bool {
		if v, ok := n.(*ast.ValueSpec); ok {
			if id, ok := v.Type.(*ast.Ident); ok && id.Name == "Action" {
				for _, val := range v.Values {
					s, _ := strconv.Unquote(val.(*ast.BasicLit).Value)
					declared = append(declared, Action(s))
				}
			}
		}
		return true
	})
	got := Actions()
	if len(declared) == 0 || len(got) != len(declared) {
		t.Fatalf("Actions() has %d actions, action.go declares %d", len(got), len(declared))
	}
	for _, a := range declared {
		if !slices.Contains(got, a) {
			t.Errorf("Actions() lacks %s", a)
		}
	}
}
