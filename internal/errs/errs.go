// Package errs is the server's one error model, after Prometheus's
// apiError{typ, err}: every failure a caller may act on is an *Error of
// a Kind, and each Kind carries the wire.ErrorCode (and so the HTTP
// status, wire.ErrorCode.Status) the API answers with. Services make
// errors with New; the API turns any error into its code and message
// with Classify. An error without a Kind is an internal one.
//
// Texts never hold a kind's name: an *Error's text is its message, so a
// caller's context ("reading the body: ...") wraps it with fmt.Errorf
// and %w and the whole text is what the caller reads.
package errs

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/cleanroom/cleanroom/wire"
)

// Kind is one kind of failure, with its wire code. A kind may refine
// another (InvalidRules is a kind of Invalid): errors.Is finds both, and
// Classify answers with the most refined kind an error holds.
type Kind struct {
	code   wire.ErrorCode
	name   string
	parent *Kind
	// refusal: a refusal of a query, logged as query.refused.
	refusal bool
}

// Error is the kind's name, the text of an error that is nothing but
// its kind (errs.Unauthorized returned as is).
func (k *Kind) Error() string {
	if k == nil {
		return "no kind"
	}
	return k.name
}

// Code is the wire code the API answers with.
func (k *Kind) Code() wire.ErrorCode { return k.code }

// Unwrap returns the kind this one refines, if any.
func (k *Kind) Unwrap() error {
	if k == nil || k.parent == nil {
		return nil
	}
	return k.parent
}

// refines reports whether k is other or refines it.
func (k *Kind) refines(other *Kind) bool {
	for ; k != nil; k = k.parent {
		if k == other {
			return true
		}
	}
	return false
}

func kind(code wire.ErrorCode, name string, parent *Kind) *Kind {
	return &Kind{code: code, name: name, parent: parent}
}

func refusal(code wire.ErrorCode, name string, parent *Kind) *Kind {
	k := kind(code, name, parent)
	k.refusal = true
	return k
}

// The kinds of every route.
var (
	// Invalid: the request is wrong and repeating it will not help.
	Invalid = kind(wire.CodeInvalid, "invalid", nil)
	// InvalidRules: a collaboration's rules are out of range; the message
	// names the rule.
	InvalidRules = kind(wire.CodeInvalidRules, "invalid rules", Invalid)
	// NotFound: no such thing, or the caller may not know it exists.
	NotFound = kind(wire.CodeNotFound, "not found", nil)
	// Conflict: the request does not fit the current state.
	Conflict = kind(wire.CodeConflict, "conflict", nil)
	// StaleMatch: the match was voided (an audience replaced, or people
	// deleted, since it started); running match again starts a new one.
	StaleMatch = kind(wire.CodeStaleMatch, "stale match", Conflict)
	// AwaitingUpload: a match started before both parties uploaded.
	AwaitingUpload = kind(wire.CodeAwaitingUpload, "awaiting upload", Conflict)
	// LastAdminKey: revoking the key would leave its partner with no
	// admin key, for good (the operator mints only a partner's first).
	LastAdminKey = kind(wire.CodeLastAdminKey, "last admin key", Conflict)
	// ReplaceRequired: an upload would replace a table without saying so.
	ReplaceRequired = kind(wire.CodeReplaceRequired, "replace required", Conflict)
	// KeyMismatch: a match half or an upload blinded with another key
	// than the partner's tables.
	KeyMismatch = kind(wire.CodeKeyMismatch, "key mismatch", Conflict)
	// NotStored: a question asked for its stored answer only
	// (cached_only) has none; nothing was spent.
	NotStored = kind(wire.CodeNotStored, "not stored", Conflict)
	// TooManyUploads: the partner's uploads in progress are at the
	// server's bound; retrying later helps.
	TooManyUploads = kind(wire.CodeTooManyUploads, "too many uploads", nil)
	// Unauthorized: no key, or an unknown or revoked one.
	Unauthorized = kind(wire.CodeUnauthorized, "unauthorized", nil)
	// Forbidden: the key's role may not do this.
	Forbidden = kind(wire.CodeForbidden, "forbidden", nil)
	// TooLarge: a body over the server's limit.
	TooLarge = kind(wire.CodeTooLarge, "too large", nil)
	// UnsupportedMedia: a body in a format the route does not read.
	UnsupportedMedia = kind(wire.CodeUnsupportedMediaType, "unsupported media type", nil)
	// Unavailable: the server lacks what this needs (a signing key); the
	// operator can fix it, the caller cannot.
	Unavailable = kind(wire.CodeUnavailable, "unavailable", nil)
	// InsufficientStorage: the disk is full, or under the server's
	// reserve; the work was rolled back, and succeeds on retry once space
	// returns.
	InsufficientStorage = kind(wire.CodeInsufficientStorage, "insufficient storage", nil)
)

