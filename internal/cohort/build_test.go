package cohort

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// A cohort built but not yet published (the server stopped between the
// build's commit and the Write that records it) leaves only staging
// tables, which start-up drops; the match completes when the half is sent
// again.
func TestUnpublishedBuildDroppedAtStart(t *testing.T) {
	f := newFixture(t)
	aa, ab := f.upload(0, 0, 40), f.upload(1, 20, 40)
	m, _, err := f.start(0)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = f.s.PutPoints(f.ctx, f.eng[0], f.c, m, f.key[0].Fingerprint(), bytes.NewReader(f.reblind(0, m))); err != nil {
		t.Fatal(err)
	}
	// Side a's tokens stand in for the half that never arrived: only the
	// tables matter here.
	b, err := f.s.buildCohort(f.ctx, f.c, m, tokensTable(m.ID, "b"), tokensTable(m.ID, "b"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range b.staged() {
		if !strings.HasPrefix(n, peopleTable(m.ID)+"_") && !strings.HasPrefix(n, "clink_"+m.ID+"_") {
			t.Errorf("staging table %s is not named after its match", n)
		}
	}
	f.wantTables(sorted(append([]string{aa.table, ab.table, pointsTable(m.ID, "a"), pointsTable(m.ID, "b"), tokensTable(m.ID, "b")}, b.staged()...)...))
	f.restart()
	f.wantTables(sorted(aa.table, ab.table, pointsTable(m.ID, "a"), pointsTable(m.ID, "b"), tokensTable(m.ID, "b")))
	m, err = f.s.GetMatch(f.ctx, f.db.SQL(), f.c.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = f.s.PutPoints(f.ctx, f.eng[1], f.c, m, f.key[1].Fingerprint(), bytes.NewReader(f.reblind(1, m))); err != nil {
		t.Fatal(err)
	}
	if m.State != wire.MatchDone {
		t.Fatalf("match is %s after both halves", m.State)
	}
	f.wantTables(liveTables(m, aa, ab))
}
