package cohort_test

import (
	"context"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/query"
	"github.com/cleanroom/cleanroom/wire"
)

// TestBuildOutsideWriteLock: while collaboration A's cohort build is held
// in its middle, a query on collaboration B is answered and its ledger
// debit commits; A's match then completes. Builds used to run inside
// DB.Write, whose lock every query's debit takes.
func TestBuildOutsideWriteLock(t *testing.T) {
	ctx := context.Background()
	a := cohort.NewFixture(t)
	b := a.Another()
	for _, x := range []cohort.Fixture{a, b} {
		// 100 people in common: B's noisy size clears min_cohort_users.
		x.Upload(0, 0, 200)
		x.Upload(1, 100, 200)
	}
	b.Match()
	qs := &query.Service{DB: b.DB(), Cohorts: b.Service()}
	analyst := partners.Principal{KeyID: "k_analyst", PartnerID: b.Engineer(1).PartnerID, Role: wire.Analyst}
	spent := func() float64 {
		t.Helper()
		st, err := qs.Budgets(ctx, b.Collab())
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range st.Budgets {
			if x.PartnerID == analyst.PartnerID {
				return x.Spent
			}
		}
		t.Fatal("no budget for the analyst's partner")
		return 0
	}
	before := spent()

	m := a.Start()
	m, err := a.PutHalf(0, m, a.Reblind(0, m))
	if err != nil {
		t.Fatal(err)
	}
	second := a.Reblind(1, m)
	building, release := make(chan struct{}), make(chan struct{})
	a.SetMidBuild(func(string) {
		close(building)
		<-release
	})
	released := false
	unblock := func() {
		if !released {
			released = true
			close(release)
		}
	}
	defer unblock()
	type result struct {
		m   cohort.Match
		err error
	}
	built := make(chan result, 1)
	go func() {
		m, err := a.PutHalf(1, m, second)
		built <- result{m, err}
	}()
	<-building

	answered := make(chan error, 1)
	go func() {
		_, err := qs.Run(ctx, analyst, b.Collab(), wire.Request{SQL: "SELECT COUNT(*) FROM cohort", Epsilon: 0.5})
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("query on B: %v", err)
		}
		if got := spent(); got != before+0.5 {
			t.Errorf("B's analyst's partner spent %v after the query, want %v", got, before+0.5)
		}
		select {
		case <-built:
			t.Fatal("A's build finished while held")
		default:
		}
	case <-time.After(30 * time.Second):
		t.Error("a query on collaboration B waited for collaboration A's cohort build")
		unblock()
		<-answered
	}
	unblock()
	r := <-built
	if r.err != nil {
		t.Fatalf("A's second half: %v", r.err)
	}
	if r.m.State != wire.MatchDone || r.m.NoisySize == nil {
		t.Fatalf("A's match is %s (noisy size %v) after both halves", r.m.State, r.m.NoisySize)
	}
}
