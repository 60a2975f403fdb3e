package cohort

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/cleanroom/cleanroom/audience"
	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/internal/auditlog"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/partners"
	"github.com/cleanroom/cleanroom/wire"
)

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
// audience in collab. It is all or nothing: a bad point, schema, truncated
// stream or body error leaves no trace.
//
// A previous audience of the party is replaced, which deletes it: its
// table and every table of the matches built from it (whose cohorts hold
// the other party's attributes too) are dropped, and the matches left
// stale, in the transaction that records the new audience and logs both
// (audience.upload, then audience.delete).
//
// People the partner opted out in this collaboration are left out. With
// retention > 0 the audience is deleted (with a receipt) once it is that old.
func (s *Service) Upload(ctx context.Context, actor partners.Principal, c wire.Collaboration, body io.Reader, format Format, retention time.Duration) (Audience, error) {
	if c.State != wire.StateActive {
		return Audience{}, errs.New(errs.Conflict, "collaboration %s is %s; both partners must approve its rules before uploads", c.ID, c.State)
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
			return Audience{}, errs.New(errs.Invalid, "%v", err)
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
	a.table = audienceTable(a.ID)
	var cols []column
	for _, f := range ar.Schema().Fields() {
		cols = append(cols, column{Name: f.Name, Type: f.Type.String()})
	}
	var err error
	if a.Columns, err = json.Marshal(cols); err != nil {
		return Audience{}, fmt.Errorf("cohort.Upload: columns: %w", err)
	}

	// Opted-out people never enter the table.
	view := "upload_" + a.ID
	err = s.scan(ctx, ar, view, `CREATE TABLE `+a.table+` AS SELECT * FROM `+view+
		` WHERE pid NOT IN (SELECT pid FROM optouts WHERE collab_id = ? AND partner_id = ?)`, c.ID, actor.PartnerID)
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
	if has, err := a.hasColumn(audience.ConsentColumn); err != nil {
		return fail(err)
	} else if has {
		// A scalar subquery: DuckDB runs a DISTINCT with a FILTER several
		// times slower than a filtered DISTINCT of its own.
		q, args = `SELECT count(*), count(DISTINCT pid), (SELECT count(DISTINCT pid) FROM `+a.table+` WHERE list_contains(consent, ?)) FROM `+a.table, []any{c.Rules.Purpose}
	}
	if err := s.DB.SQL().QueryRowContext(ctx, q, args...).Scan(&a.Rows, &a.People, &a.PeopleMatchable); err != nil {
		return fail(err)
	}
	// Only people who can match count: a large upload with a handful of
	// consented rows would otherwise be a tiny audience in disguise.
	if a.PeopleMatchable < int64(c.Rules.MinUploadUsers) {
		return fail(errs.New(errs.Invalid, "the audience has %d people who can match (distinct, consented for purpose %q, not opted out) of %d; this collaboration accepts at least %d (rule min_upload_users), because the size of a tiny audience's match would reveal who is in it", a.PeopleMatchable, c.Rules.Purpose, a.People, c.Rules.MinUploadUsers))
	}

	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		// The collaboration may have changed since the caller read it.
		cur, err := partners.GetCollaboration(ctx, tx, c.ID, actor)
		if err != nil {
			return err
		}
		if cur.State != wire.StateActive {
			return errs.New(errs.Conflict, "collaboration %s is %s", c.ID, cur.State)
		}
		var oldTable string
		err = tx.QueryRowContext(ctx, `SELECT id, table_name FROM audiences WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL`,
			c.ID, actor.PartnerID).Scan(&a.Replaced, &oldTable)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		a.CreatedAt = s.now().UTC().Truncate(time.Microsecond)
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
		if _, err := auditlog.AppendPrivate(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.AudienceUpload, details, private); err != nil {
			return err
		}
		if a.Replaced == "" {
			return nil
		}
		// The replaced audience is deleted, not hidden: its table, and
		// every table of every match built from it (their cohorts and
		// people tables hold the other party's attributes too), go in
		// this transaction, which logs it.
		if _, err := s.dropAudienceTable(ctx, tx, a.Replaced, oldTable); err != nil {
			return err
		}
		if _, _, err := s.DropMatches(ctx, tx, c, a.Replaced, wire.MatchStale); err != nil {
			return err
		}
		_, err = auditlog.Append(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.AudienceDelete,
			map[string]any{"audience_id": a.Replaced, "reason": "replaced by " + a.ID})
		return err
	})
	if err != nil {
		return fail(err)
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
		return nil, nil, errs.New(errs.Invalid, "body is not a Parquet file: %v", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		cleanup()
		return nil, nil, errs.New(errs.Invalid, "Parquet schema: %v", err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		pf.Close()
		cleanup()
		return nil, nil, errs.New(errs.Invalid, "Parquet: %v", err)
	}
	return rr, func() { rr.Release(); pf.Close(); cleanup() }, nil
}

// ErrTooLarge is a body over the server's size limit: an errs.TooLarge.
var ErrTooLarge = errs.New(errs.TooLarge, "body exceeds the server's size limit")

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
// through the Arrow readers) or errs.Invalid.
func classify(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%w: %v", ErrTooLarge, err)
	}
	return errs.New(errs.Invalid, "%v", err)
}

