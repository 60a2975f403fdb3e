package auditlog

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/store"
)

// An action filter is the action or a prefix of it at a dot: "query" is
// query.run but not queryx.run, and an underscore is no wildcard. Total
// counts every page of a filter; Offset jumps into it.
func TestFilterByActionPrefixTotalAndOffset(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	actions := []audit.Action{"query.run", "queryx.run", "query.refused", "query", "match.start", "a_b.x", "aXb.x"}
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		for _, a := range actions {
			if _, err := Append(ctx, tx, "k_1", "p_1", "", a, map[string]any{}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for prefix, want := range map[audit.Action][]string{
		"query":     {"query.run", "query.refused", "query"},
		"query.run": {"query.run"},
		"a_b":       {"a_b.x"},
		"quer":      nil,
	} {
		f := Filter{Action: prefix, Since: time.Now().Add(-time.Hour)}
		es, err := List(ctx, db.SQL(), f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Action)
		}
		if !slices.Equal(got, want) {
			t.Errorf("action %q lists %q, want %q", prefix, got, want)
		}
		if n, err := Total(ctx, db.SQL(), f); err != nil || n != int64(len(want)) {
			t.Errorf("action %q: total %d (%v), want %d", prefix, n, err, len(want))
		}
	}
	f := Filter{Action: "query", Offset: 1, Limit: 1, Newest: true}
	es, err := List(ctx, db.SQL(), f)
	if err != nil || len(es) != 1 || es[0].Action != "query.refused" {
		t.Errorf("offset 1, limit 1, newest first: %v %v, want query.refused", es, err)
	}
	if n, _ := Total(ctx, db.SQL(), f); n != 3 {
		t.Errorf("the total of a page: %d, want every page's 3", n)
	}
}
