// Package errs is the server's error taxonomy: the kinds of failure every
// server package reports by wrapping one of these, which the API maps to
// HTTP statuses and wire error codes in one place (internal/api's
// errors.go). It belongs to no domain package, so none of them owns the
// others' errors.
package errs

import "strings"

// Kind is one kind of failure. A kind may refine another (InvalidRules is
// a kind of Invalid): errors.Is finds both.
type Kind struct {
	name   string
	parent error
}

func (k *Kind) Error() string { return k.name }

// Unwrap returns the kind this one refines, if any.
func (k *Kind) Unwrap() error { return k.parent }

// The kinds, typed error so that they wrap and compare as any sentinel.
// Wrap one with fmt.Errorf("%w: what was wrong", errs.Invalid)
// so that errors.Is finds it; the message after the kind is what the
// caller reads (Message strips the kind's name).
var (
	// Invalid: the request is wrong and repeating it will not help.
	Invalid error = &Kind{name: "invalid"}
	// InvalidRules: a collaboration's rules are out of range; the message
	// names the rule. A kind of Invalid.
	InvalidRules error = &Kind{name: "invalid rules", parent: Invalid}
	// NotFound: no such thing, or the caller may not know it exists.
	NotFound error = &Kind{name: "not found"}
	// Conflict: the request does not fit the current state.
	Conflict error = &Kind{name: "conflict"}
	// Unauthorized: no key, or an unknown or revoked one.
	Unauthorized error = &Kind{name: "unauthorized"}
	// Forbidden: the key's role may not do this.
	Forbidden error = &Kind{name: "forbidden"}
	// TooLarge: a body over the server's limit.
	TooLarge error = &Kind{name: "too large"}
	// UnsupportedMedia: a body in a format the route does not read.
	UnsupportedMedia error = &Kind{name: "unsupported media type"}
	// Unavailable: the server lacks what this needs (a signing key, the
	// database); the operator can fix it, the caller cannot.
	Unavailable error = &Kind{name: "unavailable"}
	// StaleMatch: the match was voided (an audience replaced, or people
	// deleted, since it started); running match again starts a new one.
	// A kind of Conflict.
	StaleMatch error = &Kind{name: "stale match", parent: Conflict}
	// AwaitingUpload: a match started before both parties uploaded. A
	// kind of Conflict.
	AwaitingUpload error = &Kind{name: "awaiting upload", parent: Conflict}
)

// Kinds lists every kind, refinements first, so that the first one
// errors.Is finds is the most specific (an error may wrap several kinds:
// awaiting an upload because an audience was not found).
var Kinds = []error{StaleMatch, AwaitingUpload, InvalidRules, Invalid, NotFound, Conflict, Unauthorized, Forbidden, TooLarge, UnsupportedMedia, Unavailable}

// Message returns err's text without the names of the kinds (and of the
// sentinel errors in also) that wrapping put in front of its parts:
// "invalid: invalid: row 601" reads "row 601", and "stale match: match
// m_1 is stale" reads "match m_1 is stale". A text that is nothing but a
// name is kept.
func Message(err error, also ...error) string {
	msg := err.Error()
	var names []string
	for _, k := range Kinds {
		names = append(names, k.Error())
	}
	for _, e := range also {
		names = append(names, e.Error())
	}
	for changed := true; changed; {
		changed = false
		for _, n := range names {
			if rest, ok := strings.CutPrefix(msg, n+": "); ok && rest != "" {
				msg, changed = rest, true
			}
			for _, sep := range []string{": ", "; "} {
				if strings.Contains(msg, sep+n+": ") {
					msg, changed = strings.ReplaceAll(msg, sep+n+": ", sep), true
				}
			}
		}
	}
	return msg
}
