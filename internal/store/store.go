package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/marcboeker/go-duckdb"
)

// FileName is the database file inside the data directory.
const FileName = "cleanroom.duckdb"

// DB is the open database.
type DB struct {
	// eng is the DuckDB instance in use; a new one replaces it when a
	// fatal error invalidates it (reopen).
	eng  atomic.Pointer[engine]
	path string
	opts Options
	// writeLock serialises Write transactions: a token in a channel, so a
	// caller waiting for it can give up when its context ends.
	writeLock chan struct{}
	// reopenMu serialises reopening; checkpointing is one at a time.
	reopenMu      sync.Mutex
	checkpointing atomic.Bool
}

// engine is one DuckDB instance and its pool.
type engine struct {
	sql       *sql.DB
	connector *duckdb.Connector
}

// Options tune the database engine. The zero value is the defaults.
type Options struct {
	// MemoryLimit caps DuckDB's buffer pool, in DuckDB's syntax ("2GiB",
	// "500MB"); default DefaultMemoryLimit. Work beyond it (the sorts and
	// joins of a large match, a big query's hash tables) spills to
	// TempDir instead of growing the process. The server's Go side (HTTP
	// bodies, Arrow batches in flight) comes on top, typically a few
	// hundred MB.
	MemoryLimit string
	// TempDir receives spilled data; default <dir>/spill. It holds
	// nothing between runs.
	TempDir string
}

// DefaultMemoryLimit is DuckDB's buffer pool when Options leave it unset.
// DuckDB's own default (80% of the machine's memory) would let a 10M-row
// match take most of a machine shared with other services; with this, a
// 10M x 10M match stays under 4 GiB resident (bench match).
const DefaultMemoryLimit = "2GiB"

// Open opens (creating if needed) the database in dir with default
// Options and brings its schema up to date.
func Open(ctx context.Context, dir string) (*DB, error) { return OpenWith(ctx, dir, Options{}) }

// OpenWith is Open with Options.
func OpenWith(ctx context.Context, dir string, o Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store.Open: %w", err)
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.TempDir == "" {
		o.TempDir = filepath.Join(dir, "spill")
	}
	db := &DB{path: filepath.Join(dir, FileName), opts: o, writeLock: make(chan struct{}, 1)}
	eng, err := db.openEngine(ctx)
	if err != nil {
		return nil, fmt.Errorf("store.Open: %w", err)
	}
	db.eng.Store(eng)
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store.Open: %s: %w", db.path, err)
	}
	return db, nil
}

// openEngine opens a DuckDB instance on the file, with the settings every
// connection shares.
func (db *DB) openEngine(ctx context.Context) (*engine, error) {
	// The database holds every partner's data: its files are the
	// server's alone, whatever the directory's mode, and so are those of
	// an older version, made 0644.
	ownFilesOnly()
	connector, err := duckdb.NewConnector(db.path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db.path, err)
	}
	for _, p := range []string{db.path, db.path + ".wal"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			connector.Close()
			return nil, err
		}
	}
	e := &engine{sql: sql.OpenDB(connector), connector: connector}
	// Global settings, set once for every connection of this database.
	// DuckDB's own checkpoints are off (checkpoint_threshold): one that
	// meets a full disk invalidates the database (DuckDB 1.1), so the
	// store checkpoints itself, only when the disk has room (checkpoint.go).
	for _, set := range []struct{ name, value string }{{"memory_limit", db.opts.MemoryLimit}, {"temp_directory", db.opts.TempDir}, {"checkpoint_threshold", noAutoCheckpoint}} {
		if _, err := e.sql.ExecContext(ctx, `SET GLOBAL `+set.name+` = '`+strings.ReplaceAll(set.value, "'", "''")+`'`); err != nil {
			e.close()
			return nil, fmt.Errorf("%s %q: %w", set.name, set.value, err)
		}
	}
	return e, nil
}

