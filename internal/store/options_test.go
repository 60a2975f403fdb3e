package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenOptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := OpenWith(ctx, dir, Options{MemoryLimit: "300MiB"})
	if err != nil {
		t.Fatal(err)
	}
	var limit, tmp string
	if err := db.SQL().QueryRowContext(ctx, `SELECT current_setting('memory_limit'), current_setting('temp_directory')`).Scan(&limit, &tmp); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// DuckDB reports the limit in its own units.
	if !strings.Contains(limit, "MiB") || !strings.HasPrefix(limit, "300") {
		t.Errorf("memory_limit = %q, want 300 MiB", limit)
	}
	if tmp != filepath.Join(dir, "spill") {
		t.Errorf("temp_directory = %q, want %q", tmp, filepath.Join(dir, "spill"))
	}

	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	db.SQL().QueryRowContext(ctx, `SELECT current_setting('memory_limit')`).Scan(&limit)
	db.Close()
	if !strings.HasPrefix(limit, "2.0 GiB") {
		t.Errorf("default memory_limit = %q, want %s", limit, DefaultMemoryLimit)
	}

	_, err = OpenWith(ctx, t.TempDir(), Options{MemoryLimit: "lots"})
	if err == nil || !strings.Contains(err.Error(), "memory_limit") {
		t.Errorf("a bad memory limit gave %v, want an error naming memory_limit", err)
	}
}
