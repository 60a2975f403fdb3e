package partners

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// A column a party has, for rules, is a column its cohort can hold, named
// as analysts name it (the party's prefix, then the column):
//
//   - where the rules declare tables, the declared columns, and nothing
//     else: an upload must have exactly them;
//   - where they declare none, the columns of the party's uploaded tables
//     (pid and consent aside); a party that has uploaded nothing yet may
//     be named with any column behind its prefix, since nothing tells
//     which it will bring, and its upload then decides.
//
// A name behind no party's prefix is never a column of the cohort. Rules
// naming a column no party has are refused (errs.InvalidRules) with the
// nearest names: a dimension "region" would let no query group on
// anything.

// uploadedTable is one of a party's current tables: its name and its
// columns' names and types, in upload order.
type uploadedTable struct {
	name string
	cols []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
}

// uploadedTables reads each party's current tables (proposer's, then
// partner's), by name. It reads internal/cohort's audiences table
// directly: cohort imports this package, and only names and types are
// read.
func uploadedTables(ctx context.Context, q store.Querier, c wire.Collaboration) ([2][]uploadedTable, error) {
	var out [2][]uploadedTable
	if c.ID == "" {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT partner_id, name, CAST(columns AS VARCHAR) FROM audiences
		WHERE collab_id = ? AND deleted_at IS NULL ORDER BY name`, c.ID)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var pid, cols string
		var t uploadedTable
		if err := rows.Scan(&pid, &t.name, &cols); err != nil {
			return out, err
		}
		if err := json.Unmarshal([]byte(cols), &t.cols); err != nil {
			return out, fmt.Errorf("partners: columns of table %s: %w", t.name, err)
		}
		switch pid {
		case c.Proposer:
			out[0] = append(out[0], t)
		case c.Partner:
			out[1] = append(out[1], t)
		}
	}
	return out, rows.Err()
}

// tableCols is one table of a party's, declared by rules or uploaded:
// its columns as the table names them and as analysts do.
type tableCols struct {
	name               string
	declared, uploaded bool
	cols               [][2]string // {in the table, as analysts name it}
}

// catalog lists what rules r give each party (proposer, partner), whose
// tables up are uploaded: r's declared tables, then the uploaded tables r
// does not declare.
func catalog(n Naming, r wire.Rules, up [2][]uploadedTable) [2][]tableCols {
	var out [2][]tableCols
	for i, party := range []string{wire.PartyProposer, wire.PartyPartner} {
		uploaded := map[string]bool{}
		for _, t := range up[i] {
			uploaded[t.name] = true
		}
		for _, t := range r.TablesOf(party) {
			tc := tableCols{name: t.Name, declared: true, uploaded: uploaded[t.Name]}
			for _, col := range t.Columns {
				tc.cols = append(tc.cols, [2]string{col.Name, n.Prefixes[i] + col.Name})
			}
			delete(uploaded, t.Name)
			out[i] = append(out[i], tc)
		}
		for _, t := range up[i] {
			if !uploaded[t.name] {
				continue
			}
			tc := tableCols{name: t.name, uploaded: true}
			for _, col := range t.cols {
				if col.Name != "pid" && col.Name != "consent" {
					tc.cols = append(tc.cols, [2]string{col.Name, n.Prefixes[i] + col.Name})
				}
			}
			out[i] = append(out[i], tc)
		}
	}
	return out
}

// checkColumnNames refuses rules r for collaboration c (its ID empty
// when proposed) that name a column no party has: in dimensions,
// metrics, public groups, or templates (a column parameter's default, a
// name in the SQL behind a party's prefix, or a declared column named
// without its prefix).
func checkColumnNames(ctx context.Context, q store.Querier, r *wire.Rules, c wire.Collaboration) error {
	n, err := NamingOf(ctx, q, c.Proposer, c.Partner)
	if err != nil {
		return err
	}
	up, err := uploadedTables(ctx, q, c)
	if err != nil {
		return err
	}
	k := knownColumns(n, catalog(n, *r, up), len(r.Tables) > 0)
	for _, d := range r.Dimensions {
		if err := k.check("dimension", d); err != nil {
			return err
		}
	}
	for _, m := range slices.Sorted(maps.Keys(r.Metrics)) {
		if err := k.check("metric", m); err != nil {
			return err
		}
	}
	for _, g := range slices.Sorted(maps.Keys(r.PublicGroups)) {
		if err := k.check("public_groups", g); err != nil {
			return err
		}
	}
	for _, t := range r.Templates {
		for _, p := range t.Params {
			if p.Type == "column" && p.Default != "" {
				if err := k.check(fmt.Sprintf("template %s: parameter %s: default", t.Name, p.Name), p.Default); err != nil {
					return err
				}
			}
		}
		for _, name := range sqlNames(t.SQL) {
			if k.hasPrefix(name) || k.bare[name] != nil {
				if err := k.check("template "+t.Name+": column", name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// known is what checkColumnNames checks names against.
type known struct {
	n Naming
	// names are the columns known, as analysts name them, in order.
	names []string
	has   map[string]bool
	// open parties (0, 1) have uploaded nothing under rules that declare
	// no tables: any name behind their prefix may be theirs.
	open [2]bool
	// uploaded lists, per party, its uploaded columns (for messages).
	uploaded [2][]string
	// bare maps a column's name without its prefix to its full names.
	bare map[string][]string
}

func knownColumns(n Naming, cat [2][]tableCols, declared bool) *known {
	k := &known{n: n, has: map[string]bool{}, bare: map[string][]string{}}
	for i, tables := range cat {
		some := false
		for _, t := range tables {
			// Declared rules: the declared tables only (an upload of
			// another table is refused); else what was uploaded.
			if declared && !t.declared || !declared && !t.uploaded {
				continue
			}
			some = true
			for _, col := range t.cols {
				if !k.has[col[1]] {
					k.names = append(k.names, col[1])
					k.has[col[1]] = true
					k.bare[col[0]] = append(k.bare[col[0]], col[1])
				}
				if !declared {
					k.uploaded[i] = append(k.uploaded[i], col[0])
				}
			}
		}
		k.open[i] = !declared && !some
	}
	return k
}

// hasPrefix reports whether name starts with a party's prefix.
func (k *known) hasPrefix(name string) bool {
	return strings.HasPrefix(name, k.n.Prefixes[0]) || strings.HasPrefix(name, k.n.Prefixes[1])
}

// check refuses name, in what (a rule), unless a party has it.
func (k *known) check(what, name string) error {
	if k.has[name] {
		return nil
	}
	for i, p := range k.n.Prefixes {
		if k.open[i] && strings.HasPrefix(name, p) && len(name) > len(p) {
			return nil
		}
	}
	cands := slices.Clone(k.names)
	for i, p := range k.n.Prefixes {
		if k.open[i] && !k.hasPrefix(name) {
			cands = append(cands, p+name)
		}
	}
	msg := fmt.Sprintf("rules: %s %q is no column of the cohort", what, name)
	if !k.hasPrefix(name) {
		msg += fmt.Sprintf(": analysts name a column behind its partner's prefix (%s: %s, %s: %s)", k.n.Partners[0], k.n.Prefixes[0], k.n.Partners[1], k.n.Prefixes[1])
	} else {
		for i, p := range k.n.Prefixes {
			if strings.HasPrefix(name, p) && len(k.uploaded[i]) > 0 {
				msg += fmt.Sprintf(": %s's uploaded tables have %s; a column is uploaded before rules name it", k.n.Partners[i], strings.Join(k.uploaded[i], ", "))
				break
			}
		}
	}
	if near := nearest(name, cands, k.n.Prefixes[:]); len(near) > 0 {
		q := make([]string, len(near))
		for i, s := range near {
			q[i] = fmt.Sprintf("%q", s)
		}
		msg += "; did you mean " + strings.Join(q, " or ") + "?"
	} else if len(k.names) > 0 {
		msg += "; the columns are " + strings.Join(k.names, ", ")
	}
	return errs.New(errs.InvalidRules, "%s", msg)
}

// nearest returns up to three of cands nearest name: those that are name
// behind a prefix (region: brand_co_region) or end in _name, then those
// within a few edits of name or of name without its prefix.
func nearest(name string, cands, prefixes []string) []string {
	type scored struct {
		s string
		d int
	}
	bare := func(s string) string {
		for _, p := range prefixes {
			if strings.HasPrefix(s, p) {
				return s[len(p):]
			}
		}
		return s
	}
	limit := max(2, len(bare(name))/3)
	var out []scored
	for _, c := range cands {
		d := 0
		if !strings.HasSuffix(c, "_"+name) {
			d = min(editDistance(name, c), editDistance(bare(name), bare(c))+1)
		}
		if d <= limit {
			out = append(out, scored{c, d})
		}
	}
	slices.SortStableFunc(out, func(a, b scored) int { return a.d - b.d })
	var names []string
	for i := 0; i < len(out) && i < 3; i++ {
		names = append(names, out[i].s)
	}
	return names
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (column names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sqlWords are words of the SQL subset that are no column.
var sqlWords = map[string]bool{"select": true, "from": true, "where": true, "group": true, "by": true, "and": true, "or": true,
	"not": true, "in": true, "between": true, "is": true, "null": true, "true": true, "false": true, "cohort": true, "person": true,
	"date": true, "timestamp": true, "distinct": true, "like": true, "order": true, "having": true, "interval": true}

// sqlNames lists the names a template's SQL may use as columns: words
// outside string literals and {{placeholders}}, and quoted identifiers,
// lower-cased; neither SQL's own words, functions (a word before "("),
// nor aliases (a word after AS, wherever used).
func sqlNames(sql string) []string {
	type word struct {
		w             string
		afterAS, call bool
	}
	var words []word
	afterAS := false
	for i := 0; i < len(sql); {
		ch := sql[i]
		switch {
		case ch == '\'':
			j := i + 1
			for j < len(sql) {
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
			afterAS = false
		case ch == '{' && strings.HasPrefix(sql[i:], "{{"):
			j := strings.Index(sql[i:], "}}")
			if j < 0 {
				i = len(sql)
				continue
			}
			i += j + 2
			afterAS = false
		case ch == '"':
			j := strings.IndexByte(sql[i+1:], '"')
			if j < 0 {
				i = len(sql)
				continue
			}
			words = append(words, word{w: strings.ToLower(sql[i+1 : i+1+j]), afterAS: afterAS})
			i += j + 2
			afterAS = false
		case ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z':
			j := i
			for j < len(sql) && (sql[j] == '_' || sql[j] >= 'a' && sql[j] <= 'z' || sql[j] >= 'A' && sql[j] <= 'Z' || sql[j] >= '0' && sql[j] <= '9') {
				j++
			}
			w := strings.ToLower(sql[i:j])
			k := j
			for k < len(sql) && (sql[k] == ' ' || sql[k] == '\t' || sql[k] == '\n' || sql[k] == '\r') {
				k++
			}
			words = append(words, word{w: w, afterAS: afterAS, call: k < len(sql) && sql[k] == '('})
			afterAS = w == "as"
			i = j
		default:
			if ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' {
				afterAS = false
			}
			i++
		}
	}
	aliases := map[string]bool{}
	for _, w := range words {
		if w.afterAS {
			aliases[w.w] = true
		}
	}
	var out []string
	for _, w := range words {
		if !w.call && !aliases[w.w] && !sqlWords[w.w] && w.w != "as" {
			out = append(out, w.w)
		}
	}
	return out
}
