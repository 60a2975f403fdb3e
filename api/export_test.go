package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/store"
)

// NewStubbed is New with every route's handler replaced by one that
// answers 204, behind the same access check: what a request gets from it
// is guard's answer alone. It builds the server's services over db but
// leaves the database as it is (the server under test prepared it).
func NewStubbed(db *store.DB) *Server {
	return newServer(db, Config{}, nil, func(*route) echo.HandlerFunc {
		return func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	})
}

// Expire runs one round of the retention janitor at now, as Serve does
// every minute: tests serve with httptest, without the janitor.
func (s *Server) Expire(ctx context.Context, now time.Time) (int, error) {
	return s.deletions.Expire(ctx, now)
}