// CurrentAudience returns a party's live audience in a collaboration.
func (s *Service) CurrentAudience(ctx context.Context, q store.Querier, collabID, partnerID string) (Audience, error) {
	var a Audience
	var cols string
	err := q.QueryRowContext(ctx, `SELECT id, collab_id, partner_id, table_name, rows, people, content_sha256, CAST(columns AS VARCHAR), created_at, coalesce(people_matchable, people)
		FROM audiences WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL`, collabID, partnerID).
		Scan(&a.ID, &a.CollabID, &a.PartnerID, &a.table, &a.Rows, &a.People, &a.ContentSHA256, &cols, &a.CreatedAt, &a.PeopleMatchable)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errs.New(errs.NotFound, "partner %s has no audience in collaboration %s", partnerID, collabID)
	}
	a.Columns = json.RawMessage(cols)
	return a, err
}

// columns returns the columns the audience was uploaded with. A list that
// does not decode is an error, never an audience without columns: a lost
// consent column would match nobody, a lost attribute would vanish from
// the cohort.
func (a Audience) columns() ([]column, error) {
	var cols []column
	if err := json.Unmarshal(a.Columns, &cols); err != nil {
		return nil, fmt.Errorf("cohort: columns of audience %s: %w", a.ID, err)
	}
	return cols, nil
}

// hasColumn reports whether the audience was uploaded with a column.
func (a Audience) hasColumn(name string) (bool, error) {
	cols, err := a.columns()
	if err != nil {
		return false, err
	}
	for _, c := range cols {
		if c.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// AudienceByID returns a live audience by its ID; a replaced or deleted
// one is a Conflict.
func (s *Service) AudienceByID(ctx context.Context, q store.Querier, id string) (Audience, error) {
	var a Audience
	var cols string
	err := q.QueryRowContext(ctx, `SELECT id, collab_id, partner_id, table_name, rows, people, content_sha256, CAST(columns AS VARCHAR), created_at, coalesce(people_matchable, people)
		FROM audiences WHERE id = ? AND deleted_at IS NULL`, id).
		Scan(&a.ID, &a.CollabID, &a.PartnerID, &a.table, &a.Rows, &a.People, &a.ContentSHA256, &cols, &a.CreatedAt, &a.PeopleMatchable)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errs.New(errs.Conflict, "audience %s was replaced or deleted; start a new match", id)
	}
	a.Columns = json.RawMessage(cols)
	return a, err
}

// ViewFor is a as viewer may see it: the other partner's only as far as
// that it exists, when, and its columns (which its analysts need); sizes
// and the content hash only to its own partner and the operator. The
// audience list, the report and the audit log agree on this.
func (a Audience) ViewFor(viewer partners.Principal) wire.Audience {
	w := a.Audience
	if a.PartnerID != viewer.PartnerID && !viewer.IsOperator() {
		w = wire.Audience{ID: a.ID, CollabID: a.CollabID, PartnerID: a.PartnerID, Columns: a.Columns, CreatedAt: a.CreatedAt}
	}
	return w
}
