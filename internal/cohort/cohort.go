// Package cohort holds the server side of matching: audiences uploaded by
// each party (blinded points and attributes), the two-party match protocol
// of DESIGN.md, and the matched cohort table analysts query.
//
// Bulk data goes straight between Arrow streams and DuckDB tables: an
// upload's IPC stream is validated record by record while DuckDB scans it,
// so no body is ever held in memory, and a table becomes part of the state
// only when a store.DB.Write transaction records it. Tables no record
// points to (a crash mid-upload) are dropped at start.
package cohort

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/marcboeker/go-duckdb"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/ledger"
	"github.com/cleanroom/cleanroom/internal/partners"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/psi"
	"github.com/cleanroom/cleanroom/wire"
)

// Errors callers map to statuses; they wrap partners' kinds.
var (
	ErrInvalid  = partners.ErrInvalid
	ErrNotFound = partners.ErrNotFound
	ErrConflict = partners.ErrConflict
)

// Service runs uploads and matches on one database.
type Service struct {
	DB *store.DB
	// TempDir holds spooled Parquet uploads; default the system's.
	TempDir string
	// Signer signs deletion receipts (the audit signing key).
	Signer ed25519.PrivateKey
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Audience is one party's current upload in a collaboration: its wire
// form and the table that holds it.
type Audience struct {
	wire.Audience
	table string
}

type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// hashingReader hashes what it reads, for the upload's content hash.
type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

// Format is an upload's encoding.
type Format int

const (
	// ArrowStream is an Arrow IPC stream, read as it arrives.
	ArrowStream Format = iota
	// Parquet needs random access: the body is spooled to a temporary file
	// in the data directory (never memory) and read from there.
	Parquet
)

// Upload stores an audience (in the audience wire format, as an Arrow IPC
// stream or a Parquet file) in a new table and makes it the party's
// audience in collab, replacing any previous one. It is all or nothing: a
// bad point, schema, truncated stream or body error leaves no trace.
//
// People the partner opted out in this collaboration are left out. With
// retention > 0 the audience is deleted (with a receipt) once it is that old.
func (s *Service) Upload(ctx context.Context, actor partners.Principal, c partners.Collaboration, body io.Reader, format Format, retention time.Duration) (Audience, error) {
	if c.State != partners.StateActive {
		return Audience{}, fmt.Errorf("%w: collaboration %s is %s; both partners must approve its rules before uploads", ErrConflict, c.ID, c.State)
	}
	hr := &hashingReader{r: body, h: sha256.New()}
	var ar *audience.Reader
	switch format {
	case Parquet:
		pr, cleanup, err := s.spoolParquet(ctx, hr)
		if err != nil {
			return Audience{}, err
		}
		defer cleanup()
		if ar, err = audience.NewReader(pr); err != nil {
			return Audience{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	default:
		// The audience stream reader checks each message before Arrow
		// allocates for it and notices a stream cut between messages.
		var err error
		if ar, err = audience.NewStreamReader(hr, audience.StreamOptions{}); err != nil {
			return Audience{}, classify(fmt.Errorf("body is not a valid audience Arrow IPC stream: %w", err))
		}
	}
	defer ar.Release()

	a := Audience{Audience: wire.Audience{ID: partners.NewID("a_"), CollabID: c.ID, PartnerID: actor.PartnerID}}
	a.table = "aud_" + a.ID
	var cols []column
	for _, f := range ar.Schema().Fields() {
		cols = append(cols, column{Name: f.Name, Type: f.Type.String()})
	}
	a.Columns, _ = json.Marshal(cols)

	view := "upload_" + a.ID
	err := s.DB.Raw(ctx, func(conn driver.Conn) error {
		ar2, err := duckdb.NewArrowFromConn(conn)
		if err != nil {
			return err
		}
		release, err := ar2.RegisterView(ar, view)
		if err != nil {
			return err
		}
		defer release()
		ex := conn.(driver.ExecerContext)
		// Opted-out people never enter the table.
		_, err = ex.ExecContext(ctx, `CREATE TABLE `+a.table+` AS SELECT * FROM `+view+
			` WHERE pid NOT IN (SELECT pid FROM optouts WHERE collab_id = ? AND partner_id = ?)`,
			[]driver.NamedValue{{Ordinal: 1, Value: c.ID}, {Ordinal: 2, Value: actor.PartnerID}})
		_, _ = ex.ExecContext(ctx, `DROP VIEW IF EXISTS `+view, nil)
		return err
	})
	fail := func(err error) (Audience, error) {
		s.dropTables(a.table)
		return Audience{}, err
	}
	// The reader's own error is the specific one; DuckDB only knows the scan stopped.
	if rerr := ar.Err(); rerr != nil {
		return fail(classify(rerr))
	}
	if err != nil {
		return fail(fmt.Errorf("cohort.Upload: storing the audience: %w", err))
	}
	// Drain what follows the stream's end marker so the content hash covers the body.
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return fail(classify(fmt.Errorf("reading the body: %w", err)))
	}
	a.ContentSHA256 = hex.EncodeToString(hr.h.Sum(nil))
	q, args := `SELECT count(*), count(DISTINCT pid), 0 FROM `+a.table, []any{}
	if a.hasColumn(audience.ConsentColumn) {
		q, args = `SELECT count(*), count(DISTINCT pid), count(DISTINCT pid) FILTER (WHERE list_contains(consent, ?)) FROM `+a.table, []any{c.Rules.Purpose}
	}
	if err := s.DB.SQL().QueryRowContext(ctx, q, args...).Scan(&a.Rows, &a.People, &a.PeopleMatchable); err != nil {
		return fail(err)
	}
	// Only people who can match count: a large upload with a handful of
	// consented rows would otherwise be a tiny audience in disguise.
	if a.PeopleMatchable < int64(c.Rules.MinUploadUsers) {
		return fail(fmt.Errorf("%w: the audience has %d people who can match (distinct, consented for purpose %q, not opted out) of %d; this collaboration accepts at least %d (rule min_upload_users), because the size of a tiny audience's match would reveal who is in it",
			ErrInvalid, a.PeopleMatchable, c.Rules.Purpose, a.People, c.Rules.MinUploadUsers))
	}

	var oldTable string
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		// The collaboration may have changed since the caller read it.
		cur, err := partners.GetCollaboration(ctx, tx, c.ID, actor)
		if err != nil {
			return err
		}
		if cur.State != partners.StateActive {
			return fmt.Errorf("%w: collaboration %s is %s", ErrConflict, c.ID, cur.State)
		}
		err = tx.QueryRowContext(ctx, `SELECT id, table_name FROM audiences WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL`,
			c.ID, actor.PartnerID).Scan(&a.Replaced, &oldTable)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		a.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
		if a.Replaced != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE audiences SET deleted_at = ? WHERE id = ?`, a.CreatedAt, a.Replaced); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audiences (id, collab_id, partner_id, table_name, rows, people, content_sha256, columns, created_at, deleted_at, people_matchable)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
			a.ID, a.CollabID, a.PartnerID, a.table, a.Rows, a.People, a.ContentSHA256, string(a.Columns), a.CreatedAt, a.PeopleMatchable); err != nil {
			return err
		}
		// The other partner reads what the API shows it of this audience
		// (that it exists, its columns); sizes and the content hash are
		// facts about this partner's people, for its own auditors only.
		details := map[string]any{"audience_id": a.ID, "columns": cols, "replaced": a.Replaced}
		private := map[string]any{"rows": a.Rows, "rows_sent": ar.Rows(), "people": a.People, "people_matchable": a.PeopleMatchable, "content_sha256": a.ContentSHA256}
		if retention > 0 {
			exp := a.CreatedAt.Add(retention)
			if _, err := tx.ExecContext(ctx, `INSERT INTO audience_retention VALUES (?, ?)`, a.ID, exp); err != nil {
				return err
			}
			details["expires_at"] = exp
		}
		_, err = audit.AppendPrivate(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, "audience.upload", details, private)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if oldTable != "" {
		s.dropTables(oldTable)
		// Audit: the replaced audience's data is gone, not just hidden.
		_ = s.DB.Write(ctx, func(tx *sql.Tx) error {
			_, err := audit.Append(ctx, tx, "system", actor.PartnerID, c.ID, "audience.delete",
				map[string]any{"audience_id": a.Replaced, "reason": "replaced by " + a.ID})
			return err
		})
	}
	return a, nil
}

// spoolParquet copies a Parquet body to a temporary file and opens it.
func (s *Service) spoolParquet(ctx context.Context, body io.Reader) (array.RecordReader, func(), error) {
	dir := s.TempDir
	f, err := os.CreateTemp(dir, "upload-*.parquet")
	if err != nil {
		return nil, nil, fmt.Errorf("cohort: spooling the upload: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, body); err != nil {
		cleanup()
		return nil, nil, classify(fmt.Errorf("reading the body: %w", err))
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%w: body is not a Parquet file: %v", ErrInvalid, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		cleanup()
		return nil, nil, fmt.Errorf("%w: Parquet schema: %v", ErrInvalid, err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		pf.Close()
		cleanup()
		return nil, nil, fmt.Errorf("%w: Parquet: %v", ErrInvalid, err)
	}
	return rr, func() { rr.Release(); pf.Close(); cleanup() }, nil
}

// ErrTooLarge is a body over the server's size limit.
var ErrTooLarge = errors.New("body exceeds the server's size limit")

// LimitReader returns a reader that fails with ErrTooLarge after n bytes.
func LimitReader(r io.Reader, n int64) io.Reader { return &limitReader{r: r, n: n} }

type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		if k, _ := l.r.Read(one[:]); k > 0 {
			return 0, ErrTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	return k, err
}

// classify turns a stream error into ErrTooLarge (the body limit, wrapped
// through the Arrow readers) or ErrInvalid.
func classify(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%w: %v", ErrTooLarge, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

func (s *Service) dropTables(names ...string) {
	for _, n := range names {
		if n != "" {
			_, _ = s.DB.SQL().Exec(`DROP TABLE IF EXISTS ` + store.QuoteIdent(n))
		}
	}
}

// CurrentAudience returns a party's live audience in a collaboration.
func (s *Service) CurrentAudience(ctx context.Context, q partners.Querier, collabID, partnerID string) (Audience, error) {
	var a Audience
	var cols string
	err := q.QueryRowContext(ctx, `SELECT id, collab_id, partner_id, table_name, rows, people, content_sha256, CAST(columns AS VARCHAR), created_at, coalesce(people_matchable, people)
		FROM audiences WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL`, collabID, partnerID).
		Scan(&a.ID, &a.CollabID, &a.PartnerID, &a.table, &a.Rows, &a.People, &a.ContentSHA256, &cols, &a.CreatedAt, &a.PeopleMatchable)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: partner %s has no audience in collaboration %s", ErrNotFound, partnerID, collabID)
	}
	a.Columns = json.RawMessage(cols)
	return a, err
}

// Match is one run of the protocol over the two current audiences: its
// wire form and what only the server knows of it.
type Match struct {
	wire.Match
	exactSize int64 // for the operator's store only
	cohortTbl string
	halfAHash string
	halfBHash string
}

// For fills in the caller's side and whether its half is in.
func (m Match) For(c partners.Collaboration, partnerID string) wire.Match {
	w := m.Match
	if !c.HasMember(partnerID) {
		return w
	}
	w.Side = side(c, partnerID)
	// Side a re-blinds b's points: that is half b, and the reverse.
	w.YourHalfReceived = (w.Side == "a" && w.HalfB) || (w.Side == "b" && w.HalfA)
	return w
}

// Match states, as the wire package names them.
const (
	MatchWaiting = wire.MatchWaiting
	MatchDone    = wire.MatchDone
	MatchStale   = wire.MatchStale
	MatchDeleted = wire.MatchDeleted
)

func pointsTable(mid, side string) string { return "mpts_" + mid + "_" + side }
func tokensTable(mid, side string) string { return "mtok_" + mid + "_" + side }
func peopleTable(mid string) string       { return "cpeople_" + mid }

// side returns "a" for the proposer and "b" for the other partner.
func side(c partners.Collaboration, partnerID string) string {
	if partnerID == c.Proposer {
		return "a"
	}
	return "b"
}

func otherSide(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

// StartMatch starts a match over both parties' current audiences. Starting
// again while the audiences are unchanged returns the same match.
func (s *Service) StartMatch(ctx context.Context, actor partners.Principal, c partners.Collaboration) (Match, error) {
	if c.State != partners.StateActive {
		return Match{}, fmt.Errorf("%w: collaboration %s is %s", ErrConflict, c.ID, c.State)
	}
	aa, err := s.CurrentAudience(ctx, s.DB.SQL(), c.ID, c.Proposer)
	if err != nil {
		return Match{}, fmt.Errorf("%w: %w; %v", ErrConflict, ErrAwaitingUpload, err)
	}
	ab, err := s.CurrentAudience(ctx, s.DB.SQL(), c.ID, c.Partner)
	if err != nil {
		return Match{}, fmt.Errorf("%w: %w; %v", ErrConflict, ErrAwaitingUpload, err)
	}
	if m, err := s.findMatch(ctx, s.DB.SQL(), c.ID, aa.ID, ab.ID); err == nil {
		return m, nil
	}
	// Deletions may have taken an audience below the minimum since its
	// upload; a new match of it would then release a tiny audience's
	// cohort size. The other party's count is not named: the protocol
	// reveals it only as its number of points.
	least := int64(c.Rules.MinUploadUsers)
	for _, a := range []Audience{aa, ab} {
		if a.PeopleMatchable >= least {
			continue
		}
		if a.PartnerID == actor.PartnerID {
			return Match{}, fmt.Errorf("%w: your audience has %d people who can match, fewer than the rule min_upload_users (%d), after deletions; upload a larger audience", ErrConflict, a.PeopleMatchable, least)
		}
		return Match{}, fmt.Errorf("%w: the other partner's audience has fewer people who can match than the rule min_upload_users (%d), after deletions; it must upload again before a new match", ErrConflict, least)
	}
	m := Match{Match: wire.Match{ID: partners.NewID("m_"), CollabID: c.ID, AudienceA: aa.ID, AudienceB: ab.ID, State: MatchWaiting,
		Epsilon: c.Rules.MatchEpsilon}}
	// Only consented rows take part, each person once, in an order (by
	// point) that says nothing about the upload's row order.
	for _, x := range []struct {
		side string
		aud  Audience
		n    *int64
	}{{"a", aa, &m.PointsA}, {"b", ab, &m.PointsB}} {
		consent := "FALSE"
		if x.aud.hasColumn(audience.ConsentColumn) {
			consent = `list_contains(consent, ?)`
		}
		q := `CREATE TABLE ` + pointsTable(m.ID, x.side) + ` AS SELECT (row_number() OVER (ORDER BY pid) - 1)::BIGINT AS pos, pid
			FROM (SELECT DISTINCT pid FROM ` + x.aud.table + ` WHERE ` + consent + `)`
		var args []any
		if consent != "FALSE" {
			args = append(args, c.Rules.Purpose)
		}
		if _, err := s.DB.SQL().ExecContext(ctx, q, args...); err != nil {
			s.dropTables(pointsTable(m.ID, "a"), pointsTable(m.ID, "b"))
			return Match{}, fmt.Errorf("cohort.StartMatch: %w", err)
		}
		if err := s.DB.SQL().QueryRowContext(ctx, `SELECT count(*) FROM `+pointsTable(m.ID, x.side)).Scan(x.n); err != nil {
			return Match{}, err
		}
	}
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		// Another start may have won the race; keep its match.
		if other, err := s.findMatch(ctx, tx, c.ID, aa.ID, ab.ID); err == nil {
			m = other
			return errRaceLost
		}
		m.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
		m.UpdatedAt = m.CreatedAt
		if _, err := tx.ExecContext(ctx, `INSERT INTO matches (id, collab_id, audience_a, audience_b, state, points_a, points_b, epsilon, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.ID, m.CollabID, m.AudienceA, m.AudienceB, m.State, m.PointsA, m.PointsB, m.Epsilon, m.CreatedAt, m.UpdatedAt); err != nil {
			return err
		}
		_, err := audit.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, "match.start",
			map[string]any{"match_id": m.ID, "audience_a": m.AudienceA, "audience_b": m.AudienceB})
		return err
	})
	if errors.Is(err, errRaceLost) {
		return m, nil
	}
	if err != nil {
		s.dropTables(pointsTable(m.ID, "a"), pointsTable(m.ID, "b"))
		return Match{}, err
	}
	return m, nil
}

