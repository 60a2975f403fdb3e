package cohort

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audience"
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

// exec runs a statement and returns the rows it changed.
func exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// matchesOf lists the IDs of a collaboration's matches.
func matchesOf(ctx context.Context, tx *sql.Tx, collabID, audienceID string) ([]string, error) {
	q := `SELECT id FROM matches WHERE collab_id = ? AND state <> ?`
	args := []any{collabID, wire.MatchDeleted}
	if audienceID != "" {
		q += ` AND (audience_a = ? OR audience_b = ?)`
		args = append(args, audienceID, audienceID)
	}
	return store.QueryStrings(ctx, tx, q, args...)
}

// bumpRevision marks a cohort as changed: answers cached for the old
// revision are not served for the new one.
func (s *Service) bumpRevision(ctx context.Context, tx *sql.Tx, matchID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO cohort_revisions VALUES (?, (SELECT coalesce(max(rev), 0) + 1 FROM cohort_revisions WHERE match_id = ?), ?)`,
		matchID, matchID, s.now().UTC())
	return err
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
		map[string]any{"audience_rows": r.AudienceRows, "tokens": r.Tokens})
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
func (s *Service) DeleteIDs(ctx context.Context, actor partners.Principal, c wire.Collaboration, pids []psi.Point, optOut bool) (audit.Receipt, error) {
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
		if a, err := s.CurrentAudience(ctx, tx, c.ID, actor.PartnerID); err == nil {
			if err := deleteAudienceRows(ctx, tx, a, c.Rules.Purpose, tmp, &r); err != nil {
				return err
			}
		} else if !errors.Is(err, errs.NotFound) {
			return err
		}
		own := side(c, actor.PartnerID)
		ms, err := matchStates(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		for _, m := range ms {
			switch m.state {
			case wire.MatchWaiting:
				// Positions in its points tables would no longer line up
				// with what the other party re-blinds: void it, and the
				// next match run starts afresh.
				if _, err := s.dropMatchData(ctx, tx, m.id, "", wire.MatchStale); err != nil {
					return err
				}
				continue
			case wire.MatchDone:
				// Every deletion bumps every cohort's revision, whether or
				// not it touched the cohort: a revision that moved only
				// for members would tell the deleting party who matched.
				if err := s.bumpRevision(ctx, tx, m.id); err != nil {
					return err
				}
			}
			if err := deleteFromMatch(ctx, tx, m.id, own, tmp, &r); err != nil {
				return err
			}
		}
		r, err = s.finishReceipt(ctx, tx, actor.KeyID, r, nil)
		return err
	})
	return r, err
}

// deleteAudienceRows deletes the rows of the people in table tmp from a,
// keeping its row and people counts true.
func deleteAudienceRows(ctx context.Context, tx *sql.Tx, a Audience, purpose, tmp string, r *audit.Receipt) error {
	q, args := `SELECT count(DISTINCT pid), 0 FROM `+a.table+` WHERE pid IN (SELECT pid FROM `+tmp+`)`, []any{}
	if has, err := a.hasColumn(audience.ConsentColumn); err != nil {
		return err
	} else if has {
		q = `SELECT count(DISTINCT pid), count(DISTINCT pid) FILTER (WHERE list_contains(consent, ?)) FROM ` + a.table + ` WHERE pid IN (SELECT pid FROM ` + tmp + `)`
		args = []any{purpose}
	}
	var people, matchable int64
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&people, &matchable); err != nil {
		return err
	}
	n, err := exec(ctx, tx, `DELETE FROM `+a.table+` WHERE pid IN (SELECT pid FROM `+tmp+`)`)
	if err != nil {
		return err
	}
	r.AudienceRows = n
	_, err = tx.ExecContext(ctx, `UPDATE audiences SET rows = rows - ?, people = people - ?, people_matchable = coalesce(people_matchable, people) - ? WHERE id = ?`,
		n, people, matchable, a.ID)
	return err
}

// deleteFromMatch removes the people in table tmp, given by side own's
// points, from a match's cohort, people map, points and own tokens. The
// same statements run whether or not anyone matched.
func deleteFromMatch(ctx context.Context, tx *sql.Tx, mid, own, tmp string, r *audit.Receipt) error {
	if ok, err := tableExists(ctx, tx, peopleTable(mid)); err != nil {
		return err
	} else if ok {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+cohortTable(mid)+` WHERE uid IN (SELECT uid FROM `+peopleTable(mid)+` WHERE pid_`+own+` IN (SELECT pid FROM `+tmp+`))`); err != nil {
			return err
		}
		people, err := exec(ctx, tx, `DELETE FROM `+peopleTable(mid)+` WHERE pid_`+own+` IN (SELECT pid FROM `+tmp+`)`)
		if err != nil {
			return err
		}
		// The exact size stays true for the operator; no one else reads it.
		if _, err := tx.ExecContext(ctx, `UPDATE matches SET cohort_size = cohort_size - ? WHERE id = ?`, people, mid); err != nil {
			return err
		}
	}
	pts := pointsTable(mid, own)
	if ok, err := tableExists(ctx, tx, pts); err != nil || !ok {
		return err
	}
	if ok, err := tableExists(ctx, tx, tokensTable(mid, own)); err != nil {
		return err
	} else if ok {
		n, err := exec(ctx, tx, `DELETE FROM `+tokensTable(mid, own)+` WHERE pos IN (SELECT pos FROM `+pts+` WHERE pid IN (SELECT pid FROM `+tmp+`))`)
		if err != nil {
			return err
		}
		r.Tokens += n
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM `+pts+` WHERE pid IN (SELECT pid FROM `+tmp+`)`)
	return err
}

