package cohort

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/store"
)

// MaxDeleteIdentifiers bounds one deletion or opt-out request.
const MaxDeleteIdentifiers = 100000

// Deletion kinds, as receipts and the log name them.
const (
	DeleteIdentifiers   = "identifiers"
	DeleteOptOut        = "optout"
	DeleteAudience      = "audience"
	DeleteCollaboration = "collaboration"
	DeleteExpiry        = "expiry"
)

func tableExists(ctx context.Context, tx *sql.Tx, name string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE table_name = ?`, name).Scan(&n)
	return n > 0, err
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
	q := `SELECT id FROM matches WHERE collab_id = ?`
	args := []any{collabID}
	if audienceID != "" {
		q += ` AND (audience_a = ? OR audience_b = ?)`
		args = append(args, audienceID, audienceID)
	}
	return store.QueryStrings(ctx, tx, q, args...)
}

// bumpRevision marks a cohort as changed: answers cached for the old
// revision are not served for the new one.
func bumpRevision(ctx context.Context, tx *sql.Tx, matchID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO cohort_revisions VALUES (?, (SELECT coalesce(max(rev), 0) + 1 FROM cohort_revisions WHERE match_id = ?), ?)`,
		matchID, matchID, time.Now().UTC())
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
func (s *Service) finishReceipt(ctx context.Context, tx *sql.Tx, actor partners.Principal, r audit.Receipt) (audit.Receipt, error) {
	priv, err := s.signer()
	if err != nil {
		return r, err
	}
	r.ID = partners.NewID("r_")
	r.At = time.Now().UTC().Truncate(time.Microsecond)
	e, err := audit.Append(ctx, tx, actor.KeyID, r.PartnerID, r.CollabID, "deletion."+r.Kind, map[string]any{
		"receipt_id": r.ID, "audience_id": r.AudienceID, "identifiers": r.Identifiers,
		"audience_rows": r.AudienceRows, "cohort_rows": r.CohortRows, "tokens": r.Tokens})
	if err != nil {
		return r, err
	}
	r.AuditSeq, r.AuditHash = e.Seq, e.Hash
	r = audit.SignReceipt(priv, r)
	body := mustJSON(r)
	if _, err := tx.ExecContext(ctx, `INSERT INTO receipts VALUES (?, ?, ?, ?, ?)`, r.ID, r.CollabID, r.PartnerID, body, r.At); err != nil {
		return r, err
	}
	return r, nil
}

// DeleteIDs removes people, given as points blinded with the partner's
// key, from its audience in collab, from every cohort of the collaboration
// and from its tokens, in one transaction, and returns the signed receipt.
// With optOut the points are also kept out of later uploads and matches.
func (s *Service) DeleteIDs(ctx context.Context, actor partners.Principal, c partners.Collaboration, pids []psi.Point, optOut bool) (audit.Receipt, error) {
	if len(pids) == 0 {
		return audit.Receipt{}, fmt.Errorf("%w: no identifiers given", ErrInvalid)
	}
	if len(pids) > MaxDeleteIdentifiers {
		return audit.Receipt{}, fmt.Errorf("%w: %d identifiers; send at most %d a request", ErrInvalid, len(pids), MaxDeleteIdentifiers)
	}
	for i := range pids {
		if err := pids[i].Validate(); err != nil {
			return audit.Receipt{}, fmt.Errorf("%w: identifier %d: %v", ErrInvalid, i+1, err)
		}
	}
	kind := DeleteIdentifiers
	if optOut {
		kind = DeleteOptOut
	}
	r := audit.Receipt{Kind: kind, CollabID: c.ID, PartnerID: actor.PartnerID, Identifiers: int64(len(pids))}
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
				c.ID, actor.PartnerID, time.Now().UTC(), c.ID, actor.PartnerID); err != nil {
				return err
			}
		}
		if a, err := s.CurrentAudience(ctx, tx, c.ID, actor.PartnerID); err == nil {
			n, err := exec(ctx, tx, `DELETE FROM `+a.table+` WHERE pid IN (SELECT pid FROM `+tmp+`)`)
			if err != nil {
				return err
			}
			r.AudienceRows = n
			if _, err := tx.ExecContext(ctx, `UPDATE audiences SET rows = rows - ? WHERE id = ?`, n, a.ID); err != nil {
				return err
			}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		side := side(c, actor.PartnerID)
		mids, err := matchesOf(ctx, tx, c.ID, "")
		if err != nil {
			return err
		}
		for _, mid := range mids {
			if ok, err := tableExists(ctx, tx, peopleTable(mid)); err != nil {
				return err
			} else if ok {
				n, err := exec(ctx, tx, `DELETE FROM cohort_`+mid+` WHERE uid IN (SELECT uid FROM `+peopleTable(mid)+` WHERE pid_`+side+` IN (SELECT pid FROM `+tmp+`))`)
				if err != nil {
					return err
				}
				r.CohortRows += n
				people, err := exec(ctx, tx, `DELETE FROM `+peopleTable(mid)+` WHERE pid_`+side+` IN (SELECT pid FROM `+tmp+`)`)
				if err != nil {
					return err
				}
				if people > 0 {
					if _, err := tx.ExecContext(ctx, `UPDATE matches SET cohort_size = cohort_size - ? WHERE id = ?`, people, mid); err != nil {
						return err
					}
					if err := bumpRevision(ctx, tx, mid); err != nil {
						return err
					}
				}
			}
			pts := pointsTable(mid, side)
			if ok, err := tableExists(ctx, tx, pts); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			if ok, _ := tableExists(ctx, tx, tokensTable(mid, side)); ok {
				n, err := exec(ctx, tx, `DELETE FROM `+tokensTable(mid, side)+` WHERE pos IN (SELECT pos FROM `+pts+` WHERE pid IN (SELECT pid FROM `+tmp+`))`)
				if err != nil {
					return err
				}
				r.Tokens += n
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+pts+` WHERE pid IN (SELECT pid FROM `+tmp+`)`); err != nil {
				return err
			}
		}
		r, err = s.finishReceipt(ctx, tx, actor, r)
		return err
	})
	return r, err
}

