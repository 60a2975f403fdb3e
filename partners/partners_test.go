package partners

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// world is a database with the operator and two partners, each with an
// admin key.
type world struct {
	t          *testing.T
	ctx        context.Context
	db         *store.DB
	ps         *Service
	op         Principal
	brand, pub Principal
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{t: t, ctx: ctx, db: db, ps: &Service{}}
	var secret string
	w.write(func(tx *sql.Tx) (err error) { secret, err = w.ps.EnsureOperator(ctx, tx); return err })
	if w.op, err = Authenticate(ctx, db.SQL(), secret); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name string
		dst  *Principal
	}{{"Brand Co", &w.brand}, {"Publisher", &w.pub}} {
		var key string
		w.write(func(tx *sql.Tx) (err error) { _, _, key, err = w.ps.CreatePartner(ctx, tx, w.op, p.name); return err })
		if *p.dst, err = Authenticate(ctx, db.SQL(), key); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) write(fn func(tx *sql.Tx) error) {
	w.t.Helper()
	if err := w.db.Write(w.ctx, fn); err != nil {
		w.t.Fatal(err)
	}
}

// try runs fn in a write transaction and returns its error.
func (w *world) try(fn func(tx *sql.Tx) error) error { return w.db.Write(w.ctx, fn) }

func TestAuthenticateRefusesAlike(t *testing.T) {
	w := newWorld(t)
	var k wire.Key
	var secret string
	w.write(func(tx *sql.Tx) (err error) {
		k, secret, err = w.ps.CreateKey(w.ctx, tx, w.brand, w.brand.PartnerID, wire.Analyst, "analyst")
		return err
	})
	p, err := Authenticate(w.ctx, w.db.SQL(), secret)
	if err != nil || p.KeyID != k.ID || p.Role != wire.Analyst || p.PartnerID != w.brand.PartnerID {
		t.Fatalf("a new key: %+v %v", p, err)
	}
	w.write(func(tx *sql.Tx) error {
		_, err := w.ps.RevokeKey(w.ctx, tx, w.brand, w.brand.PartnerID, k.ID)
		return err
	})
	id, _, _ := strings.Cut(strings.TrimPrefix(secret, keyPrefix), ".")
	for _, bad := range []string{secret, secret + "x", "", "crk_", keyPrefix + id, "Bearer " + secret, keyPrefix + "k_nope.secret"} {
		if _, err := Authenticate(w.ctx, w.db.SQL(), bad); err != errs.Unauthorized {
			t.Errorf("key %q: %v, want the one errs.Unauthorized", bad, err)
		}
	}
}

func TestKeysAreTheirPartnersAdmins(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		actor Principal
		kind  *errs.Kind
	}{
		{w.op, errs.Forbidden}, // the operator makes only the first key
		{w.pub, errs.NotFound}, // another partner's keys do not exist for it
		{Principal{KeyID: "k", PartnerID: w.brand.PartnerID, Role: wire.Analyst}, errs.Forbidden},
	} {
		err := w.try(func(tx *sql.Tx) error {
			_, _, err := w.ps.CreateKey(w.ctx, tx, c.actor, w.brand.PartnerID, wire.Analyst, "x")
			return err
		})
		if errs.KindOf(err) != c.kind {
			t.Errorf("%+v creates a key of Brand Co: %v, want %s", c.actor, err, c.kind)
		}
	}
	err := w.try(func(tx *sql.Tx) error { _, _, _, err := w.ps.CreatePartner(w.ctx, tx, w.op, "brand co"); return err })
	if !errors.Is(err, errs.Conflict) {
		t.Errorf("a second partner named alike: %v", err)
	}
}

