package auditlog

import (
	"context"
	"fmt"

	"github.com/cleanroom/cleanroom/internal/store"
)

// Names are what a reader of the log may call its IDs by: for filters by
// name and label, the console and CSV exports. Each map holds only what
// the readers (nil: the operator, everything) may already read elsewhere.
type Names struct {
	// Collabs names the readers' collaborations.
	Collabs map[string]string
	// Partners names the readers' partners and the other partner of each
	// of their collaborations (as GET /v1/collaborations does).
	Partners map[string]string
	// Labels are the labels of the readers' own keys, never another
	// partner's: their admins named them, for themselves.
	Labels map[string]string
}

// LoadNames reads the names readers (nil: every partner) may use.
func LoadNames(ctx context.Context, q store.Querier, readers []string) (Names, error) {
	n := Names{Collabs: map[string]string{}, Partners: map[string]string{}, Labels: map[string]string{}}
	if readers != nil && len(readers) == 0 {
		return n, nil
	}
	collabs, keys, partners := `SELECT id, name FROM collaborations`, `SELECT id, label FROM api_keys`, `SELECT id, name FROM partners`
	var cargs, kargs, pargs []any
	if readers != nil {
		ph := placeholders(len(readers))
		collabs += ` WHERE proposer IN (` + ph + `) OR partner IN (` + ph + `)`
		cargs = append(anys(readers), anys(readers)...)
		keys += ` WHERE partner_id IN (` + ph + `)`
		kargs = anys(readers)
		partners += ` WHERE id IN (` + ph + `) OR id IN (SELECT proposer FROM collaborations WHERE partner IN (` + ph + `))
			OR id IN (SELECT partner FROM collaborations WHERE proposer IN (` + ph + `))`
		pargs = append(append(anys(readers), anys(readers)...), anys(readers)...)
	}
	for _, x := range []struct {
		query string
		args  []any
		into  map[string]string
	}{{collabs, cargs, n.Collabs}, {keys, kargs, n.Labels}, {partners, pargs, n.Partners}} {
		rows, err := q.QueryContext(ctx, x.query, x.args...)
		if err != nil {
			return Names{}, fmt.Errorf("auditlog.LoadNames: %w", err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return Names{}, fmt.Errorf("auditlog.LoadNames: %w", err)
			}
			if name != "" {
				x.into[id] = name
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return Names{}, fmt.Errorf("auditlog.LoadNames: %w", err)
		}
	}
	return n, nil
}
