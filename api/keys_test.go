package api_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cleanroom/cleanroom/client"
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