func (e *engine) close() error {
	err := e.sql.Close()
	if cerr := e.connector.Close(); err == nil {
		err = cerr
	}
	return err
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// SQL returns the database handle for reads and bulk work.
func (db *DB) SQL() *sql.DB { return db.eng.Load().sql }

// Write runs fn in a transaction, serialised with every other Write, and
// commits if fn returns nil. Any error rolls everything back. A caller
// still waiting for its turn when ctx ends gets ctx's error, and fn does
// not run.
func (db *DB) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case db.writeLock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.writeLock }()
	return db.tx(ctx, fn)
}

// Bulk runs fn in a transaction of its own, not serialised with Write:
// for heavy work (building a cohort) that only reads committed data and
// fills new tables no record refers to yet. DuckDB's transactions conflict
// only on the same rows, so it runs beside every Write; a later, short
// Write makes its tables part of the state. fn must not change what Write
// transactions change (metadata, the ledger, the audit log).
func (db *DB) Bulk(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.tx(ctx, fn)
}

// Read runs fn in a read-only snapshot.
func (db *DB) Read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.tx(ctx, fn)
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		db.Recover(err)
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		db.Recover(err)
		return err
	}
	if err := tx.Commit(); err != nil {
		db.Recover(err)
		return err
	}
	db.maybeCheckpoint()
	return nil
}

// Raw runs fn with a dedicated driver connection, for go-duckdb's Arrow and
// appender APIs.
func (db *DB) Raw(ctx context.Context, fn func(conn driver.Conn) error) error {
	c, err := db.SQL().Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		conn, ok := dc.(driver.Conn)
		if !ok {
			return errors.New("store: unexpected driver connection type")
		}
		return fn(conn)
	})
}

