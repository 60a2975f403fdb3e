package query

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// TestBurstsRefusedBeforeWork: a key may have MaxRunningPerKey questions
// at work; and a question is admitted only if the budget covers it beside
// the charges its side's running questions hold, so a burst is refused
// before reading data instead of after. Each place and reservation comes
// back when its question ends.
func TestBurstsRefusedBeforeWork(t *testing.T) {
	ctx := context.Background()
	s := &Service{DB: openDB(t, t.TempDir()), MaxRunningPerKey: 2}
	// The collaboration charged: the ledger checks both partners' exposure caps.
	if _, err := s.DB.SQL().Exec(`INSERT INTO collaborations (id, name, proposer, partner, rules, rules_version, approved_by, state, created_at, updated_at)
		VALUES ('c_1', 'c', 'p_brand', 'p_pub', '{}', 1, '[]', 'active', now(), now())`); err != nil {
		t.Fatal(err)
	}
	k1 := partners.Principal{KeyID: "k_1", PartnerID: "p_brand", Role: wire.Analyst}
	k2 := partners.Principal{KeyID: "k_2", PartnerID: "p_brand", Role: wire.Analyst}
	other := partners.Principal{KeyID: "k_3", PartnerID: "p_pub", Role: wire.Analyst}
	charge := func(p partners.Principal, eps float64) ledger.Charge {
		return ledger.Charge{CollabID: "c_1", PartnerID: p.PartnerID, Kind: ledger.KindQuery, Epsilon: eps, Delta: 1e-7,
			Budget: ledger.Budget{Epsilon: 1, Delta: 1e-5, Refresh: wire.RefreshNone}}
	}
	code := func(err error) wire.ErrorCode {
		if err == nil {
			return ""
		}
		return errs.KindOf(err).Code()
	}
	done1, err := s.begin(ctx, k1, charge(k1, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	done2, err := s.begin(ctx, k1, charge(k1, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	// A third question of the same key waits for none: refused.
	if _, err := s.begin(ctx, k1, charge(k1, 0.1)); code(err) != wire.CodeTooManyQueries || !strings.Contains(err.Error(), "2 questions running") {
		t.Errorf("a third question of one key: %v", err)
	}
	// Another key of the same side: its places are its own, but the
	// budget holds 0.6 for the two running, so 0.5 more is refused and
	// 0.4 fits.
	if _, err := s.begin(ctx, k2, charge(k2, 0.5)); code(err) != wire.CodeBudgetExhausted || !strings.Contains(err.Error(), "still running, which hold epsilon 0.6") {
		t.Errorf("a question the budget covers only without the running ones: %v", err)
	}
	done3, err := s.begin(ctx, k2, charge(k2, 0.4))
	if err != nil {
		t.Errorf("a question that fits beside the running ones: %v", err)
	}
	// The other partner's budget is its own.
	if done4, err := s.begin(ctx, other, charge(other, 0.9)); err != nil {
		t.Errorf("the other side's question: %v", err)
	} else {
		done4()
	}
	// Ended questions give back their places and reservations.
	done1()
	done2()
	done3()
	if len(s.running) != 0 || len(s.held) != 0 {
		t.Errorf("after every question ended: running %v, held %v", s.running, s.held)
	}
	if done, err := s.begin(ctx, k1, charge(k1, 1)); err != nil {
		t.Errorf("the whole budget, nothing running: %v", err)
	} else {
		done()
	}
}

// TestBurstPastACapRefusedBeforeWork: the other partner's exposure cap
// counts the questions still running too; the refusal says so.
func TestBurstPastACapRefusedBeforeWork(t *testing.T) {
	ctx := context.Background()
	s := &Service{DB: openDB(t, t.TempDir())}
	if _, err := s.DB.SQL().Exec(`INSERT INTO partners VALUES ('p_brand', 'Brand', now()), ('p_pub', 'Publisher', now());
		INSERT INTO collaborations (id, name, proposer, partner, rules, rules_version, approved_by, state, created_at, updated_at)
		VALUES ('c_1', 'c', 'p_brand', 'p_pub', '{}', 1, '[]', 'active', now(), now())`); err != nil {
		t.Fatal(err)
	}
	capped := int64(500_000)
	if err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		return ledger.SetCap(ctx, tx, "p_pub", &ledger.Cap{Epsilon: &capped, Refresh: wire.RefreshNone, SetAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	k := partners.Principal{KeyID: "k_1", PartnerID: "p_brand", Role: wire.Analyst}
	ch := ledger.Charge{CollabID: "c_1", PartnerID: "p_brand", Kind: ledger.KindQuery, Epsilon: 0.3,
		Budget: ledger.Budget{Epsilon: 10, Delta: 1e-5, Refresh: wire.RefreshNone}}
	done, err := s.begin(ctx, k, ch)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.begin(ctx, k, ch)
	if errs.KindOf(err) != errs.ExposureCapExceeded || !strings.Contains(err.Error(), "partner Publisher") || !strings.Contains(err.Error(), "still running, which hold epsilon 0.3") {
		t.Errorf("a second question past the publisher's cap beside the first: %v", err)
	}
	done()
	if d, err := s.begin(ctx, k, ch); err != nil {
		t.Errorf("once the first ended: %v", err)
	} else {
		d()
	}
}
