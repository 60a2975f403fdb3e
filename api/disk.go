package api

import (
	"os"
	"path/filepath"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
)

// checkRoom refuses work that writes when the database's or the spool's
// file system is under the reserve: a full disk fails a write half way
// (a commit, a spool, a checkpoint), and the reserve keeps the database
// room to checkpoint. The refusal is the same for every caller and names
// no figure of another partner's.
func (s *Server) checkRoom() error {
	if s.opts.MinFreeBytes < 0 {
		return nil
	}
	dirs := []string{filepath.Dir(s.db.Path())}
	if s.opts.TempDir != "" {
		dirs = append(dirs, s.opts.TempDir)
	}
	for _, d := range dirs {
		free, err := store.FreeBytes(d)
		if err != nil {
			continue // a file system that cannot say: let the write find out
		}
		if free < uint64(s.opts.MinFreeBytes) {
			return errs.New(errs.InsufficientStorage, "the server's disk is nearly full (under its reserve): nothing was changed; reads still answer. Retry once its operator has freed space")
		}
	}
	return nil
}

// checkRoomFor refuses a snapshot of the database into dir unless the
// disk holds it and keeps the reserve.
func (s *Server) checkRoomFor(dbPath, dir string) error {
	var size int64
	for _, p := range []string{dbPath, dbPath + ".wal"} {
		if st, err := os.Stat(p); err == nil {
			size += st.Size()
		}
	}
	free, err := store.FreeBytes(dir)
	if err != nil {
		return nil
	}
	if int64(free) < size+max(s.opts.MinFreeBytes, 0) {
		return errs.New(errs.InsufficientStorage, "the server's disk has no room for a snapshot of the database (%d MB, beside its reserve): nothing was taken; free space, then retry", size>>20)
	}
	return nil
}

// diskFullBytes is the free space under which a failure of no kind is
// taken for a full disk's (writes stop at the reserve, above it: a write
// meets a full disk only when something else filled it).
const diskFullBytes = 1 << 20

// diskFull reports whether the database's or the spool's file system is
// (nearly) full.
func (s *Server) diskFull() bool {
	dirs := []string{filepath.Dir(s.db.Path())}
	if s.opts.TempDir != "" {
		dirs = append(dirs, s.opts.TempDir)
	}
	for _, d := range dirs {
		if free, err := store.FreeBytes(d); err == nil && free < diskFullBytes {
			return true
		}
	}
	return false
}
