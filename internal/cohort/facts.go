package cohort

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Facts are properties of a cohort table that let a query skip bounding
// steps that cannot change its answer, or reach the same bound by a
// cheaper plan. They are computed once, when the cohort is built, and
// stored with the match, so no query pays for them. A revision only ever
// deletes whole people, which keeps every fact true.
//
// They describe the whole table, never a query's result, and only choose
// how a bound is computed, so they leak nothing: no answer, error or
// timing an analyst sees depends on them beyond the plan's speed.
type Facts struct {
	// UniqueRows lists the source-row columns (_a_row, _b_row) whose values
	// are unique in the table: that side's rows are never repeated by the
	// join, so no de-duplication is needed.
	UniqueRows map[string]bool `json:"unique_rows,omitempty"`
	// PerUser lists the attribute columns that take one value per user: a
	// query grouped only by such columns puts each user in one group, so
	// the group cap has nothing to drop.
	PerUser map[string]bool `json:"per_user,omitempty"`
	// GroupRank maps a dimension column that takes several values for some
	// user to the hidden column holding, on each row, the rank (from 0) of
	// the row's value among its user's distinct values of that column, in
	// an order drawn at random for each user when the cohort was built.
	// Keeping the rows ranked below k keeps at most k groups per user, at
	// random, for a query grouped by that column alone: the group cap as a
	// row filter, without a per-query sort by user.
	GroupRank map[string]string `json:"group_rank,omitempty"`
}

// rankColumn names the rank column of a dimension. Attribute columns
// carry a party's prefix and never start with _, so it cannot collide.
func rankColumn(dim string) string { return "_rank_" + dim }

// FinishTable turns the cohort rows in stage (uid, _a_row, _b_row and the
// attribute columns) into the cohort table: it computes the Facts, writes
// table with a rank column for each of dims that varies within some user,
// and drops stage. It runs once per cohort, at build time.
func FinishTable(ctx context.Context, q store.Execer, stage, table string, columns, dims []string) (Facts, error) {
	f := Facts{UniqueRows: map[string]bool{}, PerUser: map[string]bool{}, GroupRank: map[string]string{}}
	var inner, outer []string
	for i, c := range columns {
		qc := store.QuoteIdent(c)
		// One value per user: min = max, and not a mix of null and non-null.
		inner = append(inner, fmt.Sprintf("(min(%s) IS DISTINCT FROM max(%s) OR (count(%s) > 0 AND count(%s) < count(*))) AS _d%d", qc, qc, qc, qc, i))
		outer = append(outer, fmt.Sprintf("NOT coalesce(bool_or(_d%d), FALSE)", i))
	}
	qs := store.QuoteIdent(stage)
	text := fmt.Sprintf(`SELECT (SELECT count(*) = count(DISTINCT _a_row) FROM %[1]s), (SELECT count(*) = count(DISTINCT _b_row) FROM %[1]s)`, qs)
	if len(columns) > 0 {
		text += fmt.Sprintf(`, %s FROM (SELECT %s FROM %s GROUP BY uid)`, strings.Join(outer, ", "), strings.Join(inner, ", "), qs)
	}
	vals := make([]bool, 2+len(columns))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := q.QueryRowContext(ctx, text).Scan(dest...); err != nil {
		return f, fmt.Errorf("cohort: facts of %s: %w", stage, err)
	}
	f.UniqueRows["_a_row"], f.UniqueRows["_b_row"] = vals[0], vals[1]
	for i, c := range columns {
		f.PerUser[c] = vals[2+i]
	}

	var ranks []string
	known := map[string]bool{}
	for _, c := range columns {
		known[c] = true
	}
	sorted := append([]string(nil), dims...)
	sort.Strings(sorted)
	for _, d := range sorted {
		if !known[d] || f.PerUser[d] || f.GroupRank[d] != "" {
			continue // a per-user column needs no cap; an unknown one is not in the cohort
		}
		f.GroupRank[d] = rankColumn(d)
		qd := store.QuoteIdent(d)
		// The seed makes each cohort's order its own; the hash of the uid
		// makes it each user's own; the value breaks the rare tie of two
		// values hashing alike, so distinct values get distinct ranks.
		ranks = append(ranks, fmt.Sprintf("(dense_rank() OVER (PARTITION BY uid ORDER BY hash(uid, %s, $1::BIGINT), %s) - 1)::UINTEGER AS %s",
			qd, qd, store.QuoteIdent(rankColumn(d))))
	}
	if len(ranks) == 0 {
		if _, err := q.ExecContext(ctx, `ALTER TABLE `+qs+` RENAME TO `+store.QuoteIdent(table)); err != nil {
			return f, fmt.Errorf("cohort: naming %s: %w", table, err)
		}
		return f, nil
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return f, err
	}
	if _, err := q.ExecContext(ctx, `CREATE TABLE `+store.QuoteIdent(table)+` AS SELECT *, `+strings.Join(ranks, ", ")+` FROM `+qs,
		int64(binary.LittleEndian.Uint64(seed[:])>>1)); err != nil {
		return f, fmt.Errorf("cohort: ranking groups of %s: %w", table, err)
	}
	if _, err := q.ExecContext(ctx, `DROP TABLE `+qs); err != nil {
		return f, err
	}
	return f, nil
}

func (f Facts) json() (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("cohort: facts: %w", err)
	}
	return string(b), nil
}

// Backfill computes the facts of every current cohort built before they
// were stored, with rank columns for the collaboration's dimensions, so
// that no query computes them. It rewrites each such cohort table once;
// run it before serving.
func (s *Service) Backfill(ctx context.Context) error {
	rows, err := s.DB.SQL().QueryContext(ctx, `SELECT id, collab_id, cohort_table, CAST(cohort_columns AS VARCHAR) FROM matches
		WHERE state = ? AND cohort_table IS NOT NULL AND cohort_facts IS NULL`, wire.MatchDone)
	if err != nil {
		return fmt.Errorf("cohort.Backfill: %w", err)
	}
	type todo struct{ mid, collab, table, cols string }
	var list []todo
	for rows.Next() {
		var t todo
		var cols sql.NullString
		if err := rows.Scan(&t.mid, &t.collab, &t.table, &cols); err != nil {
			rows.Close()
			return fmt.Errorf("cohort.Backfill: %w", err)
		}
		t.cols = cols.String
		list = append(list, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cohort.Backfill: %w", err)
	}
	for _, t := range list {
		err := s.DB.Write(ctx, func(tx *sql.Tx) error {
			c, err := partners.GetCollaboration(ctx, tx, t.collab, partners.Principal{PartnerID: partners.OperatorID})
			if err != nil {
				return err
			}
			sides := map[string]string{}
			if t.cols != "" {
				if err := json.Unmarshal([]byte(t.cols), &sides); err != nil {
					return err
				}
			}
			columns := make([]string, 0, len(sides))
			for col := range sides {
				columns = append(columns, col)
			}
			sort.Strings(columns)
			stage := t.table + "_stage"
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+store.QuoteIdent(t.table)+` RENAME TO `+store.QuoteIdent(stage)); err != nil {
				return err
			}
			f, err := FinishTable(ctx, tx, stage, t.table, columns, c.Rules.Dimensions)
			if err != nil {
				return err
			}
			fj, err := f.json()
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE matches SET cohort_facts = ? WHERE id = ?`, fj, t.mid)
			return err
		})
		if err != nil {
			return fmt.Errorf("cohort.Backfill: match %s: %w", t.mid, err)
		}
	}
	return nil
}