var errRaceLost = errors.New("race lost")

// ErrStale is a match voided by a replaced audience or a deletion.
var ErrStale = errors.New("stale match")

func errStale(matchID string) error {
	return fmt.Errorf("%w: %w: match %s is stale: an audience was replaced, or people were deleted, since it started; run match again to start a new one", ErrConflict, ErrStale, matchID)
}

// ErrAwaitingUpload is a match started before both parties uploaded.
var ErrAwaitingUpload = errors.New("both parties must upload before matching")

// Table is the audience's table, for reports the operator's API builds.
func (a Audience) Table() string { return a.table }

// hasColumn reports whether the audience was uploaded with a column.
func (a Audience) hasColumn(name string) bool {
	var cols []column
	_ = json.Unmarshal(a.Columns, &cols)
	for _, c := range cols {
		if c.Name == name {
			return true
		}
	}
	return false
}

func (s *Service) findMatch(ctx context.Context, q partners.Querier, collabID, aa, ab string) (Match, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM matches WHERE collab_id = ? AND audience_a = ? AND audience_b = ? AND state IN (?, ?) ORDER BY created_at DESC LIMIT 1`,
		collabID, aa, ab, MatchWaiting, MatchDone).Scan(&id)
	if err != nil {
		return Match{}, fmt.Errorf("%w: match", ErrNotFound)
	}
	return s.GetMatch(ctx, q, collabID, id)
}

// GetMatch returns a match of collabID.
func (s *Service) GetMatch(ctx context.Context, q partners.Querier, collabID, id string) (Match, error) {
	var m Match
	var ha, hb, tbl sql.NullString
	var exact, noisy sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT m.id, m.collab_id, m.audience_a, m.audience_b, m.state, m.points_a, m.points_b, m.half_a_sha256, m.half_b_sha256,
			m.cohort_table, m.cohort_size, m.noisy_size, m.epsilon, m.created_at, m.updated_at
		FROM matches m WHERE m.id = ? AND m.collab_id = ?`, id, collabID).
		Scan(&m.ID, &m.CollabID, &m.AudienceA, &m.AudienceB, &m.State, &m.PointsA, &m.PointsB, &ha, &hb, &tbl, &exact, &noisy, &m.Epsilon, &m.CreatedAt, &m.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("%w: match %s", ErrNotFound, id)
	}
	if err != nil {
		return m, err
	}
	var live int
	_ = q.QueryRowContext(ctx, `SELECT count(*) FROM audiences WHERE id IN (?, ?) AND deleted_at IS NULL`, m.AudienceA, m.AudienceB).Scan(&live)
	if live < 2 {
		m.State = MatchStale
	}
	m.halfAHash, m.halfBHash, m.cohortTbl = ha.String, hb.String, tbl.String
	m.HalfA, m.HalfB = ha.Valid, hb.Valid
	if noisy.Valid {
		n := noisy.Int64
		m.NoisySize = &n
	}
	m.exactSize = exact.Int64
	return m, nil
}

