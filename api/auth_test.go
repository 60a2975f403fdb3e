package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// TestAuthenticationOutageIsNotUnauthorized: when the database fails
// while a key is checked, the caller gets a 500 (not "unknown key") and
// the operator's log says why; a wrong key is still a 401.
func TestAuthenticationOutageIsNotUnauthorized(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv, err := New(ctx, Config{DB: db, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	secret := srv.OperatorSecret()
	h := srv.Handler()
	get := func(key string) (int, wire.ErrorBody) {
		req := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body wire.ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, _ := get(secret); code != http.StatusOK {
		t.Fatalf("the operator's key: %d", code)
	}
	if code, body := get(secret + "x"); code != http.StatusUnauthorized || body.Error.Code != wire.CodeUnauthorized {
		t.Fatalf("a wrong key: %d %+v", code, body)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a wrong key is logged as an error: %s", logs.String())
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	code, body := get(secret)
	if code != http.StatusInternalServerError || body.Error.Code != wire.CodeInternal {
		t.Fatalf("authentication with the database down: %d %+v, want 500 internal", code, body)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "authenticating a key") {
		t.Errorf("the outage is not in the log: %q", logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the log holds the API key")
	}
}

// TestClockIsTheServers: what the server stamps comes from Config.Clock,
// so a test (or an operator replaying a period) can fix it.
func TestClockIsTheServers(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	srv, err := New(ctx, Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/partners/operator/privacy-report", nil)
	req.Header.Set("Authorization", "Bearer "+srv.OperatorSecret())
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	var rep wire.PrivacyReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	if !rep.GeneratedAt.Equal(at) || !rep.Until.Equal(at) || !rep.Since.Equal(at.AddDate(-1, 0, 0)) {
		t.Errorf("generated %v for %v..%v, want the clock's %v", rep.GeneratedAt, rep.Since, rep.Until, at)
	}
}
