package cohort

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/psi"
)

// uploadRows uploads side i's CSV rows (email,label,value,consent).
func (f *fixture) uploadRows(i int, rows []string) {
	f.t.Helper()
	csv := "email,label,value,consent\n" + strings.Join(rows, "\n") + "\n"
	var body bytes.Buffer
	if _, err := audience.EncodeCSV(f.ctx, strings.NewReader(csv), &body, f.key[i],
		audience.EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent"}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.s.Upload(f.ctx, f.eng[i], f.c, &body, ArrowStream, 0); err != nil {
		f.t.Fatal(err)
	}
}

// TestFactsAtBuild: a match stores the cohort's facts and the rank
// columns of its varying dimensions, so no query computes them; Backfill
// gives a cohort built without them the same facts.
func TestFactsAtBuild(t *testing.T) {
	f := newFixture(t)
	f.c.Rules.Dimensions = []string{"brand_label", "publisher_label"}
	// Brand: 40 people with three purchases each in labels l0, l1, l2 (the
	// first 20) or one label (the others). Publisher: one row each.
	var a, b []string
	for k := 0; k < 40; k++ {
		for j := 0; j < 3; j++ {
			label := j
			if k >= 20 {
				label = k % 3
			}
			a = append(a, fmt.Sprintf("person%d@example.com,l%d,%d,measurement", k, label, j))
		}
		b = append(b, fmt.Sprintf("person%d@example.com,p%d,1,measurement", k, k%4))
	}
	f.uploadRows(0, a)
	f.uploadRows(1, b)
	m := f.match()
	co, err := f.s.Current(f.ctx, f.db.SQL(), f.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := Facts{
		UniqueRows: map[string]bool{"_a_row": true, "_b_row": false},
		PerUser:    map[string]bool{"brand_label": false, "brand_value": false, "publisher_label": true, "publisher_value": true},
		GroupRank:  map[string]string{"brand_label": "_rank_brand_label"},
	}
	if !reflect.DeepEqual(co.Facts, want) {
		t.Fatalf("facts %+v\nwant %+v", co.Facts, want)
	}
	// Each person's distinct labels have the distinct ranks 0..n-1, and a
	// label's rows share one rank.
	var bad int
	err = f.db.SQL().QueryRow(`SELECT count(*) FROM (SELECT uid, count(DISTINCT brand_label) AS n, count(DISTINCT _rank_brand_label) AS r,
			max(_rank_brand_label) AS top, count(DISTINCT (brand_label, _rank_brand_label)) AS pairs
		FROM ` + co.Table + ` GROUP BY uid) WHERE n <> r OR top <> n - 1 OR pairs <> n`).Scan(&bad)
	if err != nil || bad != 0 {
		t.Errorf("%d people with ranks that are not 0..n-1 over their labels (%v)", bad, err)
	}
	if tables := f.tables(); fmt.Sprint(tables) != fmt.Sprint(removeStage(tables)) {
		t.Errorf("a stage table is left: %v", tables)
	}

	// A cohort from before the facts: no facts, no rank column.
	if _, err := f.db.SQL().Exec(`CREATE TABLE old AS SELECT * EXCLUDE (_rank_brand_label) FROM ` + co.Table); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE ` + co.Table, `ALTER TABLE old RENAME TO ` + co.Table, `UPDATE matches SET cohort_facts = NULL WHERE id = '` + m.ID + `'`} {
		if _, err := f.db.SQL().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if co, err = f.s.Current(f.ctx, f.db.SQL(), f.c.ID); err != nil || co.Facts.UniqueRows != nil {
		t.Fatalf("facts before the backfill: %+v (%v)", co.Facts, err)
	}
	// The stored rules still name the upload's own columns; the backfill
	// ranks the dimensions of the rules as stored.
	if _, err := f.db.SQL().Exec(`UPDATE collaborations SET rules = json_merge_patch(rules, '{"dimensions": ["brand_label", "publisher_label"]}') WHERE id = ?`, f.c.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Backfill(f.ctx); err != nil {
		t.Fatal(err)
	}
	if co, err = f.s.Current(f.ctx, f.db.SQL(), f.c.ID); err != nil || !reflect.DeepEqual(co.Facts, want) {
		t.Fatalf("facts after the backfill %+v (%v)\nwant %+v", co.Facts, err, want)
	}
	var rows int
	if err := f.db.SQL().QueryRow(`SELECT count(_rank_brand_label) FROM ` + co.Table).Scan(&rows); err != nil || rows != 120 {
		t.Errorf("after the backfill the cohort has %d ranked rows (%v), want 120", rows, err)
	}
	// A second backfill has nothing to do.
	if err := f.s.Backfill(f.ctx); err != nil {
		t.Fatal(err)
	}
}

func removeStage(names []string) []string {
	var out []string
	for _, n := range names {
		if !strings.HasSuffix(n, "_stage") {
			out = append(out, n)
		}
	}
	return out
}