// Points writes, as an Arrow IPC stream with one column pid, the points
// the caller must re-blind: the other party's consented people, once each.
func (s *Service) Points(ctx context.Context, c partners.Collaboration, m Match, partnerID string, w io.Writer) error {
	switch m.State {
	case MatchStale:
		return errStale(m.ID)
	case MatchDeleted:
		return fmt.Errorf("%w: match %s was deleted with its audience or collaboration", ErrConflict, m.ID)
	}
	tbl := pointsTable(m.ID, otherSide(side(c, partnerID)))
	return s.DB.Raw(ctx, func(conn driver.Conn) error {
		ar, err := duckdb.NewArrowFromConn(conn)
		if err != nil {
			return err
		}
		rr, err := ar.QueryContext(ctx, `SELECT pid FROM `+tbl+` ORDER BY pos`)
		if err != nil {
			return err
		}
		defer rr.Release()
		wr := ipc.NewWriter(w, ipc.WithSchema(audience.PointsSchema))
		for rr.Next() {
			out, err := toPoints(rr.Record())
			if err != nil {
				return err
			}
			err = wr.Write(out)
			out.Release()
			if err != nil {
				return err
			}
		}
		if err := rr.Err(); err != nil {
			return err
		}
		return wr.Close()
	})
}

// toPoints converts DuckDB's BLOB column (exported as Arrow binary) to the
// fixed-size column of audience.PointsSchema.
func toPoints(rec arrow.Record) (arrow.Record, error) {
	type binaryColumn interface {
		arrow.Array
		Value(i int) []byte
	}
	col, ok := rec.Column(0).(binaryColumn)
	if !ok {
		return nil, fmt.Errorf("cohort: unexpected points column type %s", rec.Column(0).DataType())
	}
	b := array.NewFixedSizeBinaryBuilder(memory.DefaultAllocator, &arrow.FixedSizeBinaryType{ByteWidth: psi.PointSize})
	defer b.Release()
	b.Reserve(col.Len())
	for i := 0; i < col.Len(); i++ {
		b.Append(col.Value(i))
	}
	arr := b.NewArray()
	defer arr.Release()
	return array.NewRecord(audience.PointsSchema, []arrow.Array{arr}, int64(arr.Len())), nil
}

