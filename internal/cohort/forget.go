package cohort

import (
	"context"
	"database/sql"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// What a deletion does to this package's tables. Package deletion decides
// who may delete what, and writes the receipts; the statements that drop
// or delete people's data stay here, next to the table names and the
// match states they depend on. Each runs in the caller's transaction.

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
		q += ` AND id IN (SELECT match_id FROM match_tables WHERE audience_id = ?)`
		args = append(args, audienceID)
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

// ForgetPeople removes the people in table people (one column, pid: points
// blinded with partnerID's key) from every table of partnerID's in c, from
// every cohort of c and from partnerID's tokens. It returns how many rows
// it deleted from each of the partner's tables (by table name) and how
// many tokens: counts of partnerID's own data.
func (s *Service) ForgetPeople(ctx context.Context, tx *sql.Tx, c wire.Collaboration, partnerID, people string) (tableRows map[string]int64, tokens int64, err error) {
	tables, err := s.CurrentTables(ctx, tx, c.ID, partnerID)
	if err != nil {
		return nil, 0, err
	}
	tableRows = map[string]int64{}
	for _, a := range tables {
		if tableRows[a.Table], err = deleteAudienceRows(ctx, tx, a, c.Rules.Purpose, people); err != nil {
			return nil, 0, err
		}
	}
	own := side(c, partnerID)
	ms, err := matchStates(ctx, tx, c.ID)
	if err != nil {
		return nil, 0, err
	}
	for _, m := range ms {
		switch m.state {
		case wire.MatchWaiting:
			// Positions in its points tables would no longer line up
			// with what the other party re-blinds: void it, and the
			// next match run starts afresh.
			if _, err := s.dropMatchData(ctx, tx, m.id, "", wire.MatchStale); err != nil {
				return nil, 0, err
			}
			continue
		case wire.MatchDone:
			// Every deletion bumps every cohort's revision, whether or
			// not it touched the cohort: a revision that moved only
			// for members would tell the deleting party who matched.
			if err := s.bumpRevision(ctx, tx, m.id); err != nil {
				return nil, 0, err
			}
		}
		n, err := deleteFromMatch(ctx, tx, m.id, own, people)
		if err != nil {
			return nil, 0, err
		}
		tokens += n
	}
	return tableRows, tokens, nil
}

// links lists the link tables of a match that exist.
func links(ctx context.Context, q store.Querier, mid string) ([]string, error) {
	return store.QueryStrings(ctx, q, `SELECT link_table FROM match_tables WHERE match_id = ? AND link_table IS NOT NULL
		AND link_table IN (SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND database_name = current_database()) ORDER BY link_table`, mid)
}

// deleteAudienceRows deletes the rows of the people in table tmp from a,
// keeping its row and people counts true, and returns how many it deleted.
func deleteAudienceRows(ctx context.Context, tx *sql.Tx, a Audience, purpose, tmp string) (int64, error) {
	q, args := `SELECT count(DISTINCT pid), 0 FROM `+a.table+` WHERE pid IN (SELECT pid FROM `+tmp+`)`, []any{}
	if has, err := a.hasColumn(audience.ConsentColumn); err != nil {
		return 0, err
	} else if has {
		q = `SELECT count(DISTINCT pid), count(DISTINCT pid) FILTER (WHERE list_contains(consent, ?)) FROM ` + a.table + ` WHERE pid IN (SELECT pid FROM ` + tmp + `)`
		args = []any{purpose}
	}
	var people, matchable int64
	if err := tx.QueryRowContext(ctx, q, args...).Scan(&people, &matchable); err != nil {
		return 0, err
	}
	n, err := exec(ctx, tx, `DELETE FROM `+a.table+` WHERE pid IN (SELECT pid FROM `+tmp+`)`)
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE audiences SET rows = rows - ?, people = people - ?, people_matchable = coalesce(people_matchable, people) - ? WHERE id = ?`,
		n, people, matchable, a.ID)
	return n, err
}

// deleteFromMatch removes the people in table tmp, given by side own's
// points, from a match's linked tables (both parties' rows of them),
// people map, points and own tokens, and returns how many tokens it
// deleted. The same statements run whether or not anyone matched.
func deleteFromMatch(ctx context.Context, tx *sql.Tx, mid, own, tmp string) (tokens int64, err error) {
	if ok, err := tableExists(ctx, tx, peopleTable(mid)); err != nil {
		return 0, err
	} else if ok {
		ls, err := links(ctx, tx, mid)
		if err != nil {
			return 0, err
		}
		for _, l := range ls {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+l+` WHERE uid IN (SELECT uid FROM `+peopleTable(mid)+` WHERE pid_`+own+` IN (SELECT pid FROM `+tmp+`))`); err != nil {
				return 0, err
			}
		}
		people, err := exec(ctx, tx, `DELETE FROM `+peopleTable(mid)+` WHERE pid_`+own+` IN (SELECT pid FROM `+tmp+`)`)
		if err != nil {
			return 0, err
		}
		// The exact size stays true for the operator; no one else reads it.
		if _, err := tx.ExecContext(ctx, `UPDATE matches SET cohort_size = cohort_size - ? WHERE id = ?`, people, mid); err != nil {
			return 0, err
		}
	}
	pts := pointsTable(mid, own)
	if ok, err := tableExists(ctx, tx, pts); err != nil || !ok {
		return 0, err
	}
	if ok, err := tableExists(ctx, tx, tokensTable(mid, own)); err != nil {
		return 0, err
	} else if ok {
		if tokens, err = exec(ctx, tx, `DELETE FROM `+tokensTable(mid, own)+` WHERE pos IN (SELECT pos FROM `+pts+` WHERE pid IN (SELECT pid FROM `+tmp+`))`); err != nil {
			return 0, err
		}
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM `+pts+` WHERE pid IN (SELECT pid FROM `+tmp+`)`)
	return tokens, err
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
	ls, err := links(ctx, tx, mid)
	if err != nil {
		return 0, err
	}
	for _, t := range append(ls, peopleTable(mid), cohortTable(mid)) {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE match_tables SET link_table = NULL WHERE match_id = ?`, mid); err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE matches SET state = ?, cohort_table = NULL, updated_at = ? WHERE id = ?`, state, s.now().UTC(), mid)
	return tokens, err
}

