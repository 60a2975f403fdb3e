package query

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
)

// The rules every test checks plans against.
var (
	testDimensions = []string{"region", "age", "signup", "exposed", "tier"}
	testMetrics    = map[string][2]float64{"spend": {0, 100}, "visits": {0, 10}}
)

// strictWhere is everything generated WHERE SQL may contain over the test
// rules: quoted allowed columns, placeholders and fixed keywords.
var strictWhere = regexp.MustCompile(`^(?:"(?:region|age|signup|exposed|tier)"|\?|CAST\(\? AS DATE\)|date_diff\('day', |AND|OR|NOT|IN|BETWEEN|IS|NULL|TRUE|=|<>|<=|>=|<|>|\(|\)|, | )+$`)

// anyWhere is the same for any valid column name (a plan not yet checked
// against rules).
var anyWhere = regexp.MustCompile(`^(?:"[a-z][a-z0-9_]{0,62}"|\?|CAST\(\? AS DATE\)|date_diff\('day', |AND|OR|NOT|IN|BETWEEN|IS|NULL|TRUE|=|<>|<=|>=|<|>|\(|\)|, | )+$`)

func openDB(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func asError(err error) (*errs.Error, bool) {
	var e *errs.Error
	ok := errors.As(err, &e)
	return e, ok
}

func countPlaceholders(s string) int {
	n := 0
	for _, c := range s {
		if c == '?' {
			n++
		}
	}
	return n
}
