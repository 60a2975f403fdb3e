package cohort_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/deletion"
	"github.com/cleanroom/cleanroom/psi"
)

// A match voided by a deletion while its cohort is built fails with the
// stale error, as when the deletion comes first, and leaves no tables of
// the build.
func TestDeletionDuringBuildVoidsMatch(t *testing.T) {
	ctx := context.Background()
	f := cohort.NewFixture(t)
	aa, ab := f.Upload(0, 0, 40), f.Upload(1, 20, 40)
	m := f.Start()
	m, err := f.PutHalf(0, m, f.Reblind(0, m))
	if err != nil {
		t.Fatal(err)
	}
	half := f.Reblind(1, m)
	// Someone of side a's audience, as its owner blinded them.
	var pid psi.Point
	var raw []byte
	if err := f.DB().SQL().QueryRow(`SELECT pid FROM ` + f.Table(aa) + ` LIMIT 1`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	copy(pid[:], raw)
	del := &deletion.Service{DB: f.DB(), Cohorts: f.Service()}
	if _, del.Signer, err = ed25519.GenerateKey(nil); err != nil {
		t.Fatal(err)
	}
	f.SetMidBuild(func(string) {
		f.SetMidBuild(nil)
		// Not waiting for the build: the deletion takes the write lock now.
		if _, err := del.DeleteIDs(ctx, f.Engineer(0), f.Collab(), "", []psi.Point{pid}, false); err != nil {
			t.Errorf("deletion during the build: %v", err)
		}
	})
	_, err = f.PutHalf(1, m, half)
	if err == nil || !strings.Contains(err.Error(), cohort.ErrStale(m.ID).Error()) {
		t.Fatalf("PutPoints after a deletion during the build: %v, want %v", err, cohort.ErrStale(m.ID))
	}
	f.WantTables(cohort.Sorted(f.Table(aa), f.Table(ab)))
}