// tokenReader turns a stream of re-blinded points into (pos, token)
// records, validating each point and the count as DuckDB scans it.
type tokenReader struct {
	refs   int64
	src    array.RecordReader
	want   int64
	pos    int64
	rec    arrow.Record
	err    error
	mem    memory.Allocator
	schema *arrow.Schema
}

var tokenSchema = arrow.NewSchema([]arrow.Field{
	{Name: "pos", Type: arrow.PrimitiveTypes.Int64},
	{Name: "token", Type: &arrow.FixedSizeBinaryType{ByteWidth: psi.TokenSize}},
}, nil)

func (t *tokenReader) Retain()               { t.refs++ }
func (t *tokenReader) Release()              { t.refs-- }
func (t *tokenReader) Schema() *arrow.Schema { return tokenSchema }
func (t *tokenReader) Record() arrow.Record  { return t.rec }
func (t *tokenReader) Err() error            { return t.err }

func (t *tokenReader) Next() bool {
	if t.rec != nil {
		t.rec.Release()
		t.rec = nil
	}
	if t.err != nil {
		return false
	}
	if !t.src.Next() {
		if err := t.src.Err(); err != nil {
			t.err = fmt.Errorf("reading points: %w", err)
		} else if t.pos != t.want {
			t.err = fmt.Errorf("got %d points, want %d (the same points, in the same order)", t.pos, t.want)
		}
		return false
	}
	in := t.src.Record()
	col, ok := in.Column(0).(*array.FixedSizeBinary)
	if !ok || in.NumCols() != 1 || col.DataType().(*arrow.FixedSizeBinaryType).ByteWidth != psi.PointSize {
		t.err = fmt.Errorf("want one column pid of fixed_size_binary[32], got %s", in.Schema())
		return false
	}
	n := int(in.NumRows())
	if t.pos+int64(n) > t.want {
		t.err = fmt.Errorf("got more than the %d points sent", t.want)
		return false
	}
	pb := array.NewInt64Builder(t.mem)
	tb := array.NewFixedSizeBinaryBuilder(t.mem, &arrow.FixedSizeBinaryType{ByteWidth: psi.TokenSize})
	defer pb.Release()
	defer tb.Release()
	pb.Reserve(n)
	tb.Reserve(n)
	for i := 0; i < n; i++ {
		if col.IsNull(i) {
			t.err = fmt.Errorf("point %d is null", t.pos+int64(i)+1)
			return false
		}
		p, err := psi.DecodePoint(col.Value(i))
		if err != nil {
			t.err = fmt.Errorf("point %d: %w", t.pos+int64(i)+1, err)
			return false
		}
		tok := psi.TokenOf(&p)
		pb.UnsafeAppend(t.pos + int64(i))
		tb.Append(tok[:])
	}
	t.pos += int64(n)
	cols := []arrow.Array{pb.NewArray(), tb.NewArray()}
	t.rec = array.NewRecord(tokenSchema, cols, int64(n))
	cols[0].Release()
	cols[1].Release()
	return true
}

