package errs

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

func TestKindsWrapAndRefine(t *testing.T) {
	err := New(InvalidRules, "rules: epsilon_budget: must be positive")
	if !errors.Is(err, InvalidRules) || !errors.Is(err, Invalid) || errors.Is(err, NotFound) {
		t.Errorf("InvalidRules is not found as itself and as Invalid: %v", err)
	}
	if errors.Is(New(Invalid, "x"), InvalidRules) {
		t.Error("Invalid is taken for its refinement")
	}
}

// TestMessageNamesNoKind: an error's text is its message, with the
// context callers wrapped around it, and never a kind's name.
func TestMessageNamesNoKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{New(Invalid, "%w", New(Invalid, "row 601")), "row 601"},
		{New(Invalid, "%v", New(Invalid, "row 601")), "row 601"},
		{New(Conflict, "%w", New(StaleMatch, "match m_1 is stale")), "match m_1 is stale"},
		{New(Conflict, "both parties must upload; %w", New(NotFound, "partner p has none")), "both parties must upload; partner p has none"},
		{fmt.Errorf("reading the body: %w", New(Invalid, "row 3")), "reading the body: row 3"},
		{New(InvalidRules, "rules: delta: too large"), "rules: delta: too large"},
		{Unauthorized, "unauthorized"},
		{errors.New("an invalid: thing"), "an invalid: thing"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

// TestEveryKindMapsOnce: each kind answers with its one code and that
// code's one status, however it is wrapped.
func TestEveryKindMapsOnce(t *testing.T) {
	want := map[*Kind]struct {
		code   wire.ErrorCode
		status int
	}{
		Invalid:              {wire.CodeInvalid, http.StatusBadRequest},
		InvalidRules:         {wire.CodeInvalidRules, http.StatusBadRequest},
		NotFound:             {wire.CodeNotFound, http.StatusNotFound},
		Conflict:             {wire.CodeConflict, http.StatusConflict},
		StaleMatch:           {wire.CodeStaleMatch, http.StatusConflict},
		AwaitingUpload:       {wire.CodeAwaitingUpload, http.StatusConflict},
		LastAdminKey:         {wire.CodeLastAdminKey, http.StatusConflict},
		ReplaceRequired:      {wire.CodeReplaceRequired, http.StatusConflict},
		KeyMismatch:          {wire.CodeKeyMismatch, http.StatusConflict},
		NotStored:            {wire.CodeNotStored, http.StatusConflict},
		TooManyUploads:       {wire.CodeTooManyUploads, http.StatusTooManyRequests},
		Unauthorized:         {wire.CodeUnauthorized, http.StatusUnauthorized},
		Forbidden:            {wire.CodeForbidden, http.StatusForbidden},
		TooLarge:             {wire.CodeTooLarge, http.StatusRequestEntityTooLarge},
		UnsupportedMedia:     {wire.CodeUnsupportedMediaType, http.StatusUnsupportedMediaType},
		Unavailable:          {wire.CodeUnavailable, http.StatusServiceUnavailable},
		InsufficientStorage:  {wire.CodeInsufficientStorage, http.StatusInsufficientStorage},
		Syntax:               {wire.CodeSyntax, http.StatusBadRequest},
		Unsupported:          {wire.CodeUnsupported, http.StatusBadRequest},
		Limit:                {wire.CodeLimit, http.StatusBadRequest},
		EpsilonNotAllowed:    {wire.CodeEpsilonNotAllowed, http.StatusBadRequest},
		NotReleasable:        {wire.CodeNotReleasable, http.StatusBadRequest},
		NotAllowed:           {wire.CodeNotAllowed, http.StatusForbidden},
		HiddenColumn:         {wire.CodeHiddenColumn, http.StatusForbidden},
		NotAQuerier:          {wire.CodeNotAQuerier, http.StatusForbidden},
		NoCohort:             {wire.CodeNoCohort, http.StatusConflict},
		CohortTooSmall:       {wire.CodeCohortTooSmall, http.StatusConflict},
		RulesInvalid:         {wire.CodeRulesInvalid, http.StatusConflict},
		BudgetExhausted:      {wire.CodeBudgetExhausted, http.StatusTooManyRequests},
		DeltaBudgetExhausted: {wire.CodeDeltaBudgetExhausted, http.StatusTooManyRequests},
		TooManyQueries:       {wire.CodeTooManyQueries, http.StatusTooManyRequests},
		ExposureCapExceeded:  {wire.CodeExposureCapExceeded, http.StatusTooManyRequests},
	}
	if len(want) != len(Kinds) {
		t.Fatalf("%d kinds, %d in this table: add the new kind here", len(Kinds), len(want))
	}
	codes := map[wire.ErrorCode]*Kind{}
	for _, k := range Kinds {
		w, ok := want[k]
		if !ok {
			t.Errorf("kind %q is not in the table", k)
			continue
		}
		if other, dup := codes[k.Code()]; dup {
			t.Errorf("kinds %q and %q share the code %s", k, other, k.Code())
		}
		codes[k.Code()] = k
		for _, err := range []error{k, New(k, "what was wrong"), fmt.Errorf("context: %w", New(k, "what was wrong"))} {
			e := Classify(err)
			if e.Code != w.code || e.Code.Status() != w.status {
				t.Errorf("%q: %s %d, want %s %d", err, e.Code, e.Code.Status(), w.code, w.status)
			}
		}
		if got := Classify(New(k, "what was wrong")).Message; got != "what was wrong" {
			t.Errorf("kind %q: message %q", k, got)
		}
	}
	// Every wire code but the router's and the internal one has a kind.
	for _, c := range wire.ErrorCodes {
		if _, ok := codes[c]; !ok && c != wire.CodeInternal && c != wire.CodeMethodNotAllowed {
			t.Errorf("wire code %s has no kind", c)
		}
	}
}

// TestNoKindIsInternal: an error of no kind is a 500 whose text is not
// shown.
func TestNoKindIsInternal(t *testing.T) {
	e := Classify(fmt.Errorf("querying: %w", errors.New("connection to /var/db refused")))
	if e.Code != wire.CodeInternal || e.Code.Status() != http.StatusInternalServerError || e.Message != "internal error; the operator's log has details" {
		t.Errorf("%+v", e)
	}
}

// TestMostRefinedKind: of the kinds an error holds, the most refined
// answers; unrelated ones answer outermost first.
func TestMostRefinedKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want *Kind
	}{
		{New(Conflict, "%w", New(StaleMatch, "m")), StaleMatch},
		{New(AwaitingUpload, "upload first; %w", New(NotFound, "no audience")), AwaitingUpload},
		{fmt.Errorf("debit: %w", fmt.Errorf("%w", DeltaBudgetExhausted)), DeltaBudgetExhausted},
		{errors.New("plain"), nil},
	} {
		if got := KindOf(c.err); got != c.want {
			t.Errorf("%q: %v, want %v", c.err, got, c.want)
		}
	}
	if p := PositionOf(fmt.Errorf("ctx: %w", New(Syntax, "x").At(3))); p != 3 {
		t.Errorf("position %d through a wrap", p)
	}
}