// TestRulesLifecycle: a proposal is active once both approve; a change
// goes back to proposed with the approved rules beside it; the other
// partner's rejection restores them as a new version both approve.
func TestRulesLifecycle(t *testing.T) {
	w := newWorld(t)
	var c wire.Collaboration
	w.write(func(tx *sql.Tx) (err error) {
		c, err = w.ps.Propose(w.ctx, tx, w.brand, "Spring", w.pub.PartnerID, wire.DefaultRules())
		return err
	})
	if c.State != wire.StateProposed || c.RulesVersion != 1 {
		t.Fatalf("proposed: %+v", c)
	}
	if err := w.try(func(tx *sql.Tx) error { _, err := w.ps.Approve(w.ctx, tx, w.pub, c.ID, 2); return err }); errs.KindOf(err) != errs.Conflict {
		t.Errorf("approving a version that is not the current one: %v", err)
	}
	w.write(func(tx *sql.Tx) (err error) { c, err = w.ps.Approve(w.ctx, tx, w.pub, c.ID, 1); return err })
	if c.State != wire.StateActive {
		t.Fatalf("approved by both: %s", c.State)
	}
	changed := c.Rules
	changed.MinGroupUsers++
	w.write(func(tx *sql.Tx) (err error) { c, err = w.ps.ChangeRules(w.ctx, tx, w.brand, c.ID, changed); return err })
	if c.State != wire.StateProposed || c.RulesVersion != 2 || c.ApprovedRules == nil || c.ApprovedRules.MinGroupUsers != changed.MinGroupUsers-1 {
		t.Fatalf("changed: %+v", c)
	}
	if err := w.try(func(tx *sql.Tx) error { _, err := w.ps.Reject(w.ctx, tx, w.brand, c.ID, 2); return err }); errs.KindOf(err) != errs.Conflict {
		t.Errorf("the proposer rejects its own change: %v", err)
	}
	w.write(func(tx *sql.Tx) (err error) { c, err = w.ps.Reject(w.ctx, tx, w.pub, c.ID, 2); return err })
	if c.State != wire.StateActive || c.RulesVersion != 3 || c.Rules.MinGroupUsers != changed.MinGroupUsers-1 {
		t.Fatalf("rejected: %+v", c)
	}
	got, err := GetCollaboration(w.ctx, w.db.SQL(), c.ID, w.brand)
	if err != nil || got.RulesVersion != 3 || got.State != wire.StateActive || len(got.ApprovedBy) != 2 {
		t.Fatalf("stored: %+v %v", got, err)
	}
	outsider := Principal{PartnerID: "p_other", Role: wire.Admin}
	if _, err := GetCollaboration(w.ctx, w.db.SQL(), c.ID, outsider); errs.KindOf(err) != errs.NotFound {
		t.Errorf("an outsider reads the collaboration: %v", err)
	}
}

func TestBadRulesChangeNothing(t *testing.T) {
	w := newWorld(t)
	r := wire.DefaultRules()
	r.Queriers = []string{"p_stranger"}
	err := w.try(func(tx *sql.Tx) error {
		_, err := w.ps.Propose(w.ctx, tx, w.brand, "Spring", w.pub.PartnerID, r)
		return err
	})
	if !errors.Is(err, errs.InvalidRules) || !strings.Contains(err.Error(), "queriers") {
		t.Fatalf("a stranger among the queriers: %v", err)
	}
	cs, err := ListCollaborations(w.ctx, w.db.SQL(), w.brand)
	if err != nil || len(cs) != 0 {
		t.Errorf("a refused proposal left %d collaborations (%v)", len(cs), err)
	}
	if _, err := ParseRules([]byte(`{"epsilon_budget": -1}`)); !errors.Is(err, errs.InvalidRules) {
		t.Errorf("negative budget: %v", err)
	}
}

// TestServiceClock: what the service records is stamped by its clock.
func TestServiceClock(t *testing.T) {
	w := newWorld(t)
	at := time.Date(2030, 1, 2, 3, 4, 5, 678000, time.UTC)
	w.ps.Now = func() time.Time { return at }
	var c wire.Collaboration
	w.write(func(tx *sql.Tx) (err error) {
		c, err = w.ps.Propose(w.ctx, tx, w.brand, "Clocked", w.pub.PartnerID, wire.DefaultRules())
		return err
	})
	got, err := GetCollaboration(w.ctx, w.db.SQL(), c.ID, w.brand)
	if err != nil || !got.CreatedAt.Equal(at) || !got.UpdatedAt.Equal(at) {
		t.Errorf("created %v, updated %v (%v), want %v", got.CreatedAt, got.UpdatedAt, err, at)
	}
}