// DropAudience drops a's table, marks it deleted and returns how many rows
// it held. The matches built from it are DropMatches' to drop.
func (s *Service) DropAudience(ctx context.Context, tx *sql.Tx, a Audience) (int64, error) {
	return s.dropAudienceTable(ctx, tx, a.ID, a.table)
}

// DropAudiences drops every live table of a collaboration as
// DropAudience does, and returns how many rows they held, by partner and
// table name.
func (s *Service) DropAudiences(ctx context.Context, tx *sql.Tx, collabID string) (map[string]map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, table_name, partner_id, name FROM audiences WHERE collab_id = ? AND deleted_at IS NULL`, collabID)
	if err != nil {
		return nil, err
	}
	var tables, ids, owners, names []string
	for rows.Next() {
		var id, t, p, n string
		if err := rows.Scan(&id, &t, &p, &n); err != nil {
			rows.Close()
			return nil, err
		}
		ids, tables, owners, names = append(ids, id), append(tables, t), append(owners, p), append(names, n)
	}
	rows.Close()
	out := map[string]map[string]int64{}
	for i, t := range tables {
		n, err := s.dropAudienceTable(ctx, tx, ids[i], t)
		if err != nil {
			return nil, err
		}
		if out[owners[i]] == nil {
			out[owners[i]] = map[string]int64{}
		}
		out[owners[i]][names[i]] += n
	}
	return out, nil
}

// dropAudienceTable drops an audience's table, marks it deleted and
// returns how many rows it held.
func (s *Service) dropAudienceTable(ctx context.Context, tx *sql.Tx, id, table string) (int64, error) {
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

// DropMatches drops the data of c's matches (those built from audienceID,
// or all when it is empty) and leaves them in state. It returns how many
// matches it dropped and, by partner, how many tokens of its points.
func (s *Service) DropMatches(ctx context.Context, tx *sql.Tx, c wire.Collaboration, audienceID string, state wire.MatchState) (matches int64, tokens map[string]int64, err error) {
	mids, err := matchesOf(ctx, tx, c.ID, audienceID)
	if err != nil {
		return 0, nil, err
	}
	bySide := map[string]int64{}
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
			bySide[sd] += n
		}
		if _, err := s.dropMatchData(ctx, tx, mid, "", state); err != nil {
			return 0, nil, err
		}
		matches++
	}
	// Sides are the protocol's; callers count by partner.
	tokens = map[string]int64{}
	for _, p := range c.Members() {
		tokens[p] = bySide[side(c, p)]
	}
	return matches, tokens, nil
}

// PersonRows returns a table's rows of one person, given as a point
// blinded with the table's owner's key: every column but the point, in
// upload order.
func (s *Service) PersonRows(ctx context.Context, q store.Querier, a Audience, pid psi.Point) ([]map[string]any, error) {
	return queryMaps(ctx, q, `SELECT * EXCLUDE (pid) FROM `+a.table+` WHERE pid = ? ORDER BY rowid`, pid[:])
}

// queryMaps returns every row of a query as a map from column name to
// value: an audience's rows, whose columns its owner chose.
func queryMaps(ctx context.Context, q store.Querier, query string, args ...any) ([]map[string]any, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			m[c] = vals[i]
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
