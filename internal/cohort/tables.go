package cohort

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// The tables that hold people's data, one set per audience and per match.
// Every name starts with one of dataPrefixes, so that Cleanup can find
// those no record refers to; IDs are lower-case base32, so a name is a
// plain identifier.
//
//	aud_<audience id>           an upload: blinded points and attributes
//	mpts_<match id>_<side>      a side's distinct consented points, by position
//	mtok_<match id>_<side>      tokens of the side's points re-blinded by the other
//	mtok_<match id>_<side>_<r>  a half being received (staging)
//	cpeople_<match id>          the person map: uid -> both sides' points
//	clink_<match id>_<aud id>   a table's rows of matched people, by uid
//	cpeople_<match id>_<r>      a cohort being built (staging), renamed to
//	clink_<match id>_<aud>_<r>  the two above when its match records it
//	cohort_<match id>           an older version's cohort (the product of
//	                            both sides' rows), until Migrate links it
func audienceTable(aid string) string     { return "aud_" + aid }
func pointsTable(mid, side string) string { return "mpts_" + mid + "_" + side }
func tokensTable(mid, side string) string { return "mtok_" + mid + "_" + side }
func peopleTable(mid string) string       { return "cpeople_" + mid }
func cohortTable(mid string) string       { return "cohort_" + mid }

// dataPrefixes start every table name above. Match IDs start with m_, so
// cohort_m_ leaves the metadata table cohort_revisions alone.
var dataPrefixes = []string{"aud_", "mpts_", "mtok_", "cpeople_", "clink_", "cohort_m_"}

// matchTables are every table a match may have.
func matchTables(mid string) []string {
	return []string{pointsTable(mid, "a"), pointsTable(mid, "b"), tokensTable(mid, "a"), tokensTable(mid, "b"), peopleTable(mid), cohortTable(mid)}
}

func tableExists(ctx context.Context, q store.Querier, name string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary AND database_name = current_database()`, name).Scan(&n)
	return n > 0, err
}

// dropTables drops tables outside any transaction: the work of a request
// that failed before its record committed, which nothing refers to.
func (s *Service) dropTables(names ...string) {
	for _, n := range names {
		if n != "" {
			_, _ = s.DB.SQL().Exec(`DROP TABLE IF EXISTS ` + store.QuoteIdent(n))
		}
	}
}

// Cleanup drops every table of people's data that no live record refers
// to: the remains of an upload, a match start or a match half that was
// interrupted (a crash, a restart), and of audiences replaced, with their
// matches, by a server that left them behind. A live record is an audience
// not deleted, and a match waiting or done over two such audiences.
//
// Run it before serving: work in progress has no record until it commits,
// so Cleanup would take it for remains.
func (s *Service) Cleanup(ctx context.Context) error {
	// Matches recorded as live over an audience that is not (replaced by a
	// server that did not drop them) are stale: their data goes, as a
	// replacement now drops it.
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		mids, err := store.QueryStrings(ctx, tx, `SELECT id FROM matches m WHERE state IN (?, ?) AND
			EXISTS (SELECT 1 FROM match_tables t WHERE t.match_id = m.id
				AND NOT EXISTS (SELECT 1 FROM audiences x WHERE x.id = t.audience_id AND x.deleted_at IS NULL))`,
			wire.MatchWaiting, wire.MatchDone)
		if err != nil {
			return err
		}
		for _, mid := range mids {
			if _, err := s.dropMatchData(ctx, tx, mid, "", wire.MatchStale); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cohort.Cleanup: matches of replaced audiences: %w", err)
	}

	live := map[string]bool{}
	tables, err := store.QueryStrings(ctx, s.DB.SQL(), `SELECT table_name FROM audiences WHERE deleted_at IS NULL`)
	if err != nil {
		return err
	}
	for _, t := range tables {
		live[t] = true
	}
	rows, err := s.DB.SQL().QueryContext(ctx, `SELECT id, coalesce(cohort_table, '') FROM matches WHERE state IN (?, ?)`, wire.MatchWaiting, wire.MatchDone)
	if err != nil {
		return err
	}
	for rows.Next() {
		var mid, cohort string
		if err := rows.Scan(&mid, &cohort); err != nil {
			rows.Close()
			return err
		}
		for _, t := range append(matchTables(mid), cohort) {
			live[t] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	ls, err := store.QueryStrings(ctx, s.DB.SQL(), `SELECT t.link_table FROM match_tables t JOIN matches m ON m.id = t.match_id
		WHERE m.state IN (?, ?) AND t.link_table IS NOT NULL`, wire.MatchWaiting, wire.MatchDone)
	if err != nil {
		return err
	}
	for _, t := range ls {
		live[t] = true
	}

	all, err := store.QueryStrings(ctx, s.DB.SQL(), `SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND database_name = current_database()`)
	if err != nil {
		return err
	}
	var drop []string
	for _, t := range all {
		if live[t] {
			continue
		}
		for _, p := range dataPrefixes {
			if strings.HasPrefix(t, p) {
				drop = append(drop, t)
				break
			}
		}
	}
	s.dropTables(drop...)
	return nil
}
