// Package errs is the server's error taxonomy: the kinds of failure every
// server package reports by wrapping one of these, which the API maps to
// HTTP statuses and wire error codes in one place. It belongs to no domain
// package, so none of them owns the others' errors.
package errs

import "errors"

// The kinds. Wrap one with fmt.Errorf("%w: what was wrong", errs.Invalid)
// so that errors.Is finds it; the message after the kind is what the
// caller reads.
var (
	// Invalid: the request is wrong and repeating it will not help.
	Invalid = errors.New("invalid")
	// NotFound: no such thing, or the caller may not know it exists.
	NotFound = errors.New("not found")
	// Conflict: the request does not fit the current state.
	Conflict = errors.New("conflict")
	// Unauthorized: no key, or an unknown or revoked one.
	Unauthorized = errors.New("unauthorized")
	// Forbidden: the key's role may not do this.
	Forbidden = errors.New("forbidden")
	// TooLarge: a body over the server's limit.
	TooLarge = errors.New("too large")
)
