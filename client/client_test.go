package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// TestErrorsAreTyped: the server's errors come back as *Error with their
// status, code and (for a query's syntax) position, matched by code with
// errors.Is, never by text; a body that is not the API's shape keeps its
// status and text with no code.
func TestErrorsAreTyped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/collaborations/c_1":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": {"code": "not_found", "message": "collaboration c_1"}}`))
		case "/v1/collaborations/c_1/queries":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error": {"code": "syntax", "message": "syntax error at position 33", "position": 33}}`))
		case "/v1/collaborations/c_1/matches":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error": {"code": "stale_match", "message": "match m_1 is stale"}}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("upstream down\n"))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "k")
	ctx := context.Background()

	_, err := c.Collaboration(ctx, "c_1")
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.Code != wire.CodeNotFound || e.Message != "collaboration c_1" || e.Position != -1 {
		t.Errorf("not found: %#v", err)
	}
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || CodeOf(err) != wire.CodeNotFound {
		t.Errorf("errors.Is by code: %v", err)
	}
	if !strings.Contains(err.Error(), "404 not_found") {
		t.Errorf("Error() = %q", err)
	}

	err = c.Query(ctx, "c_1", "SELECT", 0.1, "json", &wire.Answer{})
	if !errors.As(err, &e) || e.Code != wire.CodeSyntax || e.Position != 33 {
		t.Errorf("syntax: %#v", err)
	}

	_, err = c.StartMatch(ctx, "c_1")
	if !errors.Is(err, ErrStaleMatch) || !errors.Is(err, &Error{Code: wire.CodeStaleMatch}) {
		t.Errorf("stale: %v", err)
	}

	err = c.AuditExport(ctx, &strings.Builder{})
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Code != "" || e.Message != "upstream down" || CodeOf(err) != "" {
		t.Errorf("not the API's shape: %#v", err)
	}
	if errors.Is(err, &Error{}) {
		t.Error("an error without a code matches an empty sentinel")
	}
}
