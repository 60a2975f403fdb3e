package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// env is a server on loopback over a real DuckDB file, with two partners.
type env struct {
	t       *testing.T
	dir     string
	db      *store.DB
	server  *api.Server
	srv     *httptest.Server
	op      *client.Client
	brand   party
	pub     party
	collab  string
	maxBody int64
	// tune, when set, changes the server's Config at start.
	tune func(*api.Config)
}

type party struct {
	id                         string
	admin, eng, analyst, audit *client.Client
	key                        *psi.Key
}

func (e *env) start() {
	t := e.t
	db, err := store.Open(context.Background(), e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	cfg := api.Config{DataDir: e.dir, DB: db, MaxUploadBytes: e.maxBody}
	if e.tune != nil {
		e.tune(&cfg)
	}
	e.server, err = api.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	secret := e.server.OperatorSecret()
	// Every response any test receives is checked against the served
	// OpenAPI document (contract_test.go).
	e.srv = httptest.NewServer(contract(t, e.server.Handler()))
	if secret != "" {
		e.op = client.New(e.srv.URL, secret)
	} else {
		e.op.BaseURL = e.srv.URL
	}
	for _, p := range []*party{&e.brand, &e.pub} {
		for _, c := range []*client.Client{p.admin, p.eng, p.analyst, p.audit} {
			if c != nil {
				c.BaseURL = e.srv.URL
			}
		}
	}
}

func (e *env) stop() {
	e.srv.Close()
	e.server.Close()
	if err := e.db.Close(); err != nil {
		e.t.Fatal(err)
	}
}

func newEnv(t *testing.T, rules string) *env {
	t.Helper()
	return newEnvNamed(t, rules, "Brand Co", "Publisher")
}

// newEnvNamed is newEnv with the two partners' names.
func newEnvNamed(t *testing.T, rules, brandName, pubName string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), maxBody: 64 << 20}
	e.start()
	t.Cleanup(func() { e.srv.Close(); e.db.Close() })
	e.setUp(rules, brandName, pubName)
	return e
}

// setUp creates the two partners, their keys and an active collaboration
// on a started env.
func (e *env) setUp(rules, brandName, pubName string) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	for _, x := range []struct {
		p    *party
		name string
	}{{&e.brand, brandName}, {&e.pub, pubName}} {
		cp, err := e.op.CreatePartner(ctx, x.name)
		if err != nil {
			t.Fatal(err)
		}
		x.p.id = cp.Partner.ID
		x.p.admin = client.New(e.srv.URL, cp.Secret)
		// In a fixed order: the neighbouring-dataset tests compare logs.
		for _, rk := range []struct {
			role string
			dst  **client.Client
		}{{"engineer", &x.p.eng}, {"analyst", &x.p.analyst}, {"auditor", &x.p.audit}} {
			role, dst := rk.role, rk.dst
			k, err := x.p.admin.CreateKey(ctx, x.p.id, role, role)
			if err != nil {
				t.Fatal(err)
			}
			*dst = client.New(e.srv.URL, k.Secret)
		}
		if x.p.key, err = psi.GenerateKey(nil); err != nil {
			t.Fatal(err)
		}
	}
	co, err := e.brand.admin.Propose(ctx, "campaign", e.pub.id, json.RawMessage(rules))
	if err != nil {
		t.Fatal(err)
	}
	if co.State != "proposed" {
		t.Fatalf("new collaboration is %s", co.State)
	}
	if co, err = e.pub.admin.Approve(ctx, co.ID, co.RulesVersion); err != nil {
		t.Fatal(err)
	}
	if co.State != "active" {
		t.Fatalf("approved collaboration is %s", co.State)
	}
	e.collab = co.ID
}

// row is one audience row: person k, with attributes and consent.
type row struct {
	person  int
	value   float64
	label   string
	consent []string
	day     int // days after 2026-10-01, for a table with a date column
}

// encode builds an upload: pids blinded with key, plus attributes.
func encode(t *testing.T, key *psi.Key, rows []row) []byte {
	t.Helper()
	return encodeNamed(t, key, rows, "value")
}

