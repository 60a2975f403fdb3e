package query

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
)

// FuzzParse: Parse never panics; refusals are *errs.Error with a known kind and
// a position inside the text; an accepted plan is well formed, its WHERE is
// only quoted column names, placeholders and keywords, and its canonical
// text parses back to itself; a plan that passes Check reads only allowed
// columns.
func FuzzParse(f *testing.F) {
	for _, tc := range acceptedCases {
		f.Add(tc.text)
	}
	for _, tc := range refusedCases {
		f.Add(tc.text)
	}
	for _, text := range injectionCorpus {
		f.Add(text)
	}
	db := openDB(f, f.TempDir()).SQL()
	ctx := context.Background()
	codes := map[*errs.Kind]bool{errs.Syntax: true, errs.Unsupported: true, errs.Limit: true, errs.HiddenColumn: true}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 1024 {
			// Long texts only slow the fuzzer down (their minimisation
			// stalls it); the size limit is covered by TestLimits.
			return
		}
		watchdog := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("Parse(%q) took more than 10s", text))
		})
		defer watchdog.Stop()
		plan, err := Parse(ctx, db, text)
		if err != nil {
			e, ok := asError(err)
			if !ok {
				t.Fatalf("%q: not a refusal: %v", text, err)
			}
			if !codes[e.Kind] || e.Position < -1 || e.Position > len(text) || e.Message == "" {
				t.Fatalf("%q: bad refusal %#v", text, e)
			}
			return
		}
		if err := plan.validate(); err != nil {
			t.Fatalf("%q: accepted a malformed plan: %v", text, err)
		}
		where, args := plan.WhereSQL()
		if !anyWhere.MatchString(where) || countPlaceholders(where) != len(args) {
			t.Fatalf("%q: generated WHERE %q %v", text, where, args)
		}
		canon := plan.Canonical()
		if plan.Canonical() != canon {
			t.Fatalf("%q: Canonical is not deterministic", text)
		}
		again, err := Parse(ctx, db, canon)
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", text, canon, err)
		}
		if again.Canonical() != canon || again.Hash() != plan.Hash() {
			t.Fatalf("%q: canonical %q parses to %q", text, canon, again.Canonical())
		}
		if err := plan.Check(testDimensions, testMetrics); err == nil {
			assertSafe(t, text, plan)
		} else if _, ok := asError(err); !ok {
			t.Fatalf("%q: Check: %v", text, err)
		}
	})
}
