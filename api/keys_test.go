package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

// TestLastAdminKeyStays: a partner's last admin key cannot be revoked
// (the operator could not issue another), with a 409 naming why and
// nothing changed; with a second admin key either may go, and of two
// admins revoking each other at once exactly one succeeds.
func TestLastAdminKeyStays(t *testing.T) {
	e := &env{t: t, dir: t.TempDir(), maxBody: 1 << 20}
	e.start()
	t.Cleanup(func() { e.srv.Close(); e.db.Close() })
	ctx := context.Background()
	cp, err := e.op.CreatePartner(ctx, "Third")
	if err != nil {
		t.Fatal(err)
	}
	first := client.New(e.srv.URL, cp.Secret)
	pid := cp.Partner.ID

	_, err = first.RevokeKey(ctx, pid, cp.AdminKey.ID)
	if !errors.Is(err, client.ErrLastAdminKey) || status(err) != 409 {
		t.Fatalf("revoking the partner's only admin key: %v, want 409 last_admin_key", err)
	}
	keys, err := first.ListKeys(ctx, pid)
	if err != nil || len(keys) != 1 || keys[0].RevokedAt != nil {
		t.Fatalf("after the refusal the first key must still work, unrevoked: %+v %v", keys, err)
	}
	// An engineer's key does not count as an admin.
	if _, err := first.CreateKey(ctx, pid, "engineer", "etl"); err != nil {
		t.Fatal(err)
	}
	if _, err := first.RevokeKey(ctx, pid, cp.AdminKey.ID); !errors.Is(err, client.ErrLastAdminKey) {
		t.Fatalf("with an engineer key beside it: %v, want last_admin_key", err)
	}

	second, err := first.CreateKey(ctx, pid, "admin", "second")
	if err != nil {
		t.Fatal(err)
	}
	admins := []*client.Client{first, client.New(e.srv.URL, second.Secret)}
	ids := []string{cp.AdminKey.ID, second.Key.ID}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { _, errs[i] = admins[i].RevokeKey(ctx, pid, ids[1-i]) })
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, client.ErrLastAdminKey):
			refused++
		case errors.Is(err, client.ErrUnauthorized):
			// The other revocation committed before this request was
			// authenticated: its key was already revoked, as if one
			// admin had simply gone first.
			refused++
		default:
			t.Errorf("concurrent revocation: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("two admins revoking each other at once: %d revoked, %d refused (%v), want one each", ok, refused, errs)
	}
	working := 0
	for _, a := range admins {
		if _, err := a.ListKeys(ctx, pid); err == nil {
			working++
		}
	}
	if working != 1 {
		t.Errorf("%d admin keys work after the race, want 1", working)
	}
}

// TestNamesRefuseControlCharacters: a partner's or collaboration's name,
// a key's label and a template's description are read in others'
// terminals; with a control character in them the request is refused
// with a 400 naming the field, and nothing is created.
func TestNamesRefuseControlCharacters(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	const hostile = "ok\x1b]0;pwned\x07\x1b[2J"
	refused := func(what string, err error, code wire.ErrorCode, field string) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != code || ce.Status != 400 || !strings.Contains(ce.Message, field+": character U+") {
			t.Errorf("%s: %v, want 400 %s naming %q and the character", what, err, code, field)
		}
	}
	_, err := e.op.CreatePartner(ctx, "Brand\u202eoC")
	refused("a partner named with a bidi override", err, wire.CodeInvalid, "name")
	_, err = e.brand.admin.CreateKey(ctx, e.brand.id, "analyst", hostile)
	refused("a key labelled with escapes", err, wire.CodeInvalid, "label")
	_, err = e.brand.admin.Propose(ctx, hostile, e.pub.id, nil)
	refused("a collaboration named with escapes", err, wire.CodeInvalid, "name")
	_, err = e.brand.admin.Propose(ctx, "fine", e.pub.id, json.RawMessage(`{"templates": [{"name": "t", "description": "a\u009b2J", "sql": "SELECT COUNT(*) FROM cohort", "params": []}]}`))
	refused("a template described with a C1 control", err, wire.CodeInvalidRules, "description")

	ps, err := e.op.ListPartners(ctx)
	if err != nil || len(ps) != 2 {
		t.Errorf("partners after the refusals: %d (%v), want the 2 there were", len(ps), err)
	}
	keys, err := e.brand.admin.ListKeys(ctx, e.brand.id)
	if err != nil || len(keys) != 4 {
		t.Errorf("keys after the refusals: %d (%v), want the 4 there were", len(keys), err)
	}
	cs, err := e.brand.admin.Collaborations(ctx)
	if err != nil || len(cs) != 1 {
		t.Errorf("collaborations after the refusals: %d (%v), want the 1 there was", len(cs), err)
	}
	// Printable text of any script is a name.
	if _, err := e.brand.admin.CreateKey(ctx, e.brand.id, "analyst", "Zoë's 分析 key 🎉"); err != nil {
		t.Errorf("a printable label: %v", err)
	}
}
