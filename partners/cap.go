package partners

import (
	"context"
	"database/sql"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// SetExposureCap sets partnerID's cap on its people's exposure across
// all its collaborations (req's parts both left out: removes it), logged as
// partner.exposure_cap, an entry only the partner (and the operator)
// reads. Only the partner's own admin may: the cap protects its people,
// and no one else decides it. A cap under what already counts against
// it is allowed: every later charge is then refused. It returns the cap
// as its keys read it.
func (s *Service) SetExposureCap(ctx context.Context, tx *sql.Tx, actor Principal, partnerID string, req wire.ExposureCapRequest) (wire.ExposureCap, error) {
	if actor.IsOperator() {
		return wire.ExposureCap{}, errs.New(errs.Forbidden, "a partner's exposure cap is its own admin's to set, not the operator's")
	}
	if err := keyAdmin(actor, partnerID); err != nil {
		return wire.ExposureCap{}, err
	}
	if req.Refresh == "" {
		req.Refresh = wire.RefreshNone
	}
	if req.Refresh != wire.RefreshNone && req.Refresh != wire.RefreshMonthly {
		return wire.ExposureCap{}, invalidf("refresh: %q is not none (count every charge ever made) or monthly (the calendar month, UTC)", req.Refresh)
	}
	var c *ledger.Cap
	if req.Epsilon != nil || req.Delta != nil {
		c = &ledger.Cap{Refresh: req.Refresh, SetAt: s.now()}
		if e := req.Epsilon; e != nil {
			u, err := wire.EpsilonUnits(*e)
			if err != nil || u == 0 {
				return wire.ExposureCap{}, invalidf("epsilon: %v is not a cap: give a positive whole number of millionths (such as 5), or leave it out for no cap on epsilon", *e)
			}
			c.Epsilon = &u
		}
		if d := req.Delta; d != nil {
			u, err := wire.DeltaUnits(*d)
			if err != nil || *d > 1 {
				return wire.ExposureCap{}, invalidf("delta: %v is not a cap: give a whole number of units of %v in [0, 1] (such as 1e-4; 0 allows only answers that spend no delta), or leave it out for no cap on delta", *d, wire.DeltaUnit)
			}
			c.Delta = &u
		}
	}
	if err := ledger.SetCap(ctx, tx, partnerID, c); err != nil {
		return wire.ExposureCap{}, err
	}
	details := map[string]any{"epsilon": req.Epsilon, "delta": req.Delta, "refresh": req.Refresh}
	if c == nil {
		details = map[string]any{"removed": true}
	}
	if _, err := auditlog.Append(ctx, tx, actor.KeyID, partnerID, "", audit.PartnerExposureCap, details); err != nil {
		return wire.ExposureCap{}, err
	}
	return ledger.CapStatus(ctx, tx, partnerID, s.now())
}

// ExposureCap returns partnerID's exposure cap and what counts against it
// at now, for the partner's own keys (any role: an analyst sees why its
// questions may be refused) and the operator.
func ExposureCap(ctx context.Context, q store.Querier, actor Principal, partnerID string, now time.Time) (wire.ExposureCap, error) {
	if !actor.IsOperator() && actor.PartnerID != partnerID {
		return wire.ExposureCap{}, errs.New(errs.NotFound, "partner %s", partnerID)
	}
	if _, err := GetPartner(ctx, q, partnerID); err != nil {
		return wire.ExposureCap{}, err
	}
	return ledger.CapStatus(ctx, q, partnerID, now)
}