// TestNilsHoldNoKind: a typed nil *Error inside an error, or an Error of
// no kind, neither panics nor hides a kind below it.
func TestNilsHoldNoKind(t *testing.T) {
	var nilErr *Error
	if k := KindOf(fmt.Errorf("x: %w", nilErr)); k != nil {
		t.Errorf("a nil *Error has kind %v", k)
	}
	noKind := &Error{Message: "m", Err: New(NotFound, "collaboration c_1")}
	if k := KindOf(noKind); k != NotFound {
		t.Errorf("an Error of no kind over a not found: %v", k)
	}
	if !errors.Is(noKind, NotFound) || errors.Is(noKind, Invalid) {
		t.Error("errors.Is through an Error of no kind")
	}
	if errors.Is(fmt.Errorf("x: %w", nilErr), NotFound) {
		t.Error("a nil *Error is a not found")
	}
	if e := Classify(fmt.Errorf("x: %w", nilErr)); e.Code != wire.CodeInternal {
		t.Errorf("a nil *Error classified %s", e.Code)
	}
}

// TestDiskFullIsInsufficientStorage: a full disk, from Go's os calls or in
// DuckDB's text, is a 507 whose message names no file of the server.
func TestDiskFullIsInsufficientStorage(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("spooling: %w", &os.PathError{Op: "write", Path: "/data/spool-1", Err: syscall.ENOSPC}),
		errors.New(`TransactionContext Error: Failed to commit: Could not write file "/data/cleanroom.duckdb.wal": No space left on device`),
	} {
		e := Classify(err)
		if e.Code != wire.CodeInsufficientStorage || e.Code.Status() != http.StatusInsufficientStorage {
			t.Errorf("%v: code %s, want insufficient_storage (507)", err, e.Code)
		}
		if strings.Contains(e.Message, "/data") {
			t.Errorf("the message %q names a file of the server", e.Message)
		}
	}
	// A kind of its own wins over the text of its cause.
	if e := Classify(New(Conflict, "busy: %w", errors.New("No space left on device"))); e.Code != wire.CodeConflict {
		t.Errorf("a conflict wrapping a full disk is %s", e.Code)
	}
}
