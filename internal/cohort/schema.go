package cohort

import (
	"context"
	"errors"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

// Schema describes collaboration c's tables as analysts see them: every
// current table of both parties and every table the rules declare, each
// column named as queries name it, with its uploaded type and the role
// and bounds the rules give it. It reads the rules, the partners' names,
// the tables' column lists and whether a cohort is current: what
// GET .../audiences and GET .../matches already tell every member,
// nothing about people.
func (s *Service) Schema(ctx context.Context, q store.Querier, c wire.Collaboration) (wire.Schema, error) {
	out := wire.Schema{Tables: []wire.SchemaTable{}}
	switch _, err := s.Current(ctx, q, c.ID); {
	case err == nil:
		out.Cohort = true
	case !errors.Is(err, errs.NotFound):
		return out, err
	}
	n, err := partners.NamingOf(ctx, q, c.Proposer, c.Partner)
	if err != nil {
		return out, err
	}
	// Roles: a declared table's column rules, else the rules' own
	// dimensions and metrics, which name columns as queries do.
	dims := map[string]bool{}
	for _, d := range c.Rules.Dimensions {
		dims[d] = true
	}
	role := func(name string, declared *wire.ColumnRule) (string, *[2]float64) {
		if declared != nil {
			return string(declared.Role), declared.Bounds
		}
		if b, ok := c.Rules.Metrics[name]; ok {
			return string(wire.RoleMetric), &b
		}
		if dims[name] {
			return string(wire.RoleDimension), nil
		}
		return "", nil
	}
	for i, pid := range c.Members() {
		party, pname := wire.PartyProposer, c.ProposerName
		if i == 1 {
			party, pname = wire.PartyPartner, c.PartnerName
		}
		current, err := s.CurrentTables(ctx, q, c.ID, pid)
		if err != nil {
			return out, err
		}
		uploaded := map[string]Audience{}
		for _, a := range current {
			uploaded[a.Table] = a
		}
		declared := c.Rules.TablesOf(party)
		names := []string{}
		rules := map[string]wire.TableRule{}
		for _, t := range declared {
			names = append(names, t.Name)
			rules[t.Name] = t
		}
		for _, a := range current { // in name order; an undeclared one only without declarations
			if _, ok := rules[a.Table]; !ok {
				names = append(names, a.Table)
			}
		}
		for _, name := range names {
			t := wire.SchemaTable{PartnerID: pid, PartnerName: pname, Table: name, Columns: []wire.SchemaColumn{}}
			decl := map[string]*wire.ColumnRule{}
			var order []string
			if tr, ok := rules[name]; ok {
				for k := range tr.Columns {
					decl[tr.Columns[k].Name] = &tr.Columns[k]
					order = append(order, tr.Columns[k].Name)
				}
			}
			types := map[string]string{}
			if a, ok := uploaded[name]; ok {
				t.Uploaded = true
				cols, err := a.columns()
				if err != nil {
					return out, err
				}
				for _, col := range cols {
					if col.Name == audience.PIDColumn || col.Name == audience.ConsentColumn {
						continue
					}
					if _, ok := decl[col.Name]; !ok {
						order = append(order, col.Name)
					}
					types[col.Name] = col.Type
				}
			}
			for _, col := range order {
				qname := n.Name(partners.TableColumn{Partner: i == 1, Table: t.Table, Column: col})
				r, b := role(qname, decl[col])
				t.Columns = append(t.Columns, wire.SchemaColumn{Name: qname, Column: col, Type: types[col], Role: r, Bounds: b})
			}
			out.Tables = append(out.Tables, t)
		}
	}
	return out, nil
}
