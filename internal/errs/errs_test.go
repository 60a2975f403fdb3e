package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindsWrapAndRefine(t *testing.T) {
	err := fmt.Errorf("%w: rules: epsilon_budget: must be positive", InvalidRules)
	if !errors.Is(err, InvalidRules) || !errors.Is(err, Invalid) || errors.Is(err, NotFound) {
		t.Errorf("InvalidRules is not found as itself and as Invalid: %v", err)
	}
	if errors.Is(fmt.Errorf("%w: x", Invalid), InvalidRules) {
		t.Error("Invalid is taken for its refinement")
	}
}

// TestMessageNamesNoKind: the names of kinds that wrapping put before a
// message's parts are gone, and nothing else is.
func TestMessageNamesNoKind(t *testing.T) {
	stale := errors.New("stale match")
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: %w: row 601", Invalid, Invalid), "row 601"},
		{fmt.Errorf("%w: %v", Invalid, fmt.Errorf("%w: row 601", Invalid)), "row 601"},
		{fmt.Errorf("%w: %w: match m_1 is stale", Conflict, stale), "match m_1 is stale"},
		{fmt.Errorf("%w: both parties must upload; %w: partner p has none", Conflict, NotFound), "both parties must upload; partner p has none"},
		{fmt.Errorf("reading the body: %w: row 3", Invalid), "reading the body: row 3"},
		{fmt.Errorf("%w: rules: delta: too large", InvalidRules), "rules: delta: too large"},
		{Unauthorized, "unauthorized"},
		{errors.New("an invalid: thing"), "an invalid: thing"},
	} {
		if got := Message(c.err, stale); got != c.want {
			t.Errorf("Message(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