// The refusals of a query: the query is not run, and the refusal is
// logged (query.refused) with its code.
var (
	// Syntax: the text does not parse; the error's position says where.
	Syntax = refusal(wire.CodeSyntax, "syntax error", nil)
	// Unsupported: a construct outside the SQL subset.
	Unsupported = refusal(wire.CodeUnsupported, "unsupported construct", nil)
	// Limit: the query is over one of the size limits.
	Limit = refusal(wire.CodeLimit, "over a size limit", nil)
	// EpsilonNotAllowed: the epsilon is outside the rules' bounds.
	EpsilonNotAllowed = refusal(wire.CodeEpsilonNotAllowed, "epsilon not allowed", nil)
	// NotReleasable: the noise library refused the release's parameters.
	NotReleasable = refusal(wire.CodeNotReleasable, "not releasable", nil)
	// NotAllowed: a column or aggregate the rules do not allow.
	NotAllowed = refusal(wire.CodeNotAllowed, "not allowed", nil)
	// HiddenColumn: uid, rowid and columns starting with _.
	HiddenColumn = refusal(wire.CodeHiddenColumn, "hidden column", nil)
	// NotAQuerier: the rules' queriers leave out the key's partner.
	NotAQuerier = refusal(wire.CodeNotAQuerier, "not a querier", nil)
	// NoCohort: no match has built a cohort yet, or the collaboration is
	// not active.
	NoCohort = refusal(wire.CodeNoCohort, "no cohort", nil)
	// CohortTooSmall: the cohort's noisy size is under min_cohort_users.
	CohortTooSmall = refusal(wire.CodeCohortTooSmall, "cohort too small", nil)
	// RulesInvalid: the stored rules cannot be counted exactly, or bound
	// a metric beyond wire.MaxMetricBound.
	RulesInvalid = refusal(wire.CodeRulesInvalid, "rules invalid", nil)
	// BudgetExhausted: the epsilon budget cannot cover the charge.
	BudgetExhausted = refusal(wire.CodeBudgetExhausted, "budget exhausted", nil)
	// DeltaBudgetExhausted: the delta budget cannot cover the charge. A
	// kind of BudgetExhausted.
	DeltaBudgetExhausted = refusal(wire.CodeDeltaBudgetExhausted, "delta budget exhausted", BudgetExhausted)
	// TooManyQueries: the key has as many questions running as one key
	// may (query.MaxRunningPerKey).
	TooManyQueries = refusal(wire.CodeTooManyQueries, "too many queries", nil)
	// ExposureCapExceeded: the charge would take a partner of the
	// collaboration past its cap on its people's exposure across all its
	// collaborations. A match refused for it is logged too (match.refused).
	ExposureCapExceeded = refusal(wire.CodeExposureCapExceeded, "exposure cap exceeded", nil)
)

// Kinds lists every kind.
var Kinds = []*Kind{
	Invalid, InvalidRules, NotFound, Conflict, StaleMatch, AwaitingUpload, LastAdminKey, ReplaceRequired, KeyMismatch, NotStored,
	Unauthorized, Forbidden, TooLarge, TooManyUploads, UnsupportedMedia, Unavailable, InsufficientStorage,
	Syntax, Unsupported, Limit, EpsilonNotAllowed, NotReleasable, NotAllowed, HiddenColumn,
	NotAQuerier, NoCohort, CohortTooSmall, RulesInvalid, BudgetExhausted, DeltaBudgetExhausted, TooManyQueries, ExposureCapExceeded,
}

