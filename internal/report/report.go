// Package report builds the two reports a clean room publishes: a
// collaboration's transparency report (for its partners, their auditors
// and the operator) and a partner's public privacy report. It decides
// what each reader may see of the other partner's data, and reads every
// section in one transaction, so a report is one state of the database;
// each section's rows come from the package that owns its table. The API
// parses requests and renders what this returns.
package report

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Service builds reports from one database.
type Service struct {
	DB      *store.DB
	Cohorts *cohort.Service
}

// Collaboration is co's transparency report for reader: what is held,
// what was done with it, and what was deleted. It tells each partner about
// the other's data only what the protocol already does: no exact sizes,
// consent mix or cohort counts; the noisy cohort sizes both saw are in it.
func (s *Service) Collaboration(ctx context.Context, reader partners.Principal, co wire.Collaboration, now time.Time) (wire.Report, error) {
	rep := wire.Report{Collaboration: co, GeneratedAt: now.UTC(), DataHeld: []wire.HeldData{}}
	err := s.DB.Read(ctx, func(tx *sql.Tx) error {
		for _, member := range co.Members() {
			held := wire.HeldData{PartnerID: member}
			tables, err := s.Cohorts.CurrentTables(ctx, tx, co.ID, member)
			if err != nil {
				return err
			}
			mix := map[string]int64{}
			for i, a := range tables {
				view := a.ViewFor(reader)
				if i == 0 {
					held.Audience = &view
				}
				held.Tables = append(held.Tables, view)
				if a.PartnerID == reader.PartnerID || reader.IsOperator() {
					m, err := s.Cohorts.ConsentMix(ctx, tx, a)
					if err != nil {
						return err
					}
					for _, p := range m {
						mix[p.Purpose] += p.Rows
					}
				}
			}
			for _, p := range slices.Sorted(maps.Keys(mix)) {
				held.ConsentRowsByPurpose = append(held.ConsentRowsByPurpose, wire.PurposeRows{Purpose: p, Rows: mix[p]})
			}
			rep.DataHeld = append(rep.DataHeld, held)
		}
		var err error
		if rep.Matches, err = reportMatches(ctx, tx, co.ID); err != nil {
			return err
		}
		if rep.QueriesByAnalyst, err = queriesByAnalyst(ctx, tx, co.ID); err != nil {
			return err
		}
		if rep.BudgetSpentByDay, err = spentByDay(ctx, tx, co.ID); err != nil {
			return err
		}
		if rep.RefusalsByReason, err = refusalsByReason(ctx, tx, co.ID); err != nil {
			return err
		}
		if rep.Deletions, err = reportDeletions(ctx, tx, co.ID); err != nil {
			return err
		}
		var own []string // nil: every partner's, for the operator
		if !reader.IsOperator() {
			own = []string{reader.PartnerID}
		}
		if rep.Honoured, err = honouredIn(ctx, tx, co.ID, own); err != nil {
			return err
		}
		// What a person in the cohort is exposed to: everything both
		// partners spent on this collaboration, matches included, over its
		// life.
		total, err := ledger.CollaborationSpent(ctx, tx, co.ID)
		if err != nil {
			return fmt.Errorf("report exposure: %w", err)
		}
		rep.Exposure = wire.Exposure{CollaborationEpsilonSpent: total.Epsilon(), CollaborationDeltaSpent: total.Delta()}
		rep.Words.Exposure = ExposureWords(rep.Exposure)
		return nil
	})
	return rep, err
}

