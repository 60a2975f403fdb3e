package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Checkpoints and a full disk. On DuckDB 1.1 a commit that cannot write
// its WAL fails alone, and the database goes on; but a checkpoint that
// cannot write the database file is fatal: the instance is invalidated
// ("database has been invalidated because of a previous fatal error")
// and answers nothing, reads included. Worse, closing an invalidated
// instance removes its WAL and rewrites the file's header: transactions
// it had committed are lost (seen on a 4 MB tmpfs: every row gone after
// reopen, while a copy of the files taken before the close replayed
// them all). So:
//
//   - DuckDB's automatic checkpoints are off; the store checkpoints after
//     a commit once the WAL passes walCheckpointBytes, and only when the
//     disk has room for it (twice the WAL, and checkpointReserve more);
//   - Close checkpoints only with that room, and otherwise leaves the WAL
//     to be replayed at the next start;
//   - an invalidated instance is never closed: Recover sets it aside,
//     open (its file handles and memory are the process's until it ends,
//     which loses nothing), and opens a new one on the same files, which
//     replays the WAL: every committed transaction is there again.

// noAutoCheckpoint is DuckDB's checkpoint_threshold: never reached.
const noAutoCheckpoint = "1000TB"

// walCheckpointBytes is the WAL's size that calls for a checkpoint
// (DuckDB's own default threshold).
const walCheckpointBytes = 16 << 20

// checkpointReserve is the room a checkpoint needs beyond twice the WAL.
const checkpointReserve = 1 << 20

// abandoned holds invalidated instances, never closed (see above).
var abandoned struct {
	sync.Mutex
	engines []*engine
}

// Invalidated reports whether err says the DuckDB instance is
// invalidated by a fatal error.
func Invalidated(err error) bool {
	if err == nil {
		return false
	}
	t := err.Error()
	return strings.Contains(t, "database has been invalidated") || strings.Contains(t, "FATAL Error")
}

// walBytes is the WAL's size (0 when there is none).
func (db *DB) walBytes() int64 {
	st, err := os.Stat(db.path + ".wal")
	if err != nil {
		return 0
	}
	return st.Size()
}

// roomToCheckpoint reports whether the disk has room for a checkpoint.
func (db *DB) roomToCheckpoint() bool {
	free, err := FreeBytes(filepath.Dir(db.path))
	if err != nil {
		return true // a file system that cannot say: DuckDB's default behaviour
	}
	return free >= uint64(2*db.walBytes()+checkpointReserve)
}

// maybeCheckpoint checkpoints, in the background, when the WAL is over
// walCheckpointBytes and the disk has room. One at a time; one that finds
// other writers at work fails harmlessly and the next commit tries again.
func (db *DB) maybeCheckpoint() {
	if db.walBytes() < walCheckpointBytes || !db.checkpointing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer db.checkpointing.Store(false)
		_ = db.Checkpoint(context.Background())
	}()
}

// Checkpoint writes the WAL into the database file when the disk has room
// for it; without room it does nothing (the WAL keeps every commit).
func (db *DB) Checkpoint(ctx context.Context) error {
	if !db.roomToCheckpoint() {
		return nil
	}
	_, err := db.SQL().ExecContext(ctx, `CHECKPOINT`)
	db.Recover(err)
	return err
}

// Recover replaces an instance err says is invalidated with a new one on
// the same files (see above), once the disk has room to replay the WAL.
// It returns whether the database is usable now; for any other error it
// does nothing and returns true.
func (db *DB) Recover(err error) bool {
	if !Invalidated(err) {
		return true
	}
	db.reopenMu.Lock()
	defer db.reopenMu.Unlock()
	old := db.eng.Load()
	if _, perr := old.sql.Exec(`SELECT 1`); perr == nil {
		return true // another caller has reopened it
	}
	if !db.roomToCheckpoint() {
		return false
	}
	// Opening replays the WAL and checkpoints: it needs the room above.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eng, oerr := db.openEngine(ctx)
	if oerr != nil {
		slog.Default().Error("store: reopening the invalidated database failed; retrying at the next error", "err", oerr)
		return false
	}
	abandoned.Lock()
	abandoned.engines = append(abandoned.engines, old)
	abandoned.Unlock()
	db.eng.Store(eng)
	slog.Default().Warn("store: the database was invalidated by a fatal error (a full disk?) and is reopened; committed work is kept", "cause", err)
	return true
}

// Healthy reports whether the database answers, reopening it if it was
// invalidated.
func (db *DB) Healthy(ctx context.Context) error {
	err := db.SQL().PingContext(ctx)
	if err == nil {
		_, err = db.SQL().ExecContext(ctx, `SELECT 1`)
	}
	if err != nil && db.Recover(err) && Invalidated(err) {
		return nil
	}
	return err
}

// Close checkpoints (when the disk has room) and closes the database. An
// invalidated instance is left open (see above).
func (db *DB) Close() error {
	e := db.eng.Load()
	if _, err := e.sql.Exec(`SELECT 1`); Invalidated(err) {
		return fmt.Errorf("store: the database was invalidated and is left for the next start to replay: %w", err)
	}
	if db.roomToCheckpoint() {
		if _, err := e.sql.Exec(`CHECKPOINT`); Invalidated(err) {
			return fmt.Errorf("store: checkpoint at close: %w", err)
		}
	} else if _, err := e.sql.Exec(`PRAGMA disable_checkpoint_on_shutdown`); err != nil {
		return fmt.Errorf("store: no room to checkpoint, and the shutdown checkpoint cannot be turned off: leaving the database open: %w", err)
	}
	return e.close()
}