type matchState struct {
	id    string
	state wire.MatchState
}

// matchStates lists a collaboration's matches and their stored states.
func matchStates(ctx context.Context, tx *sql.Tx, collabID string) ([]matchState, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, state FROM matches WHERE collab_id = ? ORDER BY created_at`, collabID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []matchState
	for rows.Next() {
		var m matchState
		if err := rows.Scan(&m.id, &m.state); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// dropMatchData removes every table of a match (points, tokens, people
// and cohort) and leaves it in state. It returns how many tokens of side
// own's points it removed ("" counts none).
func (s *Service) dropMatchData(ctx context.Context, tx *sql.Tx, mid, own string, state wire.MatchState) (tokens int64, err error) {
	for _, sd := range []string{"a", "b"} {
		for _, t := range []string{tokensTable(mid, sd), pointsTable(mid, sd)} {
			ok, err := tableExists(ctx, tx, t)
			if err != nil {
				return 0, err
			}
			if !ok {
				continue
			}
			if sd == own && t == tokensTable(mid, sd) {
				var n int64
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
					return 0, err
				}
				tokens += n
			}
			if _, err := tx.ExecContext(ctx, `DROP TABLE `+t); err != nil {
				return 0, err
			}
		}
	}
	for _, t := range []string{peopleTable(mid), cohortTable(mid)} {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
			return 0, err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE matches SET state = ?, cohort_table = NULL, updated_at = ? WHERE id = ?`, state, s.now().UTC(), mid)
	return tokens, err
}

// dropAudience drops an audience's table, marks it deleted and returns how
// many rows it held.
func (s *Service) dropAudience(ctx context.Context, tx *sql.Tx, id, table string) (int64, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+table); err != nil {
		return 0, err
	}
	_, err := tx.ExecContext(ctx, `UPDATE audiences SET deleted_at = ? WHERE id = ?`, s.now().UTC(), id)
	return n, err
}

// dropMatches drops the data of the collaboration's matches (those built
// from audienceID, or all when it is empty) and leaves them in state. It
// returns how many matches it dropped and how many tokens of each side.
func (s *Service) dropMatches(ctx context.Context, tx *sql.Tx, collabID, audienceID string, state wire.MatchState) (matches int64, tokens map[string]int64, err error) {
	mids, err := matchesOf(ctx, tx, collabID, audienceID)
	if err != nil {
		return 0, nil, err
	}
	tokens = map[string]int64{}
	for _, mid := range mids {
		for _, sd := range []string{"a", "b"} {
			var n int64
			if ok, err := tableExists(ctx, tx, tokensTable(mid, sd)); err != nil {
				return 0, nil, err
			} else if ok {
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+tokensTable(mid, sd)).Scan(&n); err != nil {
					return 0, nil, err
				}
			}
			tokens[sd] += n
		}
		if _, err := s.dropMatchData(ctx, tx, mid, "", state); err != nil {
			return 0, nil, err
		}
		matches++
	}
	return matches, tokens, nil
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
		a, err := s.audienceByID(ctx, tx, audienceID)
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
		if r.AudienceRows, err = s.dropAudience(ctx, tx, a.ID, a.table); err != nil {
			return err
		}
		n, tokens, err := s.dropMatches(ctx, tx, c.ID, a.ID, wire.MatchDeleted)
		if err != nil {
			return err
		}
		r.Matches, r.Tokens = n, tokens[side(c, a.PartnerID)]
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
		rows, err := tx.QueryContext(ctx, `SELECT id, table_name, partner_id FROM audiences WHERE collab_id = ? AND deleted_at IS NULL`, c.ID)
		if err != nil {
			return err
		}
		var tables, ids, owners []string
		for rows.Next() {
			var id, t, p string
			if err := rows.Scan(&id, &t, &p); err != nil {
				rows.Close()
				return err
			}
			ids, tables, owners = append(ids, id), append(tables, t), append(owners, p)
		}
		rows.Close()
		for i, t := range tables {
			n, err := s.dropAudience(ctx, tx, ids[i], t)
			if err != nil {
				return err
			}
			receipts[owners[i]].AudienceRows += n
		}
		n, tokens, err := s.dropMatches(ctx, tx, c.ID, "", wire.MatchDeleted)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE collaborations SET state = ?, updated_at = ? WHERE id = ?`, wire.StateDeleted, s.now().UTC(), c.ID); err != nil {
			return err
		}
		for _, p := range c.Members() {
			r := receipts[p]
			r.Matches, r.Tokens = n, tokens[side(c, p)]
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
