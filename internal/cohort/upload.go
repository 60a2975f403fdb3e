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
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
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
	"github.com/cleanroom/cleanroom/psi"
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

// UploadOptions are an upload's choices besides its body.
type UploadOptions struct {
	// Table is the table's name; "" is wire.DefaultTable.
	Table  string
	Format Format
	// Retention > 0 deletes the table (with a receipt) once it is that old.
	Retention time.Duration
	// KeyFingerprint is the fingerprint of the key that blinded the
	// points (psi.Key.Fingerprint); "" when the client states none (an
	// older one), and then the party's first match half records it.
	KeyFingerprint string
	// Replace must be set to replace a table the party already has.
	Replace bool
	// DryRun runs every check of an upload, and answers what would be
	// stored, without storing or logging anything.
	DryRun bool
}

// Upload stores one of a party's tables in a collaboration (in the
// audience wire format, as an Arrow IPC stream or a Parquet file) in a new
// DuckDB table and makes it the party's current table of that name. It is
// all or nothing: a bad point, schema, truncated stream or body error
// leaves no trace. When the rules declare tables, the upload must be one
// of the party's, with exactly its declared columns.
//
// A previous table of the party by the same name is replaced only with
// o.Replace (else errs.ReplaceRequired, before the body is read), which
// deletes it: its DuckDB table and every table of the matches built from
// it (whose cohorts hold the other party's attributes too) are dropped,
// and the matches left stale, in the transaction that records the new
// table and logs both (audience.upload, then audience.delete). The
// party's other tables stay; an upload blinded with another key than
// they were is refused (errs.KeyMismatch), since its people would never
// join theirs.
//
// People the partner opted out in this collaboration are left out.
func (s *Service) Upload(ctx context.Context, actor partners.Principal, c wire.Collaboration, body io.Reader, o UploadOptions) (Audience, error) {
	if c.State != wire.StateActive {
		return Audience{}, errs.New(errs.Conflict, "collaboration %s is %s; both partners must approve its rules before uploads", c.ID, c.State)
	}
	name := o.Table
	if name == "" {
		name = wire.DefaultTable
	}
	party := wire.PartyPartner
	if side(c, actor.PartnerID) == "a" {
		party = wire.PartyProposer
	}
	declared, err := checkTableName(c, party, name)
	if err != nil {
		return Audience{}, err
	}
	if o.KeyFingerprint != "" {
		if err := psi.CheckFingerprint(o.KeyFingerprint); err != nil {
			return Audience{}, errs.New(errs.Invalid, "key_fingerprint: %v; send psi.Key.Fingerprint of the key that blinded the points", err)
		}
	}
	// Refusals that need no body come before it is read.
	current, err := s.CurrentTables(ctx, s.DB.SQL(), c.ID, actor.PartnerID)
	if err != nil {
		return Audience{}, err
	}
	if err := checkUploadTables(current, name, o); err != nil {
		return Audience{}, err
	}
	release, err := s.slots.start(actor.PartnerID, s.uploadsPerPartner())
	if err != nil {
		return Audience{}, err
	}
	defer release()
	hr := &hashingReader{r: body, h: sha256.New()}
	var ar *audience.Reader
	switch o.Format {
	case Parquet:
		pr, cleanup, err := s.spoolParquet(ctx, actor.PartnerID, hr)
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
	if declared != nil {
		if err := checkColumns(*declared, ar.Schema()); err != nil {
			return Audience{}, err
		}
	}

	a := Audience{Audience: wire.Audience{ID: partners.NewID("a_"), CollabID: c.ID, PartnerID: actor.PartnerID, Table: name, KeyFingerprint: o.KeyFingerprint}}
	a.table = audienceTable(a.ID)
	var cols []column
	for _, f := range ar.Schema().Fields() {
		cols = append(cols, column{Name: f.Name, Type: f.Type.String()})
	}
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
	hasConsent, err := a.hasColumn(audience.ConsentColumn)
	if err != nil {
		return fail(err)
	}
	if hasConsent {
		// A scalar subquery: DuckDB runs a DISTINCT with a FILTER several
		// times slower than a filtered DISTINCT of its own.
		q, args = `SELECT count(*), count(DISTINCT pid), (SELECT count(DISTINCT pid) FROM `+a.table+` WHERE list_contains(consent, ?)) FROM `+a.table, []any{c.Rules.Purpose}
	}
	if err := s.DB.SQL().QueryRowContext(ctx, q, args...).Scan(&a.Rows, &a.People, &a.PeopleMatchable); err != nil {
		return fail(err)
	}
	// Only people who can match count: a large upload with a handful of
	// consented rows would otherwise be a tiny audience in disguise. A
	// declared table without a consent column takes its people's consent
	// from the party's other tables: its people count here, and the
	// match checks the party's consented people across its tables.
	least := int64(c.Rules.MinUploadUsers)
	if !hasConsent && len(c.Rules.Tables) > 0 {
		if a.People < least {
			return fail(errs.New(errs.Invalid, "table %s has %d people; this collaboration accepts at least %d (rule min_upload_users), because the size of a tiny audience's match would reveal who is in it", name, a.People, least))
		}
	} else if a.PeopleMatchable < least {
		return fail(errs.New(errs.Invalid, "the audience has %d people who can match (distinct, consented for purpose %q, not opted out) of %d; this collaboration accepts at least %d (rule min_upload_users), because the size of a tiny audience's match would reveal who is in it", a.PeopleMatchable, c.Rules.Purpose, a.People, least))
	}
	if o.DryRun {
		// Every check ran; nothing is kept, and nothing logged.
		s.dropTables(a.table)
		a.ID, a.DryRun = "", true
		for _, t := range current {
			if t.Table == name {
				a.Replaced = t.ID
			}
		}
		return a, nil
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
		err = tx.QueryRowContext(ctx, `SELECT id, table_name FROM audiences WHERE collab_id = ? AND partner_id = ? AND name = ? AND deleted_at IS NULL`,
			c.ID, actor.PartnerID, name).Scan(&a.Replaced, &oldTable)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Another upload may have landed since the checks before the body.
		now, err := s.CurrentTables(ctx, tx, c.ID, actor.PartnerID)
		if err != nil {
			return err
		}
		if err := checkUploadTables(now, name, o); err != nil {
			return err
		}
		a.CreatedAt = s.now().UTC().Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audiences (id, collab_id, partner_id, table_name, rows, people, content_sha256, columns, created_at, deleted_at, people_matchable, name, key_fingerprint)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
			a.ID, a.CollabID, a.PartnerID, a.table, a.Rows, a.People, a.ContentSHA256, string(a.Columns), a.CreatedAt, a.PeopleMatchable, name, nullable(a.KeyFingerprint)); err != nil {
			return err
		}
		// The other partner reads what the API shows it of this audience
		// (that it exists, its columns); sizes and the content hash are
		// facts about this partner's people, for its own auditors only.
		details := map[string]any{"audience_id": a.ID, "table": name, "columns": cols, "replaced": a.Replaced}
		// The key's fingerprint is the party's own: the other never reads it.
		private := map[string]any{"rows": a.Rows, "rows_sent": ar.Rows(), "people": a.People, "people_matchable": a.PeopleMatchable, "content_sha256": a.ContentSHA256}
		if a.KeyFingerprint != "" {
			private["key_fingerprint"] = a.KeyFingerprint
		}
		if o.Retention > 0 {
			exp := a.CreatedAt.Add(o.Retention)
			if _, err := tx.ExecContext(ctx, `INSERT INTO audience_retention VALUES (?, ?)`, a.ID, exp); err != nil {
				return err
			}
			details["expires_at"] = exp
		}
		if _, err := auditlog.AppendPrivate(ctx, tx, actor.KeyID, actor.PartnerID, c.ID, audit.AudienceUpload, details, private); err != nil {
			return err
		}
		if a.Replaced == "" {
			// A new table: a match still waiting for points runs over the
			// party's tables without it, and the party's next start would
			// begin another, leaving the other party waiting on this one.
			// Void it; the cohort of a completed match stays current
			// until a new match completes.
			mids, err := store.QueryStrings(ctx, tx, `SELECT id FROM matches WHERE collab_id = ? AND state = ?`, c.ID, wire.MatchWaiting)
			if err != nil {
				return err
			}
			for _, mid := range mids {
				if _, err := s.dropMatchData(ctx, tx, mid, "", wire.MatchStale); err != nil {
					return err
				}
			}
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

// parquetMagic opens (and ends) every Parquet file.
const parquetMagic = "PAR1"

// spoolParquet copies a Parquet body to a temporary file and opens it.
// A body that does not start as Parquet does is refused before anything
// is written, and what is written counts against the partner's spool
// limit while the upload runs.
func (s *Service) spoolParquet(ctx context.Context, partnerID string, body io.Reader) (array.RecordReader, func(), error) {
	magic := make([]byte, len(parquetMagic))
	if n, err := io.ReadFull(body, magic); err != nil || string(magic) != parquetMagic {
		if errors.Is(err, ErrTooLarge) {
			return nil, nil, classify(err)
		}
		return nil, nil, errs.New(errs.Invalid, "body is not a Parquet file: it does not start with %s (its first %d bytes do not); send Parquet, or an Arrow IPC stream with Content-Type %s", parquetMagic, n, "application/vnd.apache.arrow.stream")
	}
	f, err := os.CreateTemp(s.TempDir, "upload-*.parquet")
	if err != nil {
		return nil, nil, fmt.Errorf("cohort: spooling the upload: %w", err)
	}
	sw := &spoolWriter{w: f, s: s, partner: partnerID}
	cleanup := func() { f.Close(); os.Remove(f.Name()); sw.release() }
	if _, err := io.Copy(sw, io.MultiReader(strings.NewReader(parquetMagic), body)); err != nil {
		cleanup()
		if k := errs.KindOf(err); k == errs.TooLarge || k == errs.TooManyUploads {
			return nil, nil, err
		}
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
	if errs.DiskFull(err) {
		// Not the body's fault, and the cause names the server's files.
		return errs.New(errs.InsufficientStorage, "%s", errs.DiskFullMessage)
	}
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%w: %v", ErrTooLarge, err)
	}
	return errs.New(errs.Invalid, "%v", err)
}

const audienceColumns = `id, collab_id, partner_id, name, table_name, rows, people, content_sha256, CAST(columns AS VARCHAR), created_at, coalesce(people_matchable, people), coalesce(key_fingerprint, '')`

func scanAudience(sc interface{ Scan(...any) error }) (Audience, error) {
	var a Audience
	var cols string
	err := sc.Scan(&a.ID, &a.CollabID, &a.PartnerID, &a.Table, &a.table, &a.Rows, &a.People, &a.ContentSHA256, &cols, &a.CreatedAt, &a.PeopleMatchable, &a.KeyFingerprint)
	a.Columns = json.RawMessage(cols)
	return a, err
}

// CurrentTable returns a party's live table of a name in a collaboration.
func (s *Service) CurrentTable(ctx context.Context, q store.Querier, collabID, partnerID, name string) (Audience, error) {
	a, err := scanAudience(q.QueryRowContext(ctx, `SELECT `+audienceColumns+`
		FROM audiences WHERE collab_id = ? AND partner_id = ? AND name = ? AND deleted_at IS NULL`, collabID, partnerID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, errs.New(errs.NotFound, "partner %s has no table %s in collaboration %s", partnerID, name, collabID)
	}
	return a, err
}

// CurrentTables returns a party's live tables in a collaboration, in name
// order; none is an empty list, not an error.
func (s *Service) CurrentTables(ctx context.Context, q store.Querier, collabID, partnerID string) ([]Audience, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+audienceColumns+`
		FROM audiences WHERE collab_id = ? AND partner_id = ? AND deleted_at IS NULL ORDER BY name`, collabID, partnerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Audience
	for rows.Next() {
		a, err := scanAudience(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// checkTableName checks that a party may upload a table of this name, and
// returns its declaration when the rules declare tables.
func checkTableName(c wire.Collaboration, party, name string) (*wire.TableRule, error) {
	if !wire.IsColumnName(name) {
		return nil, errs.New(errs.Invalid, "table name %q must be lower case letters, digits and _, starting with a letter", name)
	}
	if len(c.Rules.Tables) == 0 {
		if name != wire.DefaultTable {
			return nil, errs.New(errs.Invalid, "the rules of collaboration %s declare no tables, so each party brings one, named %s; to bring table %s, propose rules that declare it (rules field tables)", c.ID, wire.DefaultTable, name)
		}
		return nil, nil
	}
	t, ok := c.Rules.Table(party, name)
	if !ok {
		var names []string
		for _, t := range c.Rules.TablesOf(party) {
			names = append(names, t.Name)
		}
		list := "none"
		if len(names) > 0 {
			list = strings.Join(names, ", ")
		}
		return nil, errs.New(errs.Invalid, "the rules of collaboration %s declare no table %s for the %s; its tables: %s", c.ID, name, party, list)
	}
	return &t, nil
}

// checkColumns checks an upload's schema against its table's declaration:
// every declared column present, with a type its role can use, and
// nothing undeclared but pid and consent.
func checkColumns(t wire.TableRule, sc *arrow.Schema) error {
	got := map[string]arrow.DataType{}
	for _, f := range sc.Fields() {
		got[f.Name] = f.Type
	}
	declared := map[string]bool{audience.PIDColumn: true, audience.ConsentColumn: true}
	var names []string
	for _, c := range t.Columns {
		declared[c.Name] = true
		names = append(names, c.Name)
		typ, ok := got[c.Name]
		if !ok {
			return errs.New(errs.Invalid, "table %s: the rules declare column %s (%s), which the upload lacks; its columns are %s", t.Name, c.Name, c.Role, strings.Join(names, ", "))
		}
		switch c.Role {
		case wire.RoleMetric:
			if !arrow.IsInteger(typ.ID()) && !arrow.IsFloating(typ.ID()) && !arrow.IsDecimal(typ.ID()) {
				return errs.New(errs.Invalid, "table %s: column %s is a metric, so it must be a number; the upload has %s", t.Name, c.Name, typ)
			}
		case wire.RoleTime:
			switch typ.ID() {
			case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
			default:
				return errs.New(errs.Invalid, "table %s: column %s is a time, so it must be a date or a timestamp; the upload has %s", t.Name, c.Name, typ)
			}
		}
	}
	for _, f := range sc.Fields() {
		if !declared[f.Name] {
			all := make([]string, 0, len(t.Columns))
			for _, c := range t.Columns {
				all = append(all, c.Name)
			}
			return errs.New(errs.Invalid, "table %s: column %s is not declared in the rules, and only declared columns are joined; drop it from the upload, or propose rules that declare it (declared: %s)", t.Name, f.Name, strings.Join(all, ", "))
		}
	}
	return nil
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
	a, err := scanAudience(q.QueryRowContext(ctx, `SELECT `+audienceColumns+` FROM audiences WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, errs.New(errs.Conflict, "audience %s was replaced or deleted; start a new match", id)
	}
	return a, err
}

// ViewFor is a as viewer may see it: the other partner's only as far as
// that it exists, when, and its columns (which its analysts need); sizes
// and the content hash only to its own partner and the operator. The
// audience list, the report and the audit log agree on this.
func (a Audience) ViewFor(viewer partners.Principal) wire.Audience {
	w := a.Audience
	if a.PartnerID != viewer.PartnerID && !viewer.IsOperator() {
		w = wire.Audience{ID: a.ID, CollabID: a.CollabID, PartnerID: a.PartnerID, Table: a.Table, Columns: a.Columns, CreatedAt: a.CreatedAt}
	}
	return w
}
