package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/internal/store"
	"github.com/cleanroom/cleanroom/wire"
)

// statusClientClosed is what the access log and metrics record for a
// request whose client went away before its answer (nginx's 499); nothing
// is sent.
const statusClientClosed = 499

// errorHandler answers every error, of every route, in the one shape
// {"error": {"code", "message", "position"?}}; its status follows from
// the code (wire.ErrorCode.Status).
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		// A stream that failed half way: the client sees it cut short.
		s.opts.Logger.Warn("response failed after it started", "method", c.Request().Method, "route", c.Path(), "err", err)
		return
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		c.Response().Status = statusClientClosed
		return
	}
	// A fatal error of the database's (a checkpoint on a full disk) is
	// recovered from here too, whatever route met it.
	if store.Invalidated(err) {
		s.opts.Logger.Error("the database met a fatal error", "method", c.Request().Method, "route", c.Path(), "err", err)
		s.db.Recover(err)
	}
	e := classify(err)
	if e.Code == wire.CodeInternal && s.diskFull() {
		// Not every layer says ENOSPC (go-duckdb's Arrow scan says only
		// that it failed): a failure of no kind on a full disk is the disk.
		s.opts.Logger.Warn("request failed on a full disk", "method", c.Request().Method, "route", c.Path(), "err", err)
		e = wire.Error{Code: wire.CodeInsufficientStorage, Message: errs.DiskFullMessage}
	}
	if e.Code == wire.CodeInternal {
		// Internal errors are logged with the route, never with bodies or keys.
		s.opts.Logger.Error("request failed", "method", c.Request().Method, "route", c.Path(), "err", err)
	}
	_ = c.JSON(e.Code.Status(), wire.ErrorBody{Error: e})
}

// classify is what the caller reads of err: the code (and with it the
// status) and a message that does not repeat the code. The kinds and
// their codes are package errs'; what is mapped here is only what comes
// from outside our packages (net/http's body limit, echo's router).
func classify(err error) wire.Error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return wire.Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf("the body is over the %d bytes this route reads", mbe.Limit)}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return echoError(he)
	}
	if store.Invalidated(err) {
		return wire.Error{Code: wire.CodeUnavailable, Message: "the database met a fatal error (a full disk?) and is being reopened; retry shortly"}
	}
	if errs.KindOf(err) == errs.Unauthorized {
		return wire.Error{Code: wire.CodeUnauthorized, Message: "missing, unknown or revoked API key; send Authorization: Bearer <key>"}
	}
	return errs.Classify(err)
}

// echoError is an error of echo's router or of a handler it wraps
// (promhttp's), by status.
func echoError(he *echo.HTTPError) wire.Error {
	msg := fmt.Sprint(he.Message)
	switch he.Code {
	case http.StatusNotFound:
		return wire.Error{Code: wire.CodeNotFound, Message: "no such route; GET /openapi.json lists them"}
	case http.StatusMethodNotAllowed:
		return wire.Error{Code: wire.CodeMethodNotAllowed, Message: "the route does not take this method; GET /openapi.json lists them"}
	case http.StatusRequestEntityTooLarge:
		return wire.Error{Code: wire.CodeTooLarge, Message: msg}
	case http.StatusUnsupportedMediaType:
		return wire.Error{Code: wire.CodeUnsupportedMediaType, Message: msg}
	case http.StatusBadRequest:
		return wire.Error{Code: wire.CodeInvalid, Message: msg}
	case http.StatusServiceUnavailable:
		return wire.Error{Code: wire.CodeUnavailable, Message: msg}
	}
	return wire.Error{Code: wire.CodeInternal, Message: "internal error; the operator's log has details"}
}