// PutPoints takes the caller's re-blinding of the other party's points, in
// the order Points sent them, and stores their tokens. Sending the same
// points again is a no-op; different ones are a conflict. When both halves
// are in, the cohort is built in the same transaction.
func (s *Service) PutPoints(ctx context.Context, actor partners.Principal, c partners.Collaboration, m Match, body io.Reader) (Match, error) {
	if m.State == MatchStale {
		return m, errStale(m.ID)
	}
	target := otherSide(side(c, actor.PartnerID)) // whose points these are
	want, have := m.PointsB, m.halfBHash
	if target == "a" {
		want, have = m.PointsA, m.halfAHash
	}
	hr := &hashingReader{r: body, h: sha256.New()}
	if have != "" {
		// A retry of a half already received: the same bytes are a no-op,
		// others a conflict. Deletions since may have shortened the points
		// served, so the body is compared, not re-counted.
		if _, err := io.Copy(io.Discard, hr); err != nil {
			return m, classify(fmt.Errorf("reading the body: %w", err))
		}
		if hex.EncodeToString(hr.h.Sum(nil)) == have {
			return m, nil
		}
		return m, fmt.Errorf("%w: this half of match %s was already received with different points", ErrConflict, m.ID)
	}
	ir, err := ipc.NewReader(hr)
	if err != nil {
		return m, fmt.Errorf("%w: body is not an Arrow IPC stream: %v", ErrInvalid, err)
	}
	defer ir.Release()
	tr := &tokenReader{src: ir, want: want, mem: memory.DefaultAllocator}
	tbl := tokensTable(m.ID, target)
	staging := tbl + "_" + strings.ToLower(partners.NewID(""))
	err = s.DB.Raw(ctx, func(conn driver.Conn) error {
		ar, err := duckdb.NewArrowFromConn(conn)
		if err != nil {
			return err
		}
		view := "v_" + staging
		release, err := ar.RegisterView(tr, view)
		if err != nil {
			return err
		}
		defer release()
		ex := conn.(driver.ExecerContext)
		_, err = ex.ExecContext(ctx, `CREATE TABLE `+staging+` AS SELECT * FROM `+view, nil)
		_, _ = ex.ExecContext(ctx, `DROP VIEW IF EXISTS `+view, nil)
		return err
	})
	if tr.err != nil {
		s.dropTables(staging)
		return m, classify(tr.err)
	}
	if err != nil {
		s.dropTables(staging)
		return m, fmt.Errorf("cohort.PutPoints: %w", err)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		s.dropTables(staging)
		return m, classify(fmt.Errorf("reading the body: %w", err))
	}
	sum := hex.EncodeToString(hr.h.Sum(nil))

	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		cur, err := s.GetMatch(ctx, tx, c.ID, m.ID)
		if err != nil {
			return err
		}
		if cur.State != MatchWaiting {
			return errStale(m.ID) // a deletion voided it while the points arrived
		}
		if (target == "a" && cur.HalfA) || (target == "b" && cur.HalfB) {
			m = cur
			return errRaceLost
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+tbl); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+staging+` RENAME TO `+tbl); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE matches SET half_`+target+`_sha256 = ?, updated_at = ? WHERE id = ?`, sum, time.Now().UTC(), m.ID); err != nil {
			return err
		}
		if _, err := audit.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, "match.points",
			map[string]any{"match_id": m.ID, "side": target, "points": want, "content_sha256": sum}); err != nil {
			return err
		}
		if (target == "a" && cur.HalfB) || (target == "b" && cur.HalfA) {
			return s.buildCohort(ctx, tx, actor, c, cur)
		}
		return nil
	})
	if errors.Is(err, errRaceLost) {
		s.dropTables(staging)
		return m, nil
	}
	if err != nil {
		s.dropTables(staging)
		return m, err
	}
	return s.GetMatch(ctx, s.DB.SQL(), c.ID, m.ID)
}

var slugRe = regexp.MustCompile(`[^a-z0-9]+`)

// Prefixes returns the column prefixes of the two parties' attributes in
// the cohort, from their names so an analyst can tell whose a column is.
func Prefixes(ctx context.Context, q partners.Querier, c partners.Collaboration) (string, string) {
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

// buildCohort joins the two token tables and writes the cohort: one uid per
// matched person (random, never the token), with both parties' consented
// rows. Rows of one person on both sides join as their product, with
// _a_row and _b_row naming the source rows so aggregates can count each
// side's rows once.
func (s *Service) buildCohort(ctx context.Context, tx *sql.Tx, actor partners.Principal, c partners.Collaboration, m Match) error {
	aa, err := s.audienceByID(ctx, tx, m.AudienceA)
	if err != nil {
		return err
	}
	ab, err := s.audienceByID(ctx, tx, m.AudienceB)
	if err != nil {
		return err
	}
	pa, pb := Prefixes(ctx, tx, c)
	sel := []string{"p.uid", "ra.rowid AS _a_row", "rb.rowid AS _b_row"}
	// Each attribute column's side is recorded here, where it is known,
	// rather than guessed later from the prefixes (one may prefix the other).
	sides := map[string]string{}
	for _, x := range []struct {
		a      Audience
		alias  string
		prefix string
		side   string
	}{{aa, "ra", pa, "a"}, {ab, "rb", pb, "b"}} {
		var cols []column
		_ = json.Unmarshal(x.a.Columns, &cols)
		for _, col := range cols {
			if col.Name == audience.PIDColumn || col.Name == audience.ConsentColumn {
				continue
			}
			sel = append(sel, x.alias+"."+store.QuoteIdent(col.Name)+" AS "+store.QuoteIdent(x.prefix+col.Name))
			sides[x.prefix+col.Name] = x.side
		}
	}
	consent := func(a Audience, alias string) string {
		if a.hasColumn(audience.ConsentColumn) {
			return "list_contains(" + alias + ".consent, $purpose)"
		}
		return "FALSE"
	}
	table := "cohort_" + m.ID
	// The people table maps each uid to both parties' points, so that a
	// deletion or opt-out can find a person's cohort rows. Analysts never
	// reach it: queries read only the cohort table, and never uid itself.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE `+peopleTable(m.ID)+` AS
			SELECT (row_number() OVER (ORDER BY random()))::BIGINT AS uid, xa.pid AS pid_a, xb.pid AS pid_b
			FROM `+tokensTable(m.ID, "a")+` ta
			JOIN `+tokensTable(m.ID, "b")+` tb ON ta.token = tb.token
			JOIN `+pointsTable(m.ID, "a")+` xa ON xa.pos = ta.pos
			JOIN `+pointsTable(m.ID, "b")+` xb ON xb.pos = tb.pos`); err != nil {
		return fmt.Errorf("cohort: matching people: %w", err)
	}
	q := `CREATE TABLE ` + table + ` AS
		SELECT ` + strings.Join(sel, ", ") + `
		FROM ` + peopleTable(m.ID) + ` p
		JOIN ` + aa.table + ` ra ON ra.pid = p.pid_a AND ` + consent(aa, "ra") + `
		JOIN ` + ab.table + ` rb ON rb.pid = p.pid_b AND ` + consent(ab, "rb")
	q = strings.ReplaceAll(q, "$purpose", "?")
	args := []any{}
	for i := 0; i < strings.Count(q, "?"); i++ {
		args = append(args, c.Rules.Purpose)
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("cohort: building the cohort: %w", err)
	}
	var exact int64
	if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT uid) FROM `+table).Scan(&exact); err != nil {
		return err
	}
	// One person changes the count of distinct people by at most one.
	noisy, err := noise.Laplace().AddNoiseInt64(exact, 1, 1, c.Rules.MatchEpsilon, 0)
	if err != nil {
		return fmt.Errorf("cohort: noise: %w", err)
	}
	if noisy < 0 {
		noisy = 0 // post-processing: a count is never negative
	}
	// Both parties see the noisy size: each pays for it from its budget.
	for _, p := range c.Members() {
		if _, err := ledger.Debit(ctx, tx, ledger.Charge{CollabID: c.ID, PartnerID: p, Kind: "match", Ref: m.ID,
			Epsilon: c.Rules.MatchEpsilon, Budget: ledger.Of(c.Rules)}); err != nil {
			return fmt.Errorf("%w: partner %s cannot pay for the match's noisy size: %v", ErrConflict, p, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE matches SET state = ?, cohort_table = ?, cohort_size = ?, noisy_size = ?, cohort_columns = ?, updated_at = ? WHERE id = ?`,
		MatchDone, table, exact, noisy, mustJSON(sides), time.Now().UTC(), m.ID); err != nil {
		return err
	}
	// The log is read by both parties' auditors: it holds the noisy size only.
	_, err = audit.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, "match.complete",
		map[string]any{"match_id": m.ID, "cohort_size_noisy": noisy, "epsilon": c.Rules.MatchEpsilon, "cohort_table": table})
	return err
}

