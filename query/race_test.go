package query

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// A party replacing its table (or deleting people) while a question runs
// drops the cohort the question read outside the write lock. The analyst
// gets a refusal or a conflict that says to ask again, and is charged
// nothing: not a 500 (bench soak found a query failing with DuckDB's
// "table does not exist" as an internal error).
func TestCohortReplacedWhileQueryRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, dir)
	co := &cohort.Service{DB: db, TempDir: dir}
	rules, err := partners.ParseRules([]byte(`{"purpose": "measurement", "min_upload_users": 20, "min_cohort_users": 1, "dimensions": ["brand_label"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var c wire.Collaboration
	var eng [2]partners.Principal
	op := partners.Principal{KeyID: "k_operator", PartnerID: partners.OperatorID, Role: wire.Admin}
	err = db.Write(ctx, func(tx *sql.Tx) error {
		var admins [2]partners.Principal
		for i, name := range []string{"Brand", "Publisher"} {
			p, _, _, err := (&partners.Service{}).CreatePartner(ctx, tx, op, name)
			if err != nil {
				return err
			}
			admins[i] = partners.Principal{KeyID: "k_admin_" + p.ID, PartnerID: p.ID, Role: wire.Admin}
			eng[i] = partners.Principal{KeyID: "k_eng_" + p.ID, PartnerID: p.ID, Role: wire.Engineer}
		}
		p, err := (&partners.Service{}).Propose(ctx, tx, admins[0], "race", admins[1].PartnerID, rules)
		if err != nil {
			return err
		}
		c, err = (&partners.Service{}).Approve(ctx, tx, admins[1], p.ID, p.RulesVersion)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys [2]*psi.Key
	upload := func(i int) {
		t.Helper()
		if keys[i] == nil {
			if keys[i], err = psi.GenerateKey(nil); err != nil {
				t.Fatal(err)
			}
		}
		var csv strings.Builder
		csv.WriteString("email,label,consent\n")
		for k := 0; k < 60; k++ {
			fmt.Fprintf(&csv, "person%d@example.com,l%d,measurement\n", k, k%3)
		}
		var body bytes.Buffer
		if _, err := audience.EncodeCSV(ctx, strings.NewReader(csv.String()), &body, keys[i],
			audience.EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent"}); err != nil {
			t.Fatal(err)
		}
		if _, err := co.Upload(ctx, eng[i], c, &body, cohort.UploadOptions{Replace: true, KeyFingerprint: keys[i].Fingerprint()}); err != nil {
			t.Fatal(err)
		}
	}
	upload(0)
	upload(1)
	rematch := func() {
		t.Helper()
		m, _, err := co.StartMatch(ctx, eng[0], c, "")
		if err != nil {
			t.Fatal(err)
		}
		for i := range eng {
			var pts bytes.Buffer
			if err := co.Points(ctx, c, m, eng[i].PartnerID, &pts); err != nil {
				t.Fatal(err)
			}
			if m, err = co.PutPoints(ctx, eng[i], c, m, keys[i].Fingerprint(), bytes.NewReader(reblindAll(t, &pts, keys[i]))); err != nil {
				t.Fatal(err)
			}
		}
		if m.State != wire.MatchDone {
			t.Fatalf("match is %s", m.State)
		}
	}
	rematch()

	s := &Service{DB: db, Cohorts: co}
	analyst := partners.Principal{KeyID: "k_analyst", PartnerID: eng[0].PartnerID, Role: wire.Analyst}
	spent := func() float64 {
		t.Helper()
		st, err := s.Budgets(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range st.Budgets {
			if b.PartnerID == analyst.PartnerID {
				return b.Spent
			}
		}
		t.Fatal("no budget for the analyst's partner")
		return 0
	}
	// A party replaces its table after the question has read the
	// cohort's record, before the columns' types or the rows: the
	// match's tables are dropped in that moment.
	for _, stage := range []string{"types", "read"} {
		t.Run(stage, func(t *testing.T) {
			if stage == "read" {
				// The first subtest left no cohort: match again.
				rematch()
			}
			before := spent()
			s.midRun = func(at string) {
				if at == stage {
					s.midRun = nil
					upload(0)
				}
			}
			_, err = s.Run(ctx, analyst, c, wire.Request{SQL: "SELECT brand_label, COUNT(*) FROM cohort GROUP BY brand_label", Epsilon: 0.5})
			qe, ok := asError(err)
			if !ok || (qe.Kind != errs.NoCohort && qe.Kind != errs.Conflict) {
				t.Fatalf("query over a cohort dropped under it: %v, want a %s refusal or a %s", err, errs.NoCohort.Code(), errs.Conflict.Code())
			}
			if !strings.Contains(qe.Error(), "ask again") {
				t.Errorf("the error %q does not say to ask again", qe.Error())
			}
			if got := spent(); got != before {
				t.Errorf("the partner spent %v, then %v after a question that failed", before, got)
			}
		})
	}
}

// reblindAll re-blinds an Arrow stream of points with key.
func reblindAll(t *testing.T, pts *bytes.Buffer, key *psi.Key) []byte {
	t.Helper()
	r, err := ipc.NewReader(pts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var out bytes.Buffer
	w := ipc.NewWriter(&out, ipc.WithSchema(audience.PointsSchema))
	for r.Next() {
		col := r.Record().Column(0).(*array.FixedSizeBinary)
		b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: psi.PointSize})
		for j := 0; j < col.Len(); j++ {
			p, err := psi.DecodePoint(col.Value(j))
			if err != nil {
				t.Fatal(err)
			}
			q, err := key.Blind(p)
			if err != nil {
				t.Fatal(err)
			}
			b.Append(q[:])
		}
		arr := b.NewArray()
		rec := array.NewRecord(audience.PointsSchema, []arrow.Array{arr}, int64(arr.Len()))
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		arr.Release()
		b.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
