package cohort

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/psi"
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
	if m, err = f.s.PutPoints(f.ctx, f.eng[0], f.c, m, bytes.NewReader(f.reblind(0, m))); err != nil {
		t.Fatal(err)
	}
	// Side a's tokens stand in for the half that never arrived: only the
	// tables matter here.
	b, err := f.s.buildCohort(f.ctx, f.c, m, tokensTable(m.ID, "b"), tokensTable(m.ID, "b"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{b.people, b.table} {
		if !strings.HasPrefix(n, peopleTable(m.ID)+"_") && !strings.HasPrefix(n, cohortTable(m.ID)+"_") {
			t.Errorf("staging table %s is not named after its match", n)
		}
	}
	f.wantTables(sorted(aa.table, ab.table, pointsTable(m.ID, "a"), pointsTable(m.ID, "b"), tokensTable(m.ID, "b"), b.people, b.table))
	f.restart()
	f.wantTables(sorted(aa.table, ab.table, pointsTable(m.ID, "a"), pointsTable(m.ID, "b"), tokensTable(m.ID, "b")))
	m, err = f.s.GetMatch(f.ctx, f.db.SQL(), f.c.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = f.s.PutPoints(f.ctx, f.eng[1], f.c, m, bytes.NewReader(f.reblind(1, m))); err != nil {
		t.Fatal(err)
	}
	if m.State != wire.MatchDone {
		t.Fatalf("match is %s after both halves", m.State)
	}
	f.wantTables(liveTables(m, aa, ab))
}

// A match voided by a deletion while its cohort is built fails with the
// stale error, as when the deletion comes first, and leaves no tables of
// the build.
func TestDeletionDuringBuildVoidsMatch(t *testing.T) {
	f := newFixture(t)
	aa, ab := f.upload(0, 0, 40), f.upload(1, 20, 40)
	m, _, err := f.start(0)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = f.s.PutPoints(f.ctx, f.eng[0], f.c, m, bytes.NewReader(f.reblind(0, m))); err != nil {
		t.Fatal(err)
	}
	half := f.reblind(1, m)
	// Someone of side a's audience, as its owner blinded them.
	var pid psi.Point
	var raw []byte
	if err := f.db.SQL().QueryRow(`SELECT pid FROM ` + aa.table + ` LIMIT 1`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	copy(pid[:], raw)
	if _, f.s.Signer, err = ed25519.GenerateKey(nil); err != nil {
		t.Fatal(err)
	}
	f.s.midBuild = func(string) {
		f.s.midBuild = nil
		// Not waiting for the build: the deletion takes the write lock now.
		if _, err := f.s.DeleteIDs(f.ctx, f.eng[0], f.c, []psi.Point{pid}, false); err != nil {
			t.Errorf("deletion during the build: %v", err)
		}
	}
	_, err = f.s.PutPoints(f.ctx, f.eng[1], f.c, m, bytes.NewReader(half))
	if err == nil || !strings.Contains(err.Error(), errStale(m.ID).Error()) {
		t.Fatalf("PutPoints after a deletion during the build: %v, want %v", err, errStale(m.ID))
	}
	f.wantTables(sorted(aa.table, ab.table))
}
