package cohort

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/dp"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

var slugRe = regexp.MustCompile(`[^a-z0-9]+`)

// prefixes returns the column prefixes of the two parties' attributes in
// the cohort, from their names so an analyst can tell whose a column is.
func prefixes(ctx context.Context, q store.Querier, c wire.Collaboration) (string, string) {
	slug := func(id string) string {
		p, err := partners.GetPartner(ctx, q, id)
		if err != nil {
			return ""
		}
		s := strings.Trim(slugRe.ReplaceAllString(strings.ToLower(p.Name), "_"), "_")
		if len(s) > 20 {
			s = s[:20]
		}
		if s == "" || s[0] < 'a' || s[0] > 'z' {
			return ""
		}
		return s
	}
	a, b := slug(c.Proposer), slug(c.Partner)
	if a == "" || b == "" || a == b {
		return "a_", "b_"
	}
	return a + "_", b + "_"
}

// builtCohort is a cohort built by buildCohort under names of its own:
// committed, but no part of the state until publishCohort renames it to
// the match's. Until then nothing refers to it, so start-up cleanup drops
// it after a crash.
type builtCohort struct {
	people, table string // staging names of the people and cohort tables
	exact, noisy  int64
	sides         map[string]string
	facts         Facts
}

// buildCohort joins the two token tables (tokA and tokB, side a's and
// side b's) and writes the cohort: one uid per matched person (random,
// never the token), with both parties' consented rows. Rows of one person
// on both sides join as their product, with _a_row and _b_row naming the
// source rows so aggregates can count each side's rows once.
//
// It is the heavy part of a match (seconds at millions of rows), so it
// runs in a DB.Bulk transaction of its own, outside the write lock, and
// only reads committed tables and writes new ones: other collaborations'
// writes and queries go on meanwhile.
func (s *Service) buildCohort(ctx context.Context, c wire.Collaboration, m Match, tokA, tokB string) (builtCohort, error) {
	suffix := "_" + strings.ToLower(partners.NewID(""))
	b := builtCohort{people: peopleTable(m.ID) + suffix, table: cohortTable(m.ID) + suffix, sides: map[string]string{}}
	err := s.DB.Bulk(ctx, func(tx *sql.Tx) error {
		aa, err := s.AudienceByID(ctx, tx, m.AudienceA)
		if err != nil {
			return err
		}
		ab, err := s.AudienceByID(ctx, tx, m.AudienceB)
		if err != nil {
			return err
		}
		pa, pb := prefixes(ctx, tx, c)
		sel := []string{"p.uid", "ra.rowid AS _a_row", "rb.rowid AS _b_row"}
		// Each attribute column's side is recorded here, where it is known,
		// rather than guessed later from the prefixes (one may prefix the other).
		for _, x := range []struct {
			a      Audience
			alias  string
			prefix string
			side   string
		}{{aa, "ra", pa, "a"}, {ab, "rb", pb, "b"}} {
			cols, err := x.a.columns()
			if err != nil {
				return err
			}
			for _, col := range cols {
				if col.Name == audience.PIDColumn || col.Name == audience.ConsentColumn {
					continue
				}
				sel = append(sel, x.alias+"."+store.QuoteIdent(col.Name)+" AS "+store.QuoteIdent(x.prefix+col.Name))
				b.sides[x.prefix+col.Name] = x.side
			}
		}
		consent := func(a Audience, alias string) (string, error) {
			has, err := a.hasColumn(audience.ConsentColumn)
			if err != nil || !has {
				return "FALSE", err
			}
			return "list_contains(" + alias + ".consent, $purpose)", nil
		}
		consentA, err := consent(aa, "ra")
		if err != nil {
			return err
		}
		consentB, err := consent(ab, "rb")
		if err != nil {
			return err
		}
		// The people table maps each uid to both parties' points, so that a
		// deletion or opt-out can find a person's cohort rows. Analysts never
		// reach it: queries read only the cohort table, and never uid itself.
		// The token join written first: DuckDB plans it about 20% faster
		// than the four-way join written flat.
		if _, err := tx.ExecContext(ctx, `CREATE TABLE `+b.people+` (uid BIGINT, pid_a `+randomBlob+`, pid_b `+randomBlob+`)`); err != nil {
			return fmt.Errorf("cohort: matching people: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+b.people+`
			SELECT (row_number() OVER (ORDER BY random()))::BIGINT AS uid, xa.pid AS pid_a, xb.pid AS pid_b
			FROM (SELECT ta.pos AS pos_a, tb.pos AS pos_b
				FROM `+tokA+` ta JOIN `+tokB+` tb ON ta.token = tb.token) matched
			JOIN `+pointsTable(m.ID, "a")+` xa ON xa.pos = matched.pos_a
			JOIN `+pointsTable(m.ID, "b")+` xb ON xb.pos = matched.pos_b`); err != nil {
			return fmt.Errorf("cohort: matching people: %w", err)
		}
		if s.midBuild != nil {
			s.midBuild(m.ID)
		}
		stage := b.table + "_stage"
		q := `CREATE TABLE ` + stage + ` AS
		SELECT ` + strings.Join(sel, ", ") + `
		FROM ` + b.people + ` p
		JOIN ` + aa.table + ` ra ON ra.pid = p.pid_a AND ` + consentA + `
		JOIN ` + ab.table + ` rb ON rb.pid = p.pid_b AND ` + consentB
		q = strings.ReplaceAll(q, "$purpose", "?")
		args := []any{}
		for i := 0; i < strings.Count(q, "?"); i++ {
			args = append(args, c.Rules.Purpose)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("cohort: building the cohort: %w", err)
		}
		var columns []string
		for col := range b.sides {
			columns = append(columns, col)
		}
		sort.Strings(columns)
		if b.facts, err = FinishTable(ctx, tx, stage, b.table, columns, c.Rules.Dimensions); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT count(DISTINCT uid) FROM `+b.table).Scan(&b.exact)
	})
	if err != nil {
		return builtCohort{}, err
	}
	// One person changes the count of distinct people by at most one.
	if b.noisy, err = dp.NoisyCount(b.exact, dp.CountOptions{Epsilon: c.Rules.MatchEpsilon, Sensitivity: 1}); err != nil {
		s.dropTables(b.people, b.table)
		return builtCohort{}, fmt.Errorf("cohort: noise: %w", err)
	}
	return b, nil
}

// publishCohort makes a built cohort the match's, in tx (a DB.Write, which
// has checked the match is still live): it renames the tables, charges
// both parties for the noisy size and records it. Only catalog and
// metadata changes: the write lock is held for milliseconds.
func (s *Service) publishCohort(ctx context.Context, tx *sql.Tx, actor partners.Principal, c wire.Collaboration, m Match, b builtCohort) error {
	table, now := cohortTable(m.ID), s.now()
	for _, r := range [][2]string{{b.people, peopleTable(m.ID)}, {b.table, table}} {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+store.QuoteIdent(r[0])+` RENAME TO `+store.QuoteIdent(r[1])); err != nil {
			return fmt.Errorf("cohort: naming %s: %w", r[1], err)
		}
	}
	// Both parties see the noisy size: each pays for it from its budget.
	for _, p := range c.Members() {
		if _, err := ledger.Debit(ctx, tx, ledger.Charge{CollabID: c.ID, PartnerID: p, Kind: ledger.KindMatch, Ref: m.ID,
			Epsilon: c.Rules.MatchEpsilon, Budget: ledger.Of(c.Rules), Now: now}); err != nil {
			if errs.KindOf(err) == nil {
				return err // the database's, not the caller's to read
			}
			return errs.New(errs.Conflict, "partner %s cannot pay for the match's noisy size: %v", p, err)
		}
	}
	sides, err := json.Marshal(b.sides)
	if err != nil {
		return fmt.Errorf("cohort: columns of %s: %w", table, err)
	}
	facts, err := b.facts.json()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE matches SET state = ?, cohort_table = ?, cohort_size = ?, noisy_size = ?, cohort_columns = ?, cohort_facts = ?, updated_at = ? WHERE id = ?`,
		wire.MatchDone, table, b.exact, b.noisy, string(sides), facts, now.UTC(), m.ID); err != nil {
		return err
	}
	// The log is read by both parties' auditors: it holds the noisy size only.
	_, err = auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.MatchComplete,
		map[string]any{"match_id": m.ID, "cohort_size_noisy": b.noisy, "epsilon": c.Rules.MatchEpsilon, "cohort_table": table})
	return err
}

// Cohort is what queries need of a collaboration's current cohort.
type Cohort struct {
	Table string
	// NoisySize is the size released (and charged) at match time: the only
	// size rules such as min_cohort_users may be compared with, since it is
	// already public to both parties.
	NoisySize int64
	// Version names the cohort's content: the match and its revision,
	// bumped by every deletion in the collaboration.
	Version string
	// Sides maps each attribute column to the party it came from, "a" (the
	// proposer) or "b".
	Sides map[string]string
	// Facts were computed when the cohort was built; the zero value (a
	// cohort built before they existed) lets queries skip nothing.
	Facts Facts
}

// RowColumn names the source-row column (_a_row or _b_row) of an attribute
// column, or "" for a column of neither party.
func (c Cohort) RowColumn(col string) string {
	switch c.Sides[col] {
	case "a":
		return "_a_row"
	case "b":
		return "_b_row"
	}
	return ""
}

// Current returns a collaboration's latest completed match whose audiences
// are both still current.
func (s *Service) Current(ctx context.Context, q store.Querier, collabID string) (Cohort, error) {
	var co Cohort
	var cols, facts sql.NullString
	err := q.QueryRowContext(ctx, `SELECT m.cohort_table, m.noisy_size, CAST(m.cohort_columns AS VARCHAR), CAST(m.cohort_facts AS VARCHAR),
			m.id || '.' || coalesce((SELECT max(rev) FROM cohort_revisions r WHERE r.match_id = m.id), 0) FROM matches m
		WHERE m.collab_id = ? AND m.state = ? AND
			(SELECT count(*) FROM audiences x WHERE x.id IN (m.audience_a, m.audience_b) AND x.deleted_at IS NULL) = 2
		ORDER BY m.updated_at DESC LIMIT 1`, collabID, wire.MatchDone).Scan(&co.Table, &co.NoisySize, &cols, &facts, &co.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return co, errs.New(errs.NotFound, "collaboration %s has no current cohort; both parties upload, then match", collabID)
	}
	if err != nil {
		return co, err
	}
	co.Sides = map[string]string{}
	if cols.Valid {
		if err := json.Unmarshal([]byte(cols.String), &co.Sides); err != nil {
			return co, fmt.Errorf("cohort: columns of %s: %w", co.Table, err)
		}
	}
	if facts.Valid {
		if err := json.Unmarshal([]byte(facts.String), &co.Facts); err != nil {
			return co, fmt.Errorf("cohort: facts of %s: %w", co.Table, err)
		}
	}
	return co, nil
}