// Error is a failure of a kind. Its text is its message alone.
type Error struct {
	Kind *Kind
	// Message says what was wrong and what to do; it never holds a secret
	// or another partner's data.
	Message string
	// Position is, for a query refused for its text, the byte offset in
	// the analyst's SQL; -1 when there is none.
	Position int
	// Err is the cause, when the message was made from one (%w).
	Err error
}

func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	return e.Message
}

// Unwrap gives the kind, so that errors.Is(err, errs.NotFound) holds,
// and the cause.
func (e *Error) Unwrap() []error {
	if e == nil {
		return nil
	}
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// New returns an error of kind k whose message is format's text; a %w in
// format keeps its operand as the cause.
func New(k *Kind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := &Error{Kind: k, Message: err.Error(), Position: -1}
	switch err.(type) {
	case interface{ Unwrap() error }, interface{ Unwrap() []error }:
		e.Err = err
	}
	return e
}

// At returns a copy of e whose position in the query text is pos.
func (e *Error) At(pos int) *Error {
	c := *e
	c.Position = pos
	return &c
}

// KindOf is the most refined kind err holds, nil for none: of the kinds
// found in err's tree, the first that no other found kind refines (a
// conflict that wraps a stale match is a stale match; an awaiting upload
// that wraps a not found is an awaiting upload).
func KindOf(err error) *Kind {
	var found []*Kind
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *Kind:
			if e != nil {
				found = append(found, e)
			}
			return
		case *Error:
			// A nil *Error (a typed nil returned as error) holds nothing;
			// an Error of no kind is its cause's.
			if e == nil {
				return
			}
			if e.Kind != nil {
				found = append(found, e.Kind)
			}
			walk(e.Err)
			return
		}
		if u, ok := err.(interface{ Unwrap() []error }); ok {
			for _, c := range u.Unwrap() {
				walk(c)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	if len(found) == 0 && DiskFull(err) {
		return InsufficientStorage
	}
	for _, k := range found {
		refined := false
		for _, o := range found {
			if o != k && o.refines(k) {
				refined = true
				break
			}
		}
		if !refined {
			return k
		}
	}
	return nil
}

// IsRefusal reports whether err is a refusal of a query (one of the
// kinds logged as query.refused).
func IsRefusal(err error) bool {
	k := KindOf(err)
	return k != nil && k.refusal
}

// PositionOf is the position in the query text of the *Error in err, -1
// for none.
func PositionOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Position
	}
	return -1
}

// Classify is the one mapping from an error to what the caller reads:
// the code of its kind (and with it the status) and its text. An error
// of no kind is internal, and its text is not shown: it may hold what
// the caller must not see.
func Classify(err error) wire.Error {
	k := KindOf(err)
	if k == nil {
		return wire.Error{Code: wire.CodeInternal, Message: "internal error; the operator's log has details"}
	}
	if k == InsufficientStorage && !isKind(err, InsufficientStorage) {
		// The cause's text names files of the server: not the caller's.
		return wire.Error{Code: k.code, Message: DiskFullMessage}
	}
	e := wire.Error{Code: k.code, Message: err.Error()}
	if pos := PositionOf(err); pos >= 0 {
		e.Position = &pos
	}
	return e
}

// DiskFullMessage is what a caller reads of a full disk.
const DiskFullMessage = "the server's disk is full; nothing was changed: retry once its operator has freed space"

// DiskFull reports whether err is the file system's "no space left"
// (ENOSPC or EDQUOT), from Go's os calls or in DuckDB's text (its errors
// are strings: "Could not write file ...: No space left on device").
func DiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	t := err.Error()
	return strings.Contains(t, "No space left on device") || strings.Contains(t, "Disk quota exceeded")
}

// isKind reports whether err holds an *Error or *Kind of k itself (not a
// cause classified as k).
func isKind(err error, k *Kind) bool {
	var e *Error
	if errors.As(err, &e) && e.Kind == k {
		return true
	}
	var kk *Kind
	return errors.As(err, &kk) && kk == k
}