// Privacy is partner partnerID's public privacy report: aggregates of its
// own use of its data in [since, until), for the people in it.
func (s *Service) Privacy(ctx context.Context, partnerID string, since, until, now time.Time) (wire.PrivacyReport, error) {
	var rep wire.PrivacyReport
	err := s.DB.Read(ctx, func(tx *sql.Tx) error {
		pa, err := partners.GetPartner(ctx, tx, partnerID)
		if err != nil {
			return err
		}
		rep = wire.PrivacyReport{PartnerID: pa.ID, PartnerName: pa.Name, Since: since, Until: until, GeneratedAt: now.UTC(),
			Collaborations: []wire.PrivacyCollaboration{}}
		cs, err := partners.ListCollaborations(ctx, tx, partners.Principal{PartnerID: pa.ID})
		if err != nil {
			return err
		}
		if rep.About, err = settingsOf(ctx, tx, pa.ID); err != nil {
			return err
		}
		for _, co := range cs {
			// Those that existed in the period and received the
			// partner's data in it. (The operator's partner lists every
			// collaboration, and is in none.)
			if !co.HasMember(pa.ID) || !co.CreatedAt.Before(until) || co.State == wire.StateDeleted && co.UpdatedAt.Before(since) {
				continue
			}
			got, err := receivedData(ctx, tx, co.ID, pa.ID, since, until)
			if err != nil {
				return err
			}
			if !got {
				continue
			}
			other := co.PartnerName
			if co.Partner == pa.ID {
				other = co.ProposerName
			}
			pc := wire.PrivacyCollaboration{Name: co.Name, PartnerName: other, Purpose: co.Rules.Purpose, State: co.State, Noise: co.Rules.Noise}
			total, err := ledger.CollaborationSpentBefore(ctx, tx, co.ID, until)
			if err != nil {
				return err
			}
			pc.EpsilonSpent, pc.DeltaSpent = total.Epsilon(), total.Delta()
			if pc.Queries, err = auditlog.Count(ctx, tx, co.ID, audit.QueryRun, since, until); err != nil {
				return err
			}
			if pc.Matches, err = auditlog.Count(ctx, tx, co.ID, audit.MatchComplete, since, until); err != nil {
				return err
			}
			rep.Collaborations = append(rep.Collaborations, pc)
		}
		// What a person in all of its collaborations was exposed to, and
		// the cap the partner puts on it.
		total, err := ledger.Exposure(ctx, tx, pa.ID, time.Time{}, until)
		if err != nil {
			return err
		}
		rep.TotalEpsilonSpent, rep.TotalDeltaSpent = total.Epsilon(), total.Delta()
		if rep.ExposureCap, err = ledger.CapStatus(ctx, tx, pa.ID, now); err != nil {
			return err
		}
		hs, err := honouredOf(ctx, tx, pa.ID, since, until)
		if err != nil {
			return err
		}
		var secs []int64
		for _, h := range hs {
			switch h.Kind {
			case wire.DeleteOptOut:
				rep.OptOutsHonoured++
			case wire.DeleteExpiry:
				rep.ExpiriesHonoured++
			default:
				rep.DeletionsHonoured++
			}
			rep.IdentifiersSubmitted += h.Identifiers
			secs = append(secs, h.Seconds)
		}
		rep.MedianSecondsToHonour = median(secs)
		PrivacyWords(&rep)
		return nil
	})
	return rep, err
}

// receivedData reports whether collaboration collabID held a table of
// partnerID's at some time in [since, until): uploaded before the end,
// not deleted before the start. A partner's own uploads are its own to
// know; nothing here depends on the other partner's data.
func receivedData(ctx context.Context, q store.Querier, collabID, partnerID string, since, until time.Time) (bool, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM audiences WHERE collab_id = ? AND partner_id = ? AND created_at < ?
		AND (deleted_at IS NULL OR deleted_at >= ?)`, collabID, partnerID, until.UTC(), since.UTC()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("report: data received: %w", err)
	}
	return n > 0, nil
}

// median of secs, nil for none.
func median(secs []int64) *int64 {
	if len(secs) == 0 {
		return nil
	}
	slices.Sort(secs)
	m := secs[len(secs)/2]
	if len(secs)%2 == 0 {
		m = (secs[len(secs)/2-1] + secs[len(secs)/2]) / 2
	}
	return &m
}