func (s *Service) audienceByID(ctx context.Context, q partners.Querier, id string) (Audience, error) {
	var a Audience
	var cols string
	err := q.QueryRowContext(ctx, `SELECT id, collab_id, partner_id, table_name, rows, people, content_sha256, CAST(columns AS VARCHAR), created_at, coalesce(people_matchable, people)
		FROM audiences WHERE id = ? AND deleted_at IS NULL`, id).
		Scan(&a.ID, &a.CollabID, &a.PartnerID, &a.table, &a.Rows, &a.People, &a.ContentSHA256, &cols, &a.CreatedAt, &a.PeopleMatchable)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: audience %s was replaced or deleted; start a new match", ErrConflict, id)
	}
	a.Columns = json.RawMessage(cols)
	return a, err
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
func (s *Service) Current(ctx context.Context, q partners.Querier, collabID string) (Cohort, error) {
	var co Cohort
	var cols sql.NullString
	err := q.QueryRowContext(ctx, `SELECT m.cohort_table, m.noisy_size, CAST(m.cohort_columns AS VARCHAR),
			m.id || '.' || coalesce((SELECT max(rev) FROM cohort_revisions r WHERE r.match_id = m.id), 0) FROM matches m
		WHERE m.collab_id = ? AND m.state = ? AND
			(SELECT count(*) FROM audiences x WHERE x.id IN (m.audience_a, m.audience_b) AND x.deleted_at IS NULL) = 2
		ORDER BY m.updated_at DESC LIMIT 1`, collabID, MatchDone).Scan(&co.Table, &co.NoisySize, &cols, &co.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return co, fmt.Errorf("%w: collaboration %s has no current cohort; both parties upload, then match", ErrNotFound, collabID)
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
	return co, nil
}

// Cleanup drops tables that no committed record refers to: the remains of
// an upload or a match half that was interrupted (a crash, a restart).
func (s *Service) Cleanup(ctx context.Context) error {
	rows, err := s.DB.SQL().QueryContext(ctx, `SELECT table_name FROM duckdb_tables() WHERE
		(table_name LIKE 'aud\_%' ESCAPE '\' AND table_name NOT IN (SELECT table_name FROM audiences WHERE deleted_at IS NULL))
		OR (table_name LIKE 'mtok\_%' ESCAPE '\' AND regexp_matches(table_name, '^mtok_.*_[ab]_'))
		OR (table_name LIKE 'upload\_%' ESCAPE '\')`)
	if err != nil {
		return err
	}
	var drop []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		drop = append(drop, n)
	}
	rows.Close()
	s.dropTables(drop...)
	return nil
}

// ExactCohortSize is for tests and benchmarks run by the operator: the
// store's exact size, which the API never returns.
func (s *Service) ExactCohortSize(ctx context.Context, collabID, matchID string) (int64, error) {
	m, err := s.GetMatch(ctx, s.DB.SQL(), collabID, matchID)
	if err != nil {
		return 0, err
	}
	if m.State != MatchDone {
		return 0, fmt.Errorf("match %s is %s", matchID, m.State)
	}
	return m.exactSize, nil
}
