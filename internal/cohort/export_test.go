package cohort

import (
	"bytes"
	"database/sql"
	"testing"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// Fixture is the package's test fixture for the external tests of this
// directory (package cohort_test), which may import packages that import
// cohort, such as query.
type Fixture struct{ f *fixture }

// NewFixture is newFixture.
func NewFixture(t *testing.T) Fixture { return Fixture{newFixture(t)} }

// Another returns a second collaboration between the same two partners,
// in the same database and service, with its own keys.
func (x Fixture) Another() Fixture {
	f := *x.f
	f.t.Helper()
	err := f.db.Write(f.ctx, func(tx *sql.Tx) error {
		admin := func(i int) partners.Principal {
			return partners.Principal{KeyID: "k_admin_" + f.eng[i].PartnerID, PartnerID: f.eng[i].PartnerID, Role: wire.Admin}
		}
		c, err := (&partners.Service{}).Propose(f.ctx, tx, admin(0), "another", f.eng[1].PartnerID, f.c.Rules)
		if err != nil {
			return err
		}
		f.c, err = (&partners.Service{}).Approve(f.ctx, tx, admin(1), c.ID, c.RulesVersion)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range f.key {
		if f.key[i], err = psi.GenerateKey(nil); err != nil {
			f.t.Fatal(err)
		}
	}
	return Fixture{&f}
}

func (x Fixture) DB() *store.DB                         { return x.f.db }
func (x Fixture) Service() *Service                     { return x.f.s }
func (x Fixture) Collab() wire.Collaboration            { return x.f.c }
func (x Fixture) Engineer(i int) partners.Principal     { return x.f.eng[i] }
func (x Fixture) Upload(i, first, n int) Audience       { return x.f.upload(i, first, n) }
func (x Fixture) Match() Match                          { return x.f.match() }
func (x Fixture) Reblind(i int, m Match) []byte         { return x.f.reblind(i, m) }
func (x Fixture) SetMidBuild(hook func(matchID string)) { x.f.s.midBuild = hook }

// Start starts a match as side 0's engineer.
func (x Fixture) Start() Match {
	x.f.t.Helper()
	m, _, err := x.f.start(0)
	if err != nil {
		x.f.t.Fatal(err)
	}
	return m
}

// PutHalf sends side i's re-blinding of m's points.
func (x Fixture) PutHalf(i int, m Match, half []byte) (Match, error) {
	return x.f.s.PutPoints(x.f.ctx, x.f.eng[i], x.f.c, m, x.f.key[i].Fingerprint(), bytes.NewReader(half))
}

func (x Fixture) Table(a Audience) string  { return a.table }
func (x Fixture) WantTables(want []string) { x.f.wantTables(want) }

var (
	ErrStale = errStale
	Sorted   = sorted
)