// encodeNamed is encode with the value column named valueColumn.
func encodeNamed(t *testing.T, key *psi.Key, rows []row, valueColumn string) []byte {
	t.Helper()
	return encodeTable(t, key, rows, valueColumn, "label", true)
}

// encodeTable encodes rows with their value and label columns named, and
// their consent only when withConsent.
func encodeTable(t *testing.T, key *psi.Key, rows []row, valueColumn, labelColumn string, withConsent bool) []byte {
	t.Helper()
	return encodeDated(t, key, rows, valueColumn, labelColumn, "", withConsent)
}

// encodeDated is encodeTable with, when dateColumn is not "", each row's
// day as a date column.
func encodeDated(t *testing.T, key *psi.Key, rows []row, valueColumn, labelColumn, dateColumn string, withConsent bool) []byte {
	t.Helper()
	h, _ := psi.NewHasher(psi.Email)
	norm, _ := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	fields := []arrow.Field{
		{Name: "pid", Type: &arrow.FixedSizeBinaryType{ByteWidth: 32}},
		{Name: valueColumn, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: labelColumn, Type: arrow.BinaryTypes.String, Nullable: true},
	}
	if withConsent {
		fields = append(fields, arrow.Field{Name: "consent", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true})
	}
	if dateColumn != "" {
		fields = append(fields, arrow.Field{Name: dateColumn, Type: arrow.FixedWidthTypes.Date32, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	first := arrow.Date32FromTime(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	for start := 0; start < len(rows); start += 700 {
		end := min(start+700, len(rows))
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for _, r := range rows[start:end] {
			d, err := norm.Digest(fmt.Sprintf("person%d@example.com", r.person))
			if err != nil {
				t.Fatal(err)
			}
			p, err := key.Blind(h.Hash(d[:]))
			if err != nil {
				t.Fatal(err)
			}
			b.Field(0).(*array.FixedSizeBinaryBuilder).Append(p[:])
			b.Field(1).(*array.Float64Builder).Append(r.value)
			b.Field(2).(*array.StringBuilder).Append(r.label)
			next := 3
			if withConsent {
				lb := b.Field(next).(*array.ListBuilder)
				lb.Append(true)
				for _, c := range r.consent {
					lb.ValueBuilder().(*array.StringBuilder).Append(c)
				}
				next++
			}
			if dateColumn != "" {
				b.Field(next).(*array.Date32Builder).Append(first + arrow.Date32(r.day))
			}
		}
		rec := b.NewRecord()
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// audiences: brand has people [0, 1500) with two rows each for even k,
// publisher [1000, 2200); consent is missing for brand k%10==0 and
// publisher k%7==0. The true consented intersection follows.
func audiences() (brand, pub []row, want int) {
	for k := 0; k < 1500; k++ {
		c := []string{"measurement"}
		if k%10 == 0 {
			c = []string{"marketing"}
		}
		brand = append(brand, row{person: k, value: float64(k % 50), label: "region" + fmt.Sprint(k%4), consent: c})
		if k%2 == 0 {
			brand = append(brand, row{person: k, value: 1, label: "region" + fmt.Sprint(k%4), consent: c})
		}
	}
	for k := 1000; k < 2200; k++ {
		c := []string{"measurement", "marketing"}
		if k%7 == 0 {
			c = nil
		}
		pub = append(pub, row{person: k, value: float64(k % 3), label: "exposed", consent: c})
	}
	for k := 1000; k < 1500; k++ {
		if k%10 != 0 && k%7 != 0 {
			want++
		}
	}
	return brand, pub, want
}

const testRules = `{"purpose": "measurement", "min_upload_users": 1000, "dimensions": ["brand_co_label"], "metrics": {"brand_co_value": [0, 100]}}`

// linkedPeople counts the people with rows in a match's linked tables.
func (e *env) linkedPeople(matchID string) int64 {
	e.t.Helper()
	links := e.links(matchID)
	if len(links) == 0 {
		e.t.Fatalf("match %s has no linked tables", matchID)
	}
	var parts []string
	for _, l := range links {
		parts = append(parts, "SELECT uid FROM "+l)
	}
	return e.count(`SELECT count(DISTINCT uid) FROM (` + strings.Join(parts, " UNION ALL ") + `)`)
}

// links lists a match's linked tables, side a's first.
func (e *env) links(matchID string) []string {
	e.t.Helper()
	rows, err := e.db.SQL().Query(`SELECT link_table FROM match_tables WHERE match_id = ? AND link_table IS NOT NULL ORDER BY side, name`, matchID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		rows.Scan(&l)
		out = append(out, l)
	}
	return out
}

func (e *env) exactCohortSize(matchID string) int64 {
	var table string
	var n int64
	if err := e.db.SQL().QueryRow(`SELECT cohort_table FROM matches WHERE id = ?`, matchID).Scan(&table); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.SQL().QueryRow(`SELECT count(DISTINCT uid) FROM ` + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) uploadBoth() int {
	ctx := context.Background()
	brand, pub, want := audiences()
	if _, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(e.t, e.brand.key, brand))); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.pub.eng.Upload(ctx, e.collab, bytes.NewReader(encode(e.t, e.pub.key, pub))); err != nil {
		e.t.Fatal(err)
	}
	return want
}

// matchBoth runs both halves concurrently, as two companies would.
func (e *env) matchBoth() (string, []int64) {
	var wg sync.WaitGroup
	sizes := make([]int64, 2)
	ids := make([]string, 2)
	errs := make([]error, 2)
	for i, p := range []party{e.brand, e.pub} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var steps []string
			m, err := p.eng.DoMatch(context.Background(), e.collab, p.key, client.MatchOptions{Poll: 20e6,
				Started: func(m wire.Match) { steps = append(steps, "started "+m.ID) },
				Sent:    func() { steps = append(steps, "sent") }})
			errs[i] = err
			ids[i] = m.ID
			// Each party is told of its steps once, in order, for the match it ends with.
			if want := []string{"started " + m.ID, "sent"}; err == nil && !slices.Equal(steps, want) {
				errs[i] = fmt.Errorf("DoMatch told %q, want %q", steps, want)
			}
			if m.NoisySize != nil {
				sizes[i] = *m.NoisySize
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			e.t.Fatal(err)
		}
	}
	if ids[0] != ids[1] {
		e.t.Fatalf("parties ran different matches %s and %s", ids[0], ids[1])
	}
	return ids[0], sizes
}

func TestEndToEndMatchOverHTTP(t *testing.T) {
	e := newEnv(t, testRules)
	want := e.uploadBoth()
	mid, sizes := e.matchBoth()
	if got := e.exactCohortSize(mid); got != int64(want) {
		t.Fatalf("cohort has %d people, want the true consented intersection %d", got, want)
	}
	if sizes[0] != sizes[1] {
		t.Errorf("parties saw different noisy sizes %d and %d", sizes[0], sizes[1])
	}
	// Noise at epsilon 0.1 is Laplace with scale 10: far off means no noise
	// or a wrong size; exactly equal is possible but rare.
	if d := sizes[0] - int64(want); d > 200 || d < -200 {
		t.Errorf("noisy size %d is implausibly far from %d", sizes[0], want)
	}

	// The cohort is the person map and each party's table linked to it
	// by uid: its attributes, and neither points nor tokens.
	links := e.links(mid)
	columns := func(table string) string {
		rows, err := e.db.SQL().Query(`SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index`, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var cols []string
		for rows.Next() {
			var c string
			rows.Scan(&c)
			cols = append(cols, c)
		}
		return strings.Join(cols, ",")
	}
	if len(links) != 2 || columns(links[0]) != "uid,value,label" || columns(links[1]) != "uid,value,label" {
		t.Errorf("linked tables %v, want two of uid,value,label", links)
	}
	if got := columns("cpeople_" + mid); got != "uid,pid_a,pid_b" {
		t.Errorf("person map columns %s", got)
	}
	// Brand's even people have two rows: its linked table has more rows
	// than people, and no table has the product of both parties' rows.
	brandRows, pubRows := e.count(`SELECT count(*) FROM `+links[0]), e.count(`SELECT count(*) FROM `+links[1])
	if brandRows <= int64(want) || pubRows != int64(want) {
		t.Errorf("linked rows: brand %d, publisher %d, for %d people; want more brand rows than people, one publisher row each", brandRows, pubRows, want)
	}
}

func TestMatchIsIdempotentAndSurvivesRestart(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	want := e.uploadBoth()
	m1, err := e.brand.eng.StartMatch(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := e.pub.eng.StartMatch(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	if m1.ID != m2.ID {
		t.Fatalf("second start made a new match %s (first %s)", m2.ID, m1.ID)
	}
	// Brand does its half twice (a retry); the second is a no-op.
	for i := 0; i < 2; i++ {
		if err := e.brand.eng.ReblindPoints(ctx, e.collab, m1.ID, e.brand.key, client.MatchOptions{}); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	// A different re-blinding of the same half is refused.
	other, _ := psi.GenerateKey(nil)
	err = e.brand.eng.ReblindPoints(ctx, e.collab, m1.ID, other, client.MatchOptions{})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 409 {
		t.Fatalf("a different half: got %v, want 409", err)
	}

	// Restart between the halves: the match resumes.
	e.stop()
	e.start()
	m, err := e.pub.eng.Match(ctx, e.collab, m1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != "waiting" || !m.HalfB || m.HalfA {
		t.Fatalf("after restart: %+v", m)
	}
	m, err = e.pub.eng.DoMatch(ctx, e.collab, e.pub.key, client.MatchOptions{Poll: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	if m.State != "done" || m.ID != m1.ID {
		t.Fatalf("after the second half: %+v", m)
	}
	if got := e.exactCohortSize(m.ID); got != int64(want) {
		t.Errorf("cohort %d, want %d", got, want)
	}

	// Another restart: partners, keys, collaboration, audiences, match and
	// cohort are all still there.
	e.stop()
	e.start()
	co, err := e.pub.analyst.Collaboration(ctx, e.collab)
	if err != nil || co.State != "active" {
		t.Fatalf("collaboration after restart: %+v %v", co, err)
	}
	m, err = e.brand.eng.Match(ctx, e.collab, m1.ID)
	if err != nil || m.State != "done" || m.NoisySize == nil {
		t.Fatalf("match after restart: %+v %v", m, err)
	}
	if got := e.exactCohortSize(m.ID); got != int64(want) {
		t.Errorf("cohort after restart %d, want %d", got, want)
	}
}

func TestNewUploadReplacesAndMakesCohortStale(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	e.uploadBoth()
	mid, _ := e.matchBoth()
	brand, _, _ := audiences()
	a, err := e.brand.eng.UploadTable(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand[:1800])), client.UploadOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Replaced == "" {
		t.Error("the new upload does not say it replaced the old one")
	}
	var live, tables int
	e.db.SQL().QueryRow(`SELECT count(*) FROM audiences WHERE partner_id = ? AND deleted_at IS NULL`, e.brand.id).Scan(&live)
	e.db.SQL().QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'aud\_%' ESCAPE '\'`).Scan(&tables)
	if live != 1 || tables != 2 {
		t.Errorf("%d live brand audiences and %d audience tables; want 1 and 2: the new one and the publisher's (old data deleted)", live, tables)
	}
	m, err := e.brand.eng.Match(ctx, e.collab, mid)
	if err != nil || m.State != "stale" {
		t.Errorf("old match is %q (%v), want stale", m.State, err)
	}
}

// toParquet rewrites an Arrow IPC upload as a Parquet file.
func toParquet(t *testing.T, ipcBytes []byte) []byte {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(ipcBytes))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(r.Schema(), &buf, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		if err := w.WriteBuffered(r.Record()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParquetUploadMatchesLikeArrow(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	brand, pub, want := audiences()
	a, err := e.brand.eng.UploadParquet(ctx, e.collab, bytes.NewReader(toParquet(t, encode(t, e.brand.key, brand))))
	if err != nil {
		t.Fatal(err)
	}
	if a.Rows != int64(len(brand)) {
		t.Errorf("parquet upload stored %d rows, want %d", a.Rows, len(brand))
	}
	if _, err := e.pub.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.pub.key, pub))); err != nil {
		t.Fatal(err)
	}
	mid, _ := e.matchBoth()
	if got := e.exactCohortSize(mid); got != int64(want) {
		t.Errorf("cohort %d, want %d", got, want)
	}
	// Garbage sent as Parquet is refused and leaves no spooled file.
	if _, err := e.brand.eng.UploadTable(ctx, e.collab, strings.NewReader("PAR1 not really"), client.UploadOptions{Parquet: true, Replace: true}); status(err) != 400 {
		t.Errorf("bad parquet: %v, want 400", err)
	}
}

func status(err error) int {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Status
	}
	return 0
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	// A third partner with its own collaboration-less keys.
	cp, err := e.op.CreatePartner(ctx, "Outsider")
	if err != nil {
		t.Fatal(err)
	}
	outsider := client.New(e.srv.URL, cp.Secret)
	ok, _ := outsider.CreateKey(ctx, cp.Partner.ID, "engineer", "")
	outEng := client.New(e.srv.URL, ok.Secret)

	cases := []struct {
		name string
		c    *client.Client
		do   func(c *client.Client) error
		want int
	}{
		{"outsider admin reads collab", outsider, func(c *client.Client) error { _, err := c.Collaboration(ctx, e.collab); return err }, 404},
		{"outsider engineer uploads", outEng, func(c *client.Client) error {
			_, err := c.Upload(ctx, e.collab, strings.NewReader("x"))
			return err
		}, 404},
		{"outsider starts match", outEng, func(c *client.Client) error { _, err := c.StartMatch(ctx, e.collab); return err }, 404},
		{"analyst uploads", e.brand.analyst, func(c *client.Client) error {
			_, err := c.Upload(ctx, e.collab, strings.NewReader("x"))
			return err
		}, 403},
		{"auditor starts match", e.pub.audit, func(c *client.Client) error { _, err := c.StartMatch(ctx, e.collab); return err }, 403},
		{"engineer approves", e.pub.eng, func(c *client.Client) error { _, err := c.Approve(ctx, e.collab, 0); return err }, 403},
		{"engineer creates key", e.brand.eng, func(c *client.Client) error { _, err := c.CreateKey(ctx, e.brand.id, "admin", ""); return err }, 403},
		{"admin creates key for other partner", e.brand.admin, func(c *client.Client) error { _, err := c.CreateKey(ctx, e.pub.id, "admin", ""); return err }, 404},
		{"partner admin creates partner", e.brand.admin, func(c *client.Client) error { _, err := c.CreatePartner(ctx, "X"); return err }, 403},
		{"analyst reads audit", e.brand.analyst, func(c *client.Client) error { _, err := c.AuditLog(ctx, nil); return err }, 403},
		{"no key", client.New(e.srv.URL, ""), func(c *client.Client) error { _, err := c.Collaborations(ctx); return err }, 401},
		{"made-up key", client.New(e.srv.URL, "crk_k_abc.def"), func(c *client.Client) error { _, err := c.Collaborations(ctx); return err }, 401},
		{"member analyst reads collab", e.pub.analyst, func(c *client.Client) error { _, err := c.Collaboration(ctx, e.collab); return err }, 0},
		{"member auditor reads audit", e.pub.audit, func(c *client.Client) error { _, err := c.AuditLog(ctx, nil); return err }, 0},
	}
	for _, c := range cases {
		if got := status(c.do(c.c)); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	// A revoked key stops working at once.
	k, _ := e.brand.admin.CreateKey(ctx, e.brand.id, "analyst", "temp")
	temp := client.New(e.srv.URL, k.Secret)
	if _, err := temp.Collaborations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.brand.admin.RevokeKey(ctx, e.brand.id, k.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := temp.Collaborations(ctx); status(err) != 401 {
		t.Errorf("revoked key: %v, want 401", err)
	}
}

func TestRulesNeedBothApprovals(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	co, err := e.pub.admin.ChangeRules(ctx, e.collab, json.RawMessage(`{"purpose": "measurement", "min_upload_users": 1000, "epsilon_budget": 5}`))
	if err != nil {
		t.Fatal(err)
	}
	if co.State != "proposed" || co.RulesVersion != 2 {
		t.Fatalf("after a change: %s v%d", co.State, co.RulesVersion)
	}
	brand, _, _ := audiences()
	if _, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(encode(t, e.brand.key, brand))); status(err) != 409 {
		t.Errorf("upload to an unapproved collaboration: %v, want 409", err)
	}
	// Approving a stale version is refused.
	if _, err := e.brand.admin.Approve(ctx, e.collab, 1); status(err) != 409 {
		t.Errorf("approving version 1: %v, want 409", err)
	}
	co, err = e.brand.admin.Approve(ctx, e.collab, 2)
	if err != nil || co.State != "active" || co.Rules.EpsilonBudget != 5 {
		t.Fatalf("after approval: %+v %v", co, err)
	}
	for _, bad := range []struct{ rules, want string }{
		{`{"epsilon_budget": -1}`, "epsilon_budget"},
		{`{"min_upload_users": 0}`, "min_upload_users"},
		{`{"budget_refresh": "weekly"}`, "budget_refresh"},
		{`{"metrics": {"spend": [10, 1]}}`, "spend"},
		{`{"epsilon_budjet": 3}`, "epsilon_budjet"},
		{`{"queriers": ["p_nobody"]}`, "queriers"},
		// A column no party has: nothing is uploaded yet, so either
		// party's prefix.
		{`{"dimensions": ["label"]}`, `dimension "label" is no column of the cohort`},
		{`{"dimensions": ["label"]}`, `did you mean "brand_co_label" or "publisher_label"?`},
		// JSON that does not parse, at its line and column of the body.
		{"{\n  \"epsilon_budget\": 3,\n}", "rules: request body: line 3, column 1: invalid character '}'"},
		{"{\"purpose\": \"measurement\",\n \"dimension\": []}", `rules: request body: line 2, column 2: unknown field "dimension"`},
	} {
		_, err := e.brand.admin.ChangeRules(ctx, e.collab, json.RawMessage(bad.rules))
		if status(err) != 400 || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("rules %s: %v, want a 400 naming %s", bad.rules, err, bad.want)
		}
	}
}

func (e *env) state() string {
	var s strings.Builder
	for _, q := range []string{
		`SELECT count(*) FROM audiences`,
		`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'aud_%' OR table_name LIKE 'upload_%'`,
		`SELECT count(*) FROM audit_log WHERE action = 'audience.upload'`,
	} {
		var n int
		if err := e.db.SQL().QueryRow(q).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintf(&s, "%d ", n)
	}
	return s.String()
}

func TestBadUploadsStoreNothing(t *testing.T) {
	e := newEnv(t, testRules)
	e.maxBody = 1 << 20
	e.stop()
	e.start()
	ctx := context.Background()
	brand, _, _ := audiences()
	good := encode(t, e.brand.key, brand)
	before := e.state()

	lowOrder := bytes.Clone(good)
	// Find the first point (right after the schema message) by value.
	h, _ := psi.NewHasher(psi.Email)
	norm, _ := psi.NewNormalizer(psi.Email, psi.NormalizeOptions{})
	d, _ := norm.Digest("person5@example.com")
	p5, _ := e.brand.key.Blind(h.Hash(d[:]))
	i := bytes.Index(lowOrder, p5[:])
	if i < 0 {
		t.Fatal("point not found in stream")
	}
	copy(lowOrder[i:], make([]byte, 32)) // the all-zero point has low order

	wrongSchema := func() []byte {
		schema := arrow.NewSchema([]arrow.Field{{Name: "email", Type: arrow.BinaryTypes.String}}, nil)
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		b.Field(0).(*array.StringBuilder).Append("alice@example.com")
		w.Write(b.NewRecord())
		w.Close()
		return buf.Bytes()
	}()
	// A NaN or an infinity would make a release fail on whether its
	// person was in the cohort: refused at its row, as Arrow or Parquet.
	withValue := func(at int, v float64) []byte {
		rows := slices.Clone(brand)
		rows[at].value = v
		return encode(t, e.brand.key, rows)
	}
	farDay := slices.Clone(brand)
	farDay[41].day = 3_000_000 // past the year 9999
	tooSmall := encode(t, e.brand.key, brand[:100])
	huge := encode(t, e.brand.key, append(append(append([]row{}, brand...), brand...), brand...))
	for len(huge) <= 1<<20 {
		huge = append(huge, huge...)
	}

	for _, c := range []struct {
		name    string
		body    []byte
		status  int
		msg     string
		parquet bool
	}{
		{"NaN", withValue(700, math.NaN()), 400, `row 701: column "value" is NaN; attributes must be finite numbers (or null)`, false},
		{"infinity", withValue(1, math.Inf(-1)), 400, `row 2: column "value" is -Inf`, false},
		{"infinity in Parquet", toParquet(t, withValue(1999, math.Inf(1))), 400, `row 2000: column "value" is +Inf`, true},
		{"date past 9999", encodeDated(t, e.brand.key, farDay, "value", "label", "day", true), 400, `row 42: column "day" is a date outside the years 1 to 9999`, false},
		{"low-order point", lowOrder, 400, "low order", false},
		{"wrong schema", wrongSchema, 400, "pid", false},
		{"truncated stream", good[:len(good)/2], 400, "", false},
		{"not arrow", []byte("email\nalice@example.com\n"), 400, "Arrow IPC", false},
		{"below min_upload_users", tooSmall, 400, "min_upload_users", false},
		{"over the size limit", huge, 413, "size limit", false},
	} {
		upload := e.brand.eng.Upload
		if c.parquet {
			upload = e.brand.eng.UploadParquet
		}
		_, err := upload(ctx, e.collab, bytes.NewReader(c.body))
		if status(err) != c.status || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %d mentioning %q", c.name, err, c.status, c.msg)
		}
		if after := e.state(); after != before {
			t.Errorf("%s: state changed from %s to %s", c.name, before, after)
		}
	}
	if strings.Contains(e.state(), "person") {
		t.Error("identifiers leaked")
	}
	// A good upload still works afterwards.
	if _, err := e.brand.eng.Upload(ctx, e.collab, bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
}

func TestAuditEntriesForEachAction(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	e.uploadBoth()
	e.matchBoth()
	raw, err := e.brand.audit.AuditLog(ctx, url.Values{"collab": {e.collab}})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Entries []struct {
			Seq      int64           `json:"seq"`
			Action   string          `json:"action"`
			Details  json.RawMessage `json:"details"`
			Private  json.RawMessage `json:"private"`
			Partner  string          `json:"partner_id"`
			PrevHash string          `json:"prev_hash"`
			Hash     string          `json:"hash"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, en := range out.Entries {
		actions = append(actions, en.Action)
	}
	got := strings.Join(actions, ",")
	for _, want := range []string{"collaboration.propose", "collaboration.approve", "audience.upload", "match.start", "match.points", "match.complete"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log %s lacks %s", got, want)
		}
	}
	for _, en := range out.Entries {
		// The brand's auditor reads its own upload's size and content hash;
		// of the publisher's, only what the publisher's audience list shows.
		if en.Action == "audience.upload" && en.Partner == e.brand.id && !strings.Contains(string(en.Private), `"content_sha256"`) {
			t.Errorf("own upload entry lacks a content hash: %s %s", en.Details, en.Private)
		}
		if en.Action == "audience.upload" && en.Partner == e.pub.id &&
			(len(en.Private) > 0 || strings.Contains(string(en.Details), `"rows"`) || strings.Contains(string(en.Details), `content_sha256`)) {
			t.Errorf("the other partner's upload entry shows its size or content: %s %s", en.Details, en.Private)
		}
		if en.Action == "match.complete" && strings.Contains(string(en.Details), `"cohort_size"`) {
			t.Errorf("match entry reveals the exact cohort size: %s", en.Details)
		}
	}
	// The whole log (operator) is one chain.
	full, err := e.op.AuditLog(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	out.Entries = nil
	json.Unmarshal(full, &out)
	prev := strings.Repeat("0", 64)
	for _, en := range out.Entries {
		if en.PrevHash != prev {
			t.Fatalf("entry %d does not link to the one before", en.Seq)
		}
		prev = en.Hash
	}
	// Another partner's auditor sees none of this collaboration.
	cp, _ := e.op.CreatePartner(ctx, "Third")
	third := client.New(e.srv.URL, cp.Secret)
	raw, _ = third.AuditLog(ctx, url.Values{"collab": {e.collab}})
	if strings.Contains(string(raw), "audience.upload") {
		t.Error("a third partner reads this collaboration's log")
	}
	_ = http.StatusOK
}

// A server that dies mid-upload leaves a table no record points to; the
// next start drops it, so an upload is all or nothing across a crash.
func TestRestartDropsInterruptedUploads(t *testing.T) {
	e := newEnv(t, testRules)
	e.uploadBoth()
	e.stop()
	db, err := store.Open(context.Background(), e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE aud_a_crashed (pid BLOB)`, `CREATE TABLE mtok_m_x_a_y (pos BIGINT)`} {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	e.start()
	var n int
	e.db.SQL().QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('aud_a_crashed', 'mtok_m_x_a_y')`).Scan(&n)
	if n != 0 {
		t.Errorf("%d interrupted tables survived the restart", n)
	}
	e.db.SQL().QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'aud\_%' ESCAPE '\'`).Scan(&n)
	if n != 2 {
		t.Errorf("%d audience tables after restart, want the 2 committed ones", n)
	}
}

// Each partner's auditor exports the log and verifies it offline: its own
// entries in full, the others redacted to their place in the chain.
func TestAuditExportVerifiesOffline(t *testing.T) {
	e := newEnv(t, testRules)
	e.uploadBoth()
	e.matchBoth()
	ctx := context.Background()
	resp, err := http.Get(e.srv.URL + "/v1/audit/pubkey")
	if err != nil {
		t.Fatal(err)
	}
	var pk struct {
		PublicKey string `json:"public_key"`
	}
	json.NewDecoder(resp.Body).Decode(&pk)
	resp.Body.Close()
	pub, err := audit.ParsePublicKey(pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := e.op.CreatePartner(ctx, "Third")
	third := client.New(e.srv.URL, cp.Secret)
	for name, c := range map[string]*client.Client{"brand": e.brand.audit, "operator": e.op, "third": third} {
		var buf bytes.Buffer
		if err := c.AuditExport(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		entries, head, err := audit.ReadExport(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.Verify(entries, head, pub); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		redacted := 0
		for _, en := range entries {
			if en.Redacted {
				redacted++
			}
		}
		switch {
		case name == "operator" && redacted != 0:
			t.Errorf("the operator sees %d redacted entries", redacted)
		case name != "operator" && (redacted == 0 || redacted == len(entries)):
			t.Errorf("%s: %d of %d entries redacted", name, redacted, len(entries))
		}
	}
}

func TestOpenAPIAndMetrics(t *testing.T) {
	e := newEnv(t, testRules)
	resp, err := http.Get(e.srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.OpenAPI == "" || doc.Paths["/v1/collaborations/{cid}/queries"]["post"] == nil || doc.Paths["/v1/audit/head"]["get"] == nil {
		t.Errorf("openapi paths: %v", len(doc.Paths))
	}
	// Metrics are the operator's: durations there could tell a partner
	// how much work the other's data made.
	for _, key := range []string{"", e.brand.admin.Key, e.pub.audit.Key} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: 401, false: 403}[key == ""]; resp.StatusCode != want {
			t.Errorf("/metrics with key %q...: %d, want %d", key[:min(len(key), 4)], resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.op.Key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(buf.String(), `cleanroom_http_requests_total{method="POST",route="/v1/collaborations",status="201"} 1`) {
		t.Errorf("metrics lack the proposal: %.500s", buf.String())
	}
	if strings.Contains(buf.String(), "crk_") || strings.Contains(buf.String(), e.collab) {
		t.Error("metrics carry keys or IDs")
	}
}
