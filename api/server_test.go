package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/deletion"
)

// Shutdown stops the retention janitor and waits for the round it is in
// before closing the database: a round still running when the server is
// told to stop finds the database open.
func TestShutdownWaitsForTheJanitor(t *testing.T) {
	started, finished := make(chan struct{}), make(chan struct{})
	var roundErr error
	var first atomic.Bool
	old := janitorRound
	janitorRound = func(co *deletion.Service, ctx context.Context, now time.Time) (int, error) {
		if first.Swap(true) {
			return 0, nil
		}
		close(started)
		<-ctx.Done() // shutdown begins in the middle of this round
		time.Sleep(300 * time.Millisecond)
		var one int
		roundErr = co.DB.SQL().QueryRowContext(context.Background(), `SELECT 1`).Scan(&one)
		close(finished)
		return 0, nil
	}
	t.Cleanup(func() { janitorRound = old })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- Run(ctx, Config{DataDir: t.TempDir(), Listener: ln, Logger: log, ShutdownTimeout: time.Second})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve ended before the janitor ran: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the janitor did not run")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("serve returned, and closed the database, while the janitor's round was still running")
	}
	if roundErr != nil {
		t.Fatalf("the janitor's round found the database closed: %v", roundErr)
	}
}
