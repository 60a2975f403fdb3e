package cohort

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// fixture is a database with two partners in an active collaboration,
// driven through the cohort service directly (no HTTP).
type fixture struct {
	t   *testing.T
	ctx context.Context
	dir string
	db  *store.DB
	s   *Service
	c   wire.Collaboration
	eng [2]partners.Principal // the proposer's (side a) and the other's (side b)
	key [2]*psi.Key
}

const fixtureRules = `{"purpose": "measurement", "min_upload_users": 20, "min_cohort_users": 1, "dimensions": ["brand_label"], "metrics": {"brand_value": [0, 100]}}`

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), dir: t.TempDir()}
	f.open()
	t.Cleanup(func() { f.db.Close() })
	rules, err := partners.ParseRules([]byte(fixtureRules))
	if err != nil {
		t.Fatal(err)
	}
	op := partners.Principal{KeyID: "k_operator", PartnerID: partners.OperatorID, Role: wire.Admin}
	err = f.db.Write(f.ctx, func(tx *sql.Tx) error {
		var admins [2]partners.Principal
		for i, name := range []string{"Brand", "Publisher"} {
			p, _, _, err := (&partners.Service{}).CreatePartner(f.ctx, tx, op, name)
			if err != nil {
				return err
			}
			admins[i] = partners.Principal{KeyID: "k_admin_" + p.ID, PartnerID: p.ID, Role: wire.Admin}
			f.eng[i] = partners.Principal{KeyID: "k_eng_" + p.ID, PartnerID: p.ID, Role: wire.Engineer}
		}
		c, err := (&partners.Service{}).Propose(f.ctx, tx, admins[0], "test", admins[1].PartnerID, rules)
		if err != nil {
			return err
		}
		f.c, err = (&partners.Service{}).Approve(f.ctx, tx, admins[1], c.ID, c.RulesVersion)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.key {
		if f.key[i], err = psi.GenerateKey(nil); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// open opens the database (again, after close: a restart) and runs the
// start-up cleanup, as the server does.
func (f *fixture) open() {
	f.t.Helper()
	db, err := store.Open(f.ctx, f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	f.db = db
	f.s = &Service{DB: db, TempDir: f.dir}
	if err := f.s.Cleanup(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) restart() {
	f.t.Helper()
	if err := f.db.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

// upload uploads people [first, first+n) for side i.
func (f *fixture) upload(i, first, n int) Audience {
	f.t.Helper()
	var csv strings.Builder
	csv.WriteString("email,label,value,consent\n")
	for k := first; k < first+n; k++ {
		fmt.Fprintf(&csv, "person%d@example.com,l%d,%d,measurement\n", k, k%3, k%100)
	}
	var body bytes.Buffer
	if _, err := audience.EncodeCSV(f.ctx, strings.NewReader(csv.String()), &body, f.key[i],
		audience.EncodeOptions{IDColumn: "email", IDType: psi.Email, ConsentColumn: "consent"}); err != nil {
		f.t.Fatal(err)
	}
	a, err := f.s.Upload(f.ctx, f.eng[i], f.c, &body, UploadOptions{Replace: true, KeyFingerprint: f.key[i].Fingerprint()})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// reblind returns side i's re-blinding of the points the match serves it,
// as the Arrow stream PutPoints takes.
func (f *fixture) reblind(i int, m Match) []byte {
	f.t.Helper()
	var pts bytes.Buffer
	if err := f.s.Points(f.ctx, f.c, m, f.eng[i].PartnerID, &pts); err != nil {
		f.t.Fatal(err)
	}
	r, err := ipc.NewReader(&pts)
	if err != nil {
		f.t.Fatal(err)
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
				f.t.Fatal(err)
			}
			q, err := f.key[i].Blind(p)
			if err != nil {
				f.t.Fatal(err)
			}
			b.Append(q[:])
		}
		arr := b.NewArray()
		rec := array.NewRecord(audience.PointsSchema, []arrow.Array{arr}, int64(arr.Len()))
		if err := w.Write(rec); err != nil {
			f.t.Fatal(err)
		}
		rec.Release()
		arr.Release()
		b.Release()
	}
	if err := r.Err(); err != nil && err != io.EOF {
		f.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	return out.Bytes()
}

// match runs both halves of a match to its cohort.
func (f *fixture) match() Match {
	f.t.Helper()
	m, _, err := f.start(0)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range f.eng {
		if m, err = f.s.PutPoints(f.ctx, f.eng[i], f.c, m, f.key[i].Fingerprint(), bytes.NewReader(f.reblind(i, m))); err != nil {
			f.t.Fatal(err)
		}
	}
	if m.State != wire.MatchDone {
		f.t.Fatalf("match %s is %s after both halves", m.ID, m.State)
	}
	return m
}

// tables lists the database's tables, sorted.
func (f *fixture) tables() []string {
	f.t.Helper()
	names, err := store.QueryStrings(f.ctx, f.db.SQL(), `SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY table_name`)
	if err != nil {
		f.t.Fatal(err)
	}
	return names
}

// dataTables lists the tables that hold people's data (audiences and
// everything built from them), sorted.
func (f *fixture) dataTables() []string {
	f.t.Helper()
	var out []string
	for _, n := range f.tables() {
		for _, p := range dataPrefixesForTest {
			if strings.HasPrefix(n, p) {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

var dataPrefixesForTest = []string{"aud_", "upload_", "mpts_", "mtok_", "cpeople_", "clink_", "cohort_m_"}

// liveTables is what a match that is live should hold, with its audiences.
func liveTables(m Match, audiences ...Audience) []string {
	out := []string{
		"cpeople_" + m.ID,
		"mpts_" + m.ID + "_a", "mpts_" + m.ID + "_b",
		"mtok_" + m.ID + "_a", "mtok_" + m.ID + "_b",
	}
	for _, a := range audiences {
		out = append(out, a.table, linkTable(m.ID, a.ID))
	}
	slices.Sort(out)
	return out
}

// start starts (or joins) a match as side i's engineer.
func (f *fixture) start(i int) (Match, bool, error) {
	return f.s.StartMatch(f.ctx, f.eng[i], f.c, "")
}
