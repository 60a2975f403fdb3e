package deletion

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// MaxDeleteIdentifiers bounds one deletion or opt-out request.
const MaxDeleteIdentifiers = 100000

// deletionAction is the audit action that records each kind of deletion.
var deletionAction = map[wire.DeletionKind]audit.Action{
	wire.DeleteIdentifiers:   audit.DeletionIdentifiers,
	wire.DeleteOptOut:        audit.DeletionOptOut,
	wire.DeleteAudience:      audit.DeletionAudience,
	wire.DeleteCollaboration: audit.DeletionCollaboration,
	wire.DeleteExpiry:        audit.DeletionExpiry,
}

// Signer signs deletion receipts; without one, deletions are refused,
// since a deletion without proof is not what the API promises.
func (s *Service) signer() (ed25519.PrivateKey, error) {
	if s.Signer == nil {
		return nil, errors.New("cohort: no signing key configured for deletion receipts")
	}
	return s.Signer, nil
}

// finishReceipt writes the deletion's audit entry and its receipt in tx.
// Both partners' auditors read that a deletion happened (kind, receipt,
// what was submitted); the counts of rows and tokens deleted describe the
// receiving partner's data and are in the entry's private part.
func (s *Service) finishReceipt(ctx context.Context, tx *sql.Tx, actorKey string, r audit.Receipt, public map[string]any) (audit.Receipt, error) {
	priv, err := s.signer()
	if err != nil {
		return r, err
	}
	r.ID = partners.NewID("r_")
	r.At = s.now().UTC().Truncate(time.Microsecond)
	details := map[string]any{"receipt_id": r.ID, "audience_id": r.AudienceID, "identifiers": r.Identifiers, "matches": r.Matches}
	for k, v := range public {
		details[k] = v
	}
	action, ok := deletionAction[wire.DeletionKind(r.Kind)]
	if !ok {
		return r, fmt.Errorf("cohort: no audit action for deletion kind %q", r.Kind)
	}
	e, err := auditlog.AppendPrivate(ctx, tx, actorKey, r.PartnerID, r.CollabID, action, details,
		map[string]any{"audience_rows": r.AudienceRows, "table_rows": r.TableRows, "tokens": r.Tokens})
	if err != nil {
		return r, err
	}
	r.AuditSeq, r.AuditHash = e.Seq, e.Hash
	r = audit.SignReceipt(priv, r)
	body, err := json.Marshal(r)
	if err != nil {
		return r, fmt.Errorf("cohort: receipt: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO receipts VALUES (?, ?, ?, ?, ?)`, r.ID, r.CollabID, r.PartnerID, string(body), r.At); err != nil {
		return r, err
	}
	return r, nil
}

// Receipts returns the deletion receipts of a collaboration that partnerID
// holds (every partner's when partnerID is empty: the operator). A receipt
// describes its partner's own data, so the other partner never reads it.
func (s *Service) Receipts(ctx context.Context, collabID, partnerID string) ([]json.RawMessage, error) {
	q, args := `SELECT CAST(body AS VARCHAR) FROM receipts WHERE collab_id = ?`, []any{collabID}
	if partnerID != "" {
		q, args = q+` AND partner_id = ?`, append(args, partnerID)
	}
	bodies, err := store.QueryStrings(ctx, s.DB.SQL(), q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(bodies))
	for i, b := range bodies {
		out[i] = json.RawMessage(b)
	}
	return out, nil
}

// DeleteIDs removes people, given as points blinded with the partner's
// key, from its audience in collab, from every cohort of the collaboration
// and from its tokens, in one transaction, and returns the signed receipt.
// With optOut the points are also kept out of later uploads and matches.
// keyFingerprint is the blinding key's (psi.Key.Fingerprint): another key
// than the party's tables' is refused (errs.KeyMismatch) and nothing is
// done or logged; "" is not checked.
func (s *Service) DeleteIDs(ctx context.Context, actor partners.Principal, c wire.Collaboration, keyFingerprint string, pids []psi.Point, optOut bool) (audit.Receipt, error) {
	requested := s.requestedNow()
	if len(pids) == 0 {
		return audit.Receipt{}, errs.New(errs.Invalid, "no identifiers given")
	}
	if len(pids) > MaxDeleteIdentifiers {
		return audit.Receipt{}, errs.New(errs.Invalid, "%d identifiers; send at most %d a request", len(pids), MaxDeleteIdentifiers)
	}
	for i := range pids {
		if err := pids[i].Validate(); err != nil {
			return audit.Receipt{}, errs.New(errs.Invalid, "identifier %d: %v", i+1, err)
		}
	}
	kind := wire.DeleteIdentifiers
	if optOut {
		kind = wire.DeleteOptOut
	}
	r := audit.Receipt{Kind: string(kind), CollabID: c.ID, PartnerID: actor.PartnerID, Identifiers: int64(len(pids)), Cohorts: audit.CohortsRowsRemoved,
		RequestedAt: requested}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := s.Cohorts.CheckIdentifiersKey(ctx, tx, c.ID, actor.PartnerID, keyFingerprint); err != nil {
			return err
		}
		tmp := "del_" + strings.ToLower(partners.NewID(""))
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE `+tmp+` (pid BLOB)`); err != nil {
			return err
		}
		defer tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+tmp)
		for start := 0; start < len(pids); start += 500 {
			end := min(start+500, len(pids))
			q := `INSERT INTO ` + tmp + ` VALUES ` + strings.TrimSuffix(strings.Repeat("(?),", end-start), ",")
			args := make([]any, 0, end-start)
			for i := start; i < end; i++ {
				args = append(args, pids[i][:])
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		if optOut {
			if _, err := tx.ExecContext(ctx, `INSERT INTO optouts SELECT ?, ?, pid, ? FROM `+tmp+
				` WHERE pid NOT IN (SELECT pid FROM optouts WHERE collab_id = ? AND partner_id = ?)`,
				c.ID, actor.PartnerID, s.now().UTC(), c.ID, actor.PartnerID); err != nil {
				return err
			}
		}
		rows, tokens, err := s.Cohorts.ForgetPeople(ctx, tx, c, actor.PartnerID, tmp)
		if err != nil {
			return err
		}
		r.TableRows, r.Tokens = rows, tokens
		for _, n := range rows {
			r.AudienceRows += n
		}
		r, err = s.finishReceipt(ctx, tx, actor.KeyID, r, nil)
		return err
	})
	return r, err
}

// requestedNow is a receipt's RequestedAt for a request arriving now.
func (s *Service) requestedNow() *time.Time {
	t := s.now().UTC().Truncate(time.Microsecond)
	return &t
}

// DeleteAudienceByID deletes an audience and every cohort built from it.
// kind is DeleteAudience, or DeleteExpiry for the retention janitor.
func (s *Service) DeleteAudienceByID(ctx context.Context, actor partners.Principal, c wire.Collaboration, audienceID string, kind wire.DeletionKind) (audit.Receipt, error) {
	r := audit.Receipt{Kind: string(kind), CollabID: c.ID, AudienceID: audienceID, Cohorts: audit.CohortsDeleted, RequestedAt: s.requestedNow()}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		a, err := s.Cohorts.AudienceByID(ctx, tx, audienceID)
		if err != nil || a.CollabID != c.ID || (kind == wire.DeleteAudience && a.PartnerID != actor.PartnerID) {
			return errs.New(errs.NotFound, "audience %s", audienceID)
		}
		if kind == wire.DeleteExpiry {
			// An expiry was due when the retention ran out.
			var due time.Time
			if err := tx.QueryRowContext(ctx, `SELECT min(expires_at) FROM audience_retention WHERE audience_id = ?`, a.ID).Scan(&due); err == nil {
				due = due.UTC()
				r.RequestedAt = &due
			}
		}
		r.PartnerID = a.PartnerID
		if r.AudienceRows, err = s.Cohorts.DropAudience(ctx, tx, a); err != nil {
			return err
		}
		r.TableRows = map[string]int64{a.Table: r.AudienceRows}
		n, tokens, err := s.Cohorts.DropMatches(ctx, tx, c, a.ID, wire.MatchDeleted)
		if err != nil {
			return err
		}
		r.Matches, r.Tokens = n, tokens[a.PartnerID]
		r, err = s.finishReceipt(ctx, tx, actor.KeyID, r, nil)
		return err
	})
	return r, err
}

// DeleteCollaboration deletes both parties' audiences and every match and
// cohort of a collaboration, and ends it for good. Each partner gets a
// receipt of what was deleted of its own data; the caller's is returned.
func (s *Service) DeleteCollaboration(ctx context.Context, actor partners.Principal, c wire.Collaboration) (audit.Receipt, error) {
	var out audit.Receipt
	requested := s.requestedNow()
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		cur, err := partners.GetCollaboration(ctx, tx, c.ID, actor)
		if err != nil {
			return err
		}
		if cur.State == wire.StateDeleted {
			return errs.New(errs.Conflict, "collaboration %s is already deleted", c.ID)
		}
		receipts := map[string]*audit.Receipt{}
		for _, p := range c.Members() {
			receipts[p] = &audit.Receipt{Kind: string(wire.DeleteCollaboration), CollabID: c.ID, PartnerID: p, Cohorts: audit.CohortsDeleted, RequestedAt: requested}
		}
		rows, err := s.Cohorts.DropAudiences(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		for p, byTable := range rows {
			receipts[p].TableRows = byTable
			for _, n := range byTable {
				receipts[p].AudienceRows += n
			}
		}
		n, tokens, err := s.Cohorts.DropMatches(ctx, tx, c, "", wire.MatchDeleted)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE collaborations SET state = ?, updated_at = ? WHERE id = ?`, wire.StateDeleted, s.now().UTC(), c.ID); err != nil {
			return err
		}
		for _, p := range c.Members() {
			r := receipts[p]
			r.Matches, r.Tokens = n, tokens[p]
			key, public := actor.KeyID, map[string]any(nil)
			if p != actor.PartnerID {
				// The other partner's data went too: it gets its own receipt.
				key, public = "system", map[string]any{"requested_by": actor.PartnerID}
			}
			got, err := s.finishReceipt(ctx, tx, key, *r, public)
			if err != nil {
				return err
			}
			if p == actor.PartnerID {
				out = got
			}
		}
		return nil
	})
	return out, err
}

// Expire deletes every audience whose retention has passed, each with its
// receipt in the log. It is safe to run at any time and after a restart:
// it only reads the database.
func (s *Service) Expire(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.DB.SQL().QueryContext(ctx, `SELECT a.id, a.collab_id FROM audiences a JOIN audience_retention r ON r.audience_id = a.id
		WHERE a.deleted_at IS NULL AND r.expires_at <= ?`, now.UTC())
	if err != nil {
		return 0, err
	}
	type due struct{ aid, cid string }
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.aid, &d.cid); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, d)
	}
	rows.Close()
	sys := partners.Principal{KeyID: "system", PartnerID: partners.OperatorID}
	n := 0
	for _, d := range list {
		c, err := partners.GetCollaboration(ctx, s.DB.SQL(), d.cid, sys)
		if err != nil {
			return n, err
		}
		if _, err := s.DeleteAudienceByID(ctx, sys, c, d.aid, wire.DeleteExpiry); err != nil && !errors.Is(err, errs.NotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
