package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
)

func TestOpenMigratesAndPersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO partners VALUES ('p1', 'Acme', now())`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO partners VALUES ('p2', 'Globex', now())`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	rows, err := db.SQL().Query(`SELECT name FROM partners ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != "Acme" {
		t.Errorf("after reopen: %v, want [Acme] (the failed write rolled back)", names)
	}
}

func TestQuoteIdent(t *testing.T) {
	if got := QuoteIdent(`a"b`); got != `"a""b"` {
		t.Errorf("got %s", got)
	}
}

// TestApprovedRulesMigration: a collaboration active at upgrade has its
// rules as the ones both approved; one with a change pending has none
// (its earlier rules were not kept).
func TestApprovedRulesMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	all := migrations
	migrations = all[:5]
	db, err := Open(ctx, dir)
	migrations = all
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`INSERT INTO collaborations VALUES
		('c_active', 'a', 'p1', 'p2', '{"purpose": "measurement"}', 1, '["p1", "p2"]', 'active', now(), now()),
		('c_pending', 'b', 'p1', 'p2', '{"purpose": "marketing"}', 2, '["p1"]', 'proposed', now(), now())`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id, want := range map[string]sql.NullString{
		"c_active":  {String: `{"purpose": "measurement"}`, Valid: true},
		"c_pending": {},
	} {
		var got sql.NullString
		if err := db.SQL().QueryRow(`SELECT CAST(approved_rules AS VARCHAR) FROM collaborations WHERE id = ?`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: approved_rules %+v, want %+v", id, got, want)
		}
	}
}

// TestWriteWaitGivesUp: a Write waiting behind another gives up when its
// context ends, without running, and the one holding the turn commits.
func TestWriteWaitGivesUp(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	holding, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.Write(ctx, func(tx *sql.Tx) error {
			close(holding)
			<-release
			_, err := tx.ExecContext(ctx, `CREATE TABLE held (x INTEGER)`)
			return err
		})
	}()
	<-holding
	wctx, cancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	ran := false
	go func() {
		waited <- db.Write(wctx, func(*sql.Tx) error { ran = true; return nil })
	}()
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("the waiting Write: %v (ran %v), want context.Canceled without running", err, ran)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, `INSERT INTO held VALUES (1)`); return err }); err != nil {
		t.Fatalf("a Write after both: %v", err)
	}
}
