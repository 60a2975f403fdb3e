package partners

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

// rulesJSON parses rules for a test.
func rulesJSON(t *testing.T, s string) wire.Rules {
	t.Helper()
	r, err := ParseRules([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// refused checks err is invalid_rules saying each of want.
func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, errs.InvalidRules) {
		t.Fatalf("error %v, want %v", err, errs.InvalidRules)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the refusal %q does not say %q", err, w)
		}
	}
}

// A proposal naming a column no party has is refused with the nearest
// names, and nothing is stored; where no table is declared and nothing
// is uploaded, a name behind a party's prefix is that party's to bring.
func TestRulesNamingNoColumnAreRefused(t *testing.T) {
	w := newWorld(t)
	propose := func(rules string) (wire.Collaboration, error) {
		var c wire.Collaboration
		err := w.try(func(tx *sql.Tx) (err error) {
			c, err = w.ps.Propose(w.ctx, tx, w.brand, "Spring", w.pub.PartnerID, rulesJSON(t, rules))
			return err
		})
		return c, err
	}
	// The rules: region and exposed can match no cohort column.
	_, err := propose(`{"dimensions": ["region", "exposed"]}`)
	refused(t, err, `dimension "region" is no column of the cohort`, "prefix (Brand Co: brand_co_, Publisher: publisher_)",
		`did you mean "brand_co_region" or "publisher_region"?`)
	if cs, _ := ListCollaborations(w.ctx, w.db.SQL(), w.brand); len(cs) != 0 {
		t.Fatalf("a refused proposal stored %d collaborations", len(cs))
	}
	_, err = propose(`{"metrics": {"spend": [0, 10]}}`)
	refused(t, err, `metric "spend" is no column`, `"brand_co_spend"`)
	_, err = propose(`{"public_groups": {"day": {"values": ["mon"]}}}`)
	refused(t, err, `public_groups "day" is no column`)

	// Declared tables: exactly their columns, each behind its party's prefix.
	declared := `"tables": [
	  {"party": "proposer", "name": "purchases", "columns": [{"name": "purchase_date", "role": "time"}, {"name": "amount", "role": "metric", "bounds": [0, 500]}, {"name": "region", "role": "dimension"}]},
	  {"party": "partner", "name": "exposures", "columns": [{"name": "campaign", "role": "dimension"}, {"name": "exposure_date", "role": "time"}]}]`
	_, err = propose(`{"dimensions": ["region"], ` + declared + `}`)
	refused(t, err, `dimension "region" is no column`, `did you mean "brand_co_region"?`)
	_, err = propose(`{"dimensions": ["publisher_campain"], ` + declared + `}`)
	refused(t, err, `did you mean "publisher_campaign"?`)
	// A name behind a prefix is not enough where tables are declared.
	_, err = propose(`{"public_groups": {"brand_co_tier": {"values": ["gold"]}}, ` + declared + `}`)
	refused(t, err, `public_groups "brand_co_tier" is no column`, "the columns are brand_co_purchase_date, brand_co_amount, brand_co_region, publisher_campaign, publisher_exposure_date")
	// Templates: a column a parameter defaults to, and the names of its SQL.
	_, err = propose(`{` + declared + `, "templates": [{"name": "by_site", "sql": "SELECT {{by}}, COUNT(*) FROM cohort GROUP BY {{by}}",
	  "params": [{"name": "by", "type": "column", "default": "publisher_site"}]}]}`)
	refused(t, err, `template by_site: parameter by: default "publisher_site" is no column`)
	_, err = propose(`{` + declared + `, "templates": [{"name": "spend", "sql": "SELECT SUM(amount) AS amount FROM cohort WHERE campaign = 'x'", "params": []}]}`)
	refused(t, err, `template spend: column "campaign" is no column`, `did you mean "publisher_campaign"?`)
	_, err = propose(`{` + declared + `, "templates": [{"name": "spend", "sql": "SELECT SUM(brand_co_amont) AS total FROM cohort", "params": []}]}`)
	refused(t, err, `template spend: column "brand_co_amont"`, `"brand_co_amount"`)
	// What names real columns passes: functions, aliases, strings, keywords
	// and placeholders are no columns.
	_, err = propose(`{"dimensions": ["brand_co_region"], "metrics": {"brand_co_amount": [0, 500]}, "public_groups": {"publisher_campaign": {"values": ["spring"]}}, ` + declared + `,
	  "templates": [{"name": "spend", "sql": "SELECT publisher_campaign, SUM(brand_co_amount) AS amount, COUNT(*) AS n FROM cohort WHERE date_diff('day', publisher_exposure_date, brand_co_purchase_date) BETWEEN 0 AND {{w}} GROUP BY publisher_campaign",
	    "params": [{"name": "w", "type": "int", "min": 0, "max": 30}]}]}`)
	if err != nil {
		t.Fatalf("rules naming only declared columns: %v", err)
	}

	// No tables declared: before an upload, any name behind a prefix.
	open, err := propose(`{"dimensions": ["brand_co_region", "publisher_exposed"]}`)
	if err != nil {
		t.Fatalf("names behind the parties' prefixes, nothing uploaded: %v", err)
	}
	// Once Brand Co uploaded, its names are its table's columns; the
	// publisher's are still open.
	w.write(func(tx *sql.Tx) error {
		_, err := tx.ExecContext(w.ctx, `INSERT INTO audiences (id, collab_id, partner_id, name, table_name, rows, people, content_sha256, columns, created_at)
			VALUES ('a_test', ?, ?, 'audience', 'aud_test', 10, 10, '', ?, ?)`, open.ID, w.brand.PartnerID,
			`[{"name":"pid","type":"fixed_size_binary[32]"},{"name":"consent","type":"list<item: utf8, nullable>"},{"name":"region","type":"utf8"},{"name":"spend","type":"double"}]`, time.Now())
		return err
	})
	change := func(rules string) error {
		return w.try(func(tx *sql.Tx) error {
			_, err := w.ps.ChangeRules(w.ctx, tx, w.brand, open.ID, rulesJSON(t, rules))
			return err
		})
	}
	refused(t, change(`{"dimensions": ["brand_co_regoin"]}`), `dimension "brand_co_regoin" is no column`,
		"Brand Co's uploaded tables have region, spend; a column is uploaded before rules name it", `did you mean "brand_co_region"?`)
	refused(t, change(`{"metrics": {"spend": [0, 9]}}`), `did you mean "brand_co_spend"`)
	// Rules that declare tables: the uploaded table they leave out is no
	// source of columns (its upload would be refused now).
	refused(t, change(`{"dimensions": ["brand_co_region"], "tables": [{"party": "proposer", "name": "purchases", "columns": [{"name": "amount", "role": "metric", "bounds": [0, 5]}]}]}`),
		`dimension "brand_co_region" is no column`)
	if err := change(`{"dimensions": ["brand_co_region", "publisher_anything"], "metrics": {"brand_co_spend": [0, 9]}}`); err != nil {
		t.Errorf("the uploaded columns and the open party's: %v", err)
	}
	got, err := GetCollaboration(w.ctx, w.db.SQL(), open.ID, w.brand)
	if err != nil || got.RulesVersion != 2 {
		t.Errorf("refused changes changed the rules: version %d, %v", got.RulesVersion, err)
	}

}

func TestNearestNames(t *testing.T) {
	p := []string{"brand_co_", "publisher_"}
	cands := []string{"brand_co_region", "brand_co_spend", "publisher_exposed", "publisher_impressions"}
	for _, c := range []struct{ name, want string }{
		{"region", "brand_co_region"},
		{"exposd", "publisher_exposed"},
		{"brand_co_regin", "brand_co_region"},
		{"publisher_impresions", "publisher_impressions"},
		{"brand_region", "brand_co_region"},
		{"zzz", ""},
	} {
		if got := strings.Join(nearest(c.name, cands, p), ","); got != c.want {
			t.Errorf("nearest(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
