package partners

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// Naming is how a collaboration's cohort names the parties' columns for
// analysts: each behind its party's prefix, so an analyst can tell whose
// a column is. It depends on the partners' names alone, never on the
// columns, so a column keeps its name whatever the other party brings.
type Naming struct {
	// Partners are the partners' names (proposer, partner), for messages.
	Partners [2]string
	// Prefixes are the parties' prefixes (proposer, partner).
	Prefixes [2]string
}

var slugRe = regexp.MustCompile(`[^a-z0-9]+`)

// prefixOf is a partner name as a column prefix ("Brand Co": brand_co),
// or "" when nothing usable is left.
func prefixOf(name string) string {
	s := strings.Trim(slugRe.ReplaceAllString(strings.ToLower(name), "_"), "_")
	if len(s) > 20 {
		s = s[:20]
	}
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return ""
	}
	return s
}

// NamingOf returns the naming of the cohort columns of a collaboration
// between proposer and partner (IDs): prefixes from their names, or a_ and b_ for both when a name
// gives no prefix or both give the same one.
func NamingOf(ctx context.Context, q store.Querier, proposer, partner string) (Naming, error) {
	var n Naming
	for i, id := range []string{proposer, partner} {
		p, err := GetPartner(ctx, q, id)
		if err != nil {
			return n, fmt.Errorf("partners: naming columns: %w", err)
		}
		n.Partners[i], n.Prefixes[i] = p.Name, prefixOf(p.Name)
	}
	if n.Prefixes[0] == "" || n.Prefixes[1] == "" || n.Prefixes[0] == n.Prefixes[1] {
		n.Prefixes = [2]string{"a", "b"}
	}
	n.Prefixes[0] += "_"
	n.Prefixes[1] += "_"
	return n, nil
}

// TableColumn is a column of one party's table.
type TableColumn struct {
	Partner bool // the partner's (side b), not the proposer's
	Table   string
	Column  string
}

func (t TableColumn) party() int {
	if t.Partner {
		return 1
	}
	return 0
}

// Name is the name analysts give a column.
func (n Naming) Name(c TableColumn) string { return n.Prefixes[c.party()] + c.Column }

// Names names cols, in order. Two columns that would have one name are
// an error naming both, never a name made up for one of them: when one
// prefix starts the other ("Brand" and "Brand Co"), Brand's co_region
// and Brand Co's region would both be brand_co_region.
func (n Naming) Names(cols []TableColumn) ([]string, error) {
	out := make([]string, len(cols))
	seen := make(map[string]int, len(cols))
	for i, c := range cols {
		name := n.Name(c)
		if j, ok := seen[name]; ok {
			return nil, n.clash(name, cols[j], c)
		}
		seen[name] = i
		out[i] = name
	}
	return out, nil
}

func (n Naming) clash(name string, a, b TableColumn) error {
	if a.party() == b.party() {
		return fmt.Errorf("%s's tables %s and %s both have column %s, which analysts name %s; name them apart", n.Partners[a.party()], a.Table, b.Table, a.Column, name)
	}
	if a.Partner {
		a, b = b, a
	}
	return fmt.Errorf("analysts would name two columns %s: %s's column %s (table %s, prefix %s) and %s's column %s (table %s, prefix %s); rename one of them",
		name, n.Partners[0], a.Column, a.Table, n.Prefixes[0], n.Partners[1], b.Column, b.Table, n.Prefixes[1])
}

// DeclaredColumns lists the columns the rules declare, in rule order.
func DeclaredColumns(r wire.Rules) []TableColumn {
	var out []TableColumn
	for _, t := range r.Tables {
		for _, c := range t.Columns {
			out = append(out, TableColumn{Partner: t.Party == wire.PartyPartner, Table: t.Name, Column: c.Name})
		}
	}
	return out
}