// dropMatchData removes every table of a match: points, tokens, people
// and cohort. It returns the cohort rows and tokens removed.
func dropMatchData(ctx context.Context, tx *sql.Tx, mid string) (cohortRows, tokens int64, err error) {
	count := func(t string) (int64, error) {
		if ok, err := tableExists(ctx, tx, t); err != nil || !ok {
			return 0, err
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return 0, err
		}
		_, err := tx.ExecContext(ctx, `DROP TABLE `+t)
		return n, err
	}
	if cohortRows, err = count("cohort_" + mid); err != nil {
		return
	}
	for _, t := range []string{tokensTable(mid, "a"), tokensTable(mid, "b")} {
		n, err := count(t)
		if err != nil {
			return 0, 0, err
		}
		tokens += n
	}
	for _, t := range []string{peopleTable(mid), pointsTable(mid, "a"), pointsTable(mid, "b")} {
		if _, err := count(t); err != nil {
			return 0, 0, err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE matches SET state = 'deleted', cohort_table = NULL, updated_at = ? WHERE id = ?`, time.Now().UTC(), mid)
	return
}

// dropAudience drops an audience's table, marks it deleted and returns how
// many rows it held.
func dropAudience(ctx context.Context, tx *sql.Tx, id, table string) (int64, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+table); err != nil {
		return 0, err
	}
	_, err := tx.ExecContext(ctx, `UPDATE audiences SET deleted_at = ? WHERE id = ?`, time.Now().UTC(), id)
	return n, err
}

// dropMatches drops the data of the collaboration's matches (those built
// from audienceID, or all when it is empty) and adds what went to r.
func dropMatches(ctx context.Context, tx *sql.Tx, collabID, audienceID string, r *audit.Receipt) error {
	mids, err := matchesOf(ctx, tx, collabID, audienceID)
	if err != nil {
		return err
	}
	for _, mid := range mids {
		cr, tk, err := dropMatchData(ctx, tx, mid)
		if err != nil {
			return err
		}
		r.CohortRows += cr
		r.Tokens += tk
	}
	return nil
}

// DeleteAudienceByID deletes an audience and every cohort built from it.
// kind is DeleteAudience, or DeleteExpiry for the retention janitor.
func (s *Service) DeleteAudienceByID(ctx context.Context, actor partners.Principal, c partners.Collaboration, audienceID, kind string) (audit.Receipt, error) {
	r := audit.Receipt{Kind: kind, CollabID: c.ID, AudienceID: audienceID}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		a, err := s.audienceByID(ctx, tx, audienceID)
		if err != nil || a.CollabID != c.ID || (kind == DeleteAudience && a.PartnerID != actor.PartnerID) {
			return fmt.Errorf("%w: audience %s", ErrNotFound, audienceID)
		}
		r.PartnerID = a.PartnerID
		if r.AudienceRows, err = dropAudience(ctx, tx, a.ID, a.table); err != nil {
			return err
		}
		if err := dropMatches(ctx, tx, c.ID, a.ID, &r); err != nil {
			return err
		}
		r, err = s.finishReceipt(ctx, tx, actor, r)
		return err
	})
	return r, err
}

// DeleteCollaboration deletes both parties' audiences and every match and
// cohort of a collaboration, and ends it.
func (s *Service) DeleteCollaboration(ctx context.Context, actor partners.Principal, c partners.Collaboration) (audit.Receipt, error) {
	r := audit.Receipt{Kind: DeleteCollaboration, CollabID: c.ID, PartnerID: actor.PartnerID}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, table_name FROM audiences WHERE collab_id = ? AND deleted_at IS NULL`, c.ID)
		if err != nil {
			return err
		}
		var tables, ids []string
		for rows.Next() {
			var id, t string
			if err := rows.Scan(&id, &t); err != nil {
				rows.Close()
				return err
			}
			ids, tables = append(ids, id), append(tables, t)
		}
		rows.Close()
		for i, t := range tables {
			n, err := dropAudience(ctx, tx, ids[i], t)
			if err != nil {
				return err
			}
			r.AudienceRows += n
		}
		if err := dropMatches(ctx, tx, c.ID, "", &r); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE collaborations SET state = 'deleted', updated_at = ? WHERE id = ?`, time.Now().UTC(), c.ID); err != nil {
			return err
		}
		r, err = s.finishReceipt(ctx, tx, actor, r)
		return err
	})
	return r, err
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
		if _, err := s.DeleteAudienceByID(ctx, sys, c, d.aid, DeleteExpiry); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