// migrations are applied in order; each runs once, in a transaction with
// the version bump. Append only: never edit a released migration.
var migrations = []string{
	`CREATE TABLE partners (
		id VARCHAR PRIMARY KEY,
		name VARCHAR NOT NULL UNIQUE,
		created_at TIMESTAMP NOT NULL
	);
	CREATE TABLE api_keys (
		id VARCHAR PRIMARY KEY,
		partner_id VARCHAR NOT NULL,
		role VARCHAR NOT NULL,
		label VARCHAR NOT NULL,
		secret_sha256 BLOB NOT NULL,
		created_at TIMESTAMP NOT NULL,
		revoked_at TIMESTAMP
	);
	CREATE TABLE collaborations (
		id VARCHAR PRIMARY KEY,
		name VARCHAR NOT NULL,
		proposer VARCHAR NOT NULL,
		partner VARCHAR NOT NULL,
		rules JSON NOT NULL,
		rules_version INTEGER NOT NULL,
		approved_by JSON NOT NULL,
		state VARCHAR NOT NULL,
		created_at TIMESTAMP NOT NULL,
		updated_at TIMESTAMP NOT NULL
	);
	CREATE TABLE audiences (
		id VARCHAR PRIMARY KEY,
		collab_id VARCHAR NOT NULL,
		partner_id VARCHAR NOT NULL,
		table_name VARCHAR NOT NULL,
		rows BIGINT NOT NULL,
		people BIGINT NOT NULL,
		content_sha256 VARCHAR NOT NULL,
		columns JSON NOT NULL,
		created_at TIMESTAMP NOT NULL,
		deleted_at TIMESTAMP
	);
	CREATE TABLE matches (
		id VARCHAR PRIMARY KEY,
		collab_id VARCHAR NOT NULL,
		audience_a VARCHAR NOT NULL,
		audience_b VARCHAR NOT NULL,
		state VARCHAR NOT NULL,
		points_a BIGINT NOT NULL,
		points_b BIGINT NOT NULL,
		half_a_sha256 VARCHAR,
		half_b_sha256 VARCHAR,
		cohort_table VARCHAR,
		cohort_size BIGINT,
		noisy_size BIGINT,
		epsilon DOUBLE,
		error VARCHAR,
		created_at TIMESTAMP NOT NULL,
		updated_at TIMESTAMP NOT NULL
	);
	CREATE TABLE audit_log (
		seq BIGINT PRIMARY KEY,
		at TIMESTAMP NOT NULL,
		actor VARCHAR NOT NULL,
		partner_id VARCHAR NOT NULL,
		collab_id VARCHAR NOT NULL,
		action VARCHAR NOT NULL,
		details JSON NOT NULL,
		prev_hash VARCHAR NOT NULL,
		hash VARCHAR NOT NULL
	);`,
	`CREATE TABLE budget_ledger (
		collab_id VARCHAR NOT NULL,
		partner_id VARCHAR NOT NULL,
		at TIMESTAMP NOT NULL,
		kind VARCHAR NOT NULL,
		ref VARCHAR NOT NULL,
		epsilon DOUBLE NOT NULL,
		delta DOUBLE NOT NULL
	);
	CREATE TABLE query_cache (
		collab_id VARCHAR NOT NULL,
		partner_id VARCHAR NOT NULL,
		cohort_version VARCHAR NOT NULL,
		plan_hash VARCHAR NOT NULL,
		epsilon DOUBLE NOT NULL,
		answer JSON NOT NULL,
		answer_sha256 VARCHAR NOT NULL,
		created_at TIMESTAMP NOT NULL
	);`,
	`CREATE TABLE receipts (
		id VARCHAR PRIMARY KEY,
		collab_id VARCHAR NOT NULL,
		partner_id VARCHAR NOT NULL,
		body JSON NOT NULL,
		created_at TIMESTAMP NOT NULL
	);
	CREATE TABLE optouts (
		collab_id VARCHAR NOT NULL,
		partner_id VARCHAR NOT NULL,
		pid BLOB NOT NULL,
		at TIMESTAMP NOT NULL
	);
	CREATE TABLE audience_retention (
		audience_id VARCHAR NOT NULL,
		expires_at TIMESTAMP NOT NULL
	);
	CREATE TABLE cohort_revisions (
		match_id VARCHAR NOT NULL,
		rev INTEGER NOT NULL,
		at TIMESTAMP NOT NULL
	);`,
	// The privacy model: what an entry tells only its own partner (audit
	// private), the people an audience can match with, and which party
	// each cohort column came from.
	`ALTER TABLE audit_log ADD COLUMN private JSON;
	ALTER TABLE audiences ADD COLUMN people_matchable BIGINT;
	UPDATE audiences SET people_matchable = people;
	ALTER TABLE matches ADD COLUMN cohort_columns JSON;`,
	// The exact ledger: epsilon in units of 1e-6, delta in units of 1e-12,
	// summed as integers (the float columns stay, for readers of the
	// ledger). An older charge that is not a whole number of units (beyond
	// float error) is rounded up: a spend is never undercounted.
	`ALTER TABLE budget_ledger ADD COLUMN epsilon_units BIGINT;
	ALTER TABLE budget_ledger ADD COLUMN delta_units BIGINT;
	UPDATE budget_ledger SET
		epsilon_units = CAST(CASE WHEN epsilon = 0 THEN 0
			WHEN round(epsilon * 1e6::DOUBLE) > 0 AND abs(epsilon * 1e6::DOUBLE - round(epsilon * 1e6::DOUBLE)) <= 1e-9 * epsilon * 1e6::DOUBLE
			THEN round(epsilon * 1e6::DOUBLE) ELSE ceil(epsilon * 1e6::DOUBLE) END AS BIGINT),
		delta_units = CAST(CASE WHEN delta = 0 THEN 0
			WHEN round(delta * 1e12::DOUBLE) > 0 AND abs(delta * 1e12::DOUBLE - round(delta * 1e12::DOUBLE)) <= 1e-9 * delta * 1e12::DOUBLE
			THEN round(delta * 1e12::DOUBLE) ELSE ceil(delta * 1e12::DOUBLE) END AS BIGINT);`,
	// The rules both partners last approved, shown beside a pending change
	// and restored when it is rejected. A change pending at upgrade has
	// none to show: its earlier rules were not kept.
	`ALTER TABLE collaborations ADD COLUMN approved_rules JSON;
	UPDATE collaborations SET approved_rules = rules WHERE state = 'active';`,
	// The facts of each cohort, computed when it was built (cohort.Facts,
	// until named tables; no longer read or written).
	`ALTER TABLE matches ADD COLUMN cohort_facts JSON;`,
	// Named tables: a party brings several tables to a collaboration (an
	// audience row each, named), and a match runs over every current
	// table of both parties. match_tables lists them, with the table that
	// links each one's rows to the match's person map once the cohort is
	// built. Matches of older versions (one audience a side, a product
	// cohort table) are linked by cohort.Service.Migrate at start.
	`ALTER TABLE audiences ADD COLUMN name VARCHAR DEFAULT 'audience';
	UPDATE audiences SET name = 'audience';
	CREATE TABLE match_tables (
		match_id VARCHAR NOT NULL,
		side VARCHAR NOT NULL,
		audience_id VARCHAR NOT NULL,
		name VARCHAR NOT NULL,
		link_table VARCHAR,
		linked_rows BIGINT
	);`,
	// The fingerprint of the key that blinded a table's points (NULL: its
	// client stated none; the party's first match half records it).
	`ALTER TABLE audiences ADD COLUMN key_fingerprint VARCHAR;`,
	// Exposure caps: a partner's cap on the epsilon and delta its people
	// may be exposed to across all its collaborations (NULL: no cap on
	// that part), in the ledger's units, per period (refresh none: all
	// time; monthly: the calendar month, UTC). One row a partner at most.
	`CREATE TABLE exposure_caps (
		partner_id VARCHAR NOT NULL,
		epsilon_units BIGINT,
		delta_units BIGINT,
		refresh VARCHAR NOT NULL,
		set_at TIMESTAMP NOT NULL
	);`,
	// What a partner's admin adds to its public privacy report.
	`CREATE TABLE report_settings (
		partner_id VARCHAR PRIMARY KEY,
		introduction VARCHAR NOT NULL,
		privacy_contact VARCHAR NOT NULL,
		opt_out_url VARCHAR NOT NULL,
		updated_at TIMESTAMP NOT NULL
	);`,
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	err := db.SQL().QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := db.SQL().ExecContext(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this cleanroom (%d); upgrade cleanroom", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		err := db.Write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			_, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, i+1)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// QuoteIdent quotes a table or column name for DuckDB: the one quoting
// rule of every SQL text cleanroom generates. Names we generate are plain
// identifiers already, and column names analysts and uploads may use match
// wire.ColumnNamePattern; quoting anyway means no name, whatever it holds,
// is ever read as SQL.
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Querier reads: *sql.DB, *sql.Tx and *sql.Conn all do. Functions that
// only read take it, so they run alike on the database, inside a Write
// (seeing its uncommitted changes) or in a Read snapshot. Functions that
// write take *sql.Tx instead: a write belongs in a DB.Write transaction,
// with its audit entry.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Execer reads and writes: *sql.DB, *sql.Tx or *sql.Conn.
type Execer interface {
	Querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// QueryStrings returns the first column of every row of a query, such as
// a list of IDs.
func QueryStrings(ctx context.Context, q Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Map scans a DuckDB MAP, such as histogram()'s; NULL scans as nil.
type Map map[any]any

// Scan implements sql.Scanner.
func (m *Map) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*m = nil
	case duckdb.Map:
		*m = Map(x)
	default:
		return fmt.Errorf("store: cannot scan %T as a MAP", v)
	}
	return nil
}

// SchemaVersion is the version the migrations bring a database to.
func SchemaVersion() int { return len(migrations) }
