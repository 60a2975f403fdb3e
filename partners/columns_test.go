package partners

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

// tablesRules declares one table for each party: the proposer's
// customers with column mine, the partner's audience with column theirs.
func tablesRules(mine, theirs string) wire.Rules {
	r := wire.DefaultRules()
	r.Tables = []wire.TableRule{
		{Party: wire.PartyProposer, Name: "customers", Columns: []wire.ColumnRule{{Name: mine, Role: wire.RoleDimension}}},
		{Party: wire.PartyPartner, Name: "audience", Columns: []wire.ColumnRule{{Name: theirs, Role: wire.RoleDimension}}},
	}
	return r
}

// Partners "Brand" and "Brand Co": Brand's co_region and Brand Co's
// region would both be brand_co_region. Proposing or changing to such
// rules is refused naming both columns; the stored rules stay; columns
// that do not collide keep their partners' prefixes whatever else is
// declared.
func TestColumnsThatWouldCollideAreRefusedWhenProposed(t *testing.T) {
	w := newWorld(t)
	var brand, brandDashCo Principal
	brandCo := w.brand // "Brand Co"
	for _, p := range []struct {
		name string
		dst  *Principal
	}{{"Brand", &brand}, {"Brand-Co", &brandDashCo}} {
		var key string
		w.write(func(tx *sql.Tx) (err error) { _, _, key, err = w.ps.CreatePartner(w.ctx, tx, w.op, p.name); return err })
		var err error
		if *p.dst, err = Authenticate(w.ctx, w.db.SQL(), key); err != nil {
			t.Fatal(err)
		}
	}
	clash := func(err error) {
		t.Helper()
		if !errors.Is(err, errs.InvalidRules) {
			t.Fatalf("colliding columns: %v, want %v", err, errs.InvalidRules)
		}
		for _, want := range []string{"brand_co_region", "Brand's column co_region (table customers", "Brand Co's column region (table audience"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal %q does not say %q", err, want)
			}
		}
	}
	clash(w.try(func(tx *sql.Tx) error {
		_, err := w.ps.Propose(w.ctx, tx, brand, "Spring", brandCo.PartnerID, tablesRules("co_region", "region"))
		return err
	}))
	if cs, err := ListCollaborations(w.ctx, w.db.SQL(), brand); err != nil || len(cs) != 0 {
		t.Errorf("a refused proposal left %d collaborations (%v)", len(cs), err)
	}

	var c wire.Collaboration
	w.write(func(tx *sql.Tx) (err error) {
		c, err = w.ps.Propose(w.ctx, tx, brand, "Spring", brandCo.PartnerID, tablesRules("co_tier", "region"))
		return err
	})
	clash(w.try(func(tx *sql.Tx) error {
		_, err := w.ps.ChangeRules(w.ctx, tx, brandCo, c.ID, tablesRules("co_region", "region"))
		return err
	}))
	got, err := GetCollaboration(w.ctx, w.db.SQL(), c.ID, brand)
	if err != nil || got.RulesVersion != 1 || got.Rules.Tables[0].Columns[0].Name != "co_tier" {
		t.Errorf("a refused change changed the rules: %+v %v", got.Rules.Tables, err)
	}

	n, err := NamingOf(w.ctx, w.db.SQL(), brand.PartnerID, brandCo.PartnerID)
	if err != nil {
		t.Fatal(err)
	}
	names, err := n.Names(DeclaredColumns(got.Rules))
	if err != nil || strings.Join(names, ",") != "brand_co_tier,brand_co_region" {
		t.Errorf("names %v (%v), want brand_co_tier,brand_co_region", names, err)
	}
	// One party's two tables with a column of one name.
	_, err = n.Names([]TableColumn{{Table: "customers", Column: "region"}, {Table: "orders", Column: "region"}})
	if err == nil || !strings.Contains(err.Error(), "Brand's tables customers and orders both have column region") {
		t.Errorf("one party's column twice: %v", err)
	}
	// Names that give one prefix: a_ and b_, decided by the names alone.
	same, err := NamingOf(w.ctx, w.db.SQL(), brandCo.PartnerID, brandDashCo.PartnerID)
	if err != nil || same.Prefixes != [2]string{"a_", "b_"} {
		t.Errorf("two partners named alike: %+v %v", same, err)
	}
}
