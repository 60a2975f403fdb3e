package cohort

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Migrate brings matches recorded by older versions to named tables: it
// lists each match's two audiences in match_tables, and turns each
// current cohort built as the product of both sides' rows into the person
// map and one link table a side, dropping the product. Cohort revisions
// stay, so answers cached for a cohort stay valid (its rows are the
// same). Run it at start, before Cleanup and before serving.
func (s *Service) Migrate(ctx context.Context) error {
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO match_tables (match_id, side, audience_id, name)
			SELECT m.id, x.side, x.aid, coalesce((SELECT a.name FROM audiences a WHERE a.id = x.aid), ?)
			FROM matches m, LATERAL (VALUES ('a', m.audience_a), ('b', m.audience_b)) x(side, aid)
			WHERE NOT EXISTS (SELECT 1 FROM match_tables t WHERE t.match_id = m.id)`, wire.DefaultTable)
		return err
	})
	if err != nil {
		return fmt.Errorf("cohort.Migrate: listing tables of older matches: %w", err)
	}
	rows, err := s.DB.SQL().QueryContext(ctx, `SELECT id, collab_id FROM matches m WHERE state = ? AND cohort_table = 'cohort_' || id
		AND NOT EXISTS (SELECT 1 FROM match_tables t WHERE t.match_id = m.id
			AND NOT EXISTS (SELECT 1 FROM audiences x WHERE x.id = t.audience_id AND x.deleted_at IS NULL))`, wire.MatchDone)
	if err != nil {
		return fmt.Errorf("cohort.Migrate: %w", err)
	}
	type todo struct{ mid, collab string }
	var list []todo
	for rows.Next() {
		var t todo
		if err := rows.Scan(&t.mid, &t.collab); err != nil {
			rows.Close()
			return fmt.Errorf("cohort.Migrate: %w", err)
		}
		list = append(list, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cohort.Migrate: %w", err)
	}
	for _, t := range list {
		err := s.DB.Write(ctx, func(tx *sql.Tx) error {
			c, err := partners.GetCollaboration(ctx, tx, t.collab, partners.Principal{PartnerID: partners.OperatorID})
			if err != nil {
				return err
			}
			if err := personMapFromProduct(ctx, tx, t.mid); err != nil {
				return err
			}
			links, cols, err := s.linkTables(ctx, tx, c, t.mid, peopleTable(t.mid), "")
			if err != nil {
				return err
			}
			// With no suffix the links are built under their final names.
			if err := recordLinks(ctx, tx, t.mid, links); err != nil {
				return err
			}
			cj, err := json.Marshal(cols)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DROP TABLE `+store.QuoteIdent(cohortTable(t.mid))); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE matches SET cohort_table = ?, cohort_columns = ?, cohort_facts = NULL WHERE id = ?`,
				peopleTable(t.mid), string(cj), t.mid)
			return err
		})
		if err != nil {
			return fmt.Errorf("cohort.Migrate: match %s: %w", t.mid, err)
		}
	}
	return nil
}

// personMapFromProduct makes the person map of a cohort built before
// there was one (schemas 1 and 2: the first servers kept only the
// product): each row of the product names its source rows by rowid
// (_a_row, _b_row), which those versions never changed (they had no
// deletions), so the person map is each uid with the points of its rows.
func personMapFromProduct(ctx context.Context, tx *sql.Tx, mid string) error {
	if ok, err := tableExists(ctx, tx, peopleTable(mid)); err != nil || ok {
		return err
	}
	var ta, tb string
	err := tx.QueryRowContext(ctx, `SELECT (SELECT table_name FROM audiences WHERE id = m.audience_a), (SELECT table_name FROM audiences WHERE id = m.audience_b)
		FROM matches m WHERE m.id = ?`, mid).Scan(&ta, &tb)
	if err != nil {
		return fmt.Errorf("the audiences of match %s: %w", mid, err)
	}
	_, err = tx.ExecContext(ctx, `CREATE TABLE `+peopleTable(mid)+` AS SELECT DISTINCT c.uid, ra.pid AS pid_a, rb.pid AS pid_b
		FROM `+store.QuoteIdent(cohortTable(mid))+` c JOIN `+store.QuoteIdent(ta)+` ra ON ra.rowid = c._a_row JOIN `+store.QuoteIdent(tb)+` rb ON rb.rowid = c._b_row`)
	if err != nil {
		return fmt.Errorf("the person map of match %s from its product: %w", mid, err)
	}
	return nil
}
