package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cleanroom/cleanroom/internal/cohort"
	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

// served returns the document the server serves, raw and loaded.
func served(t *testing.T) (*Server, *openapi3.T, []byte) {
	t.Helper()
	s := newServer(nil, Config{}, nil, nil) // the document needs no database
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	raw := rec.Body.Bytes()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("loading the served document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served document is not valid OpenAPI: %v", err)
	}
	return s, doc, raw
}

// TestOpenAPIDocumentDescribesEveryOperation: the document is OpenAPI
// 3.1 with a server and a bearer scheme; every operation has an
// operationId (unique), a summary, a tag, its roles and scope, explicit
// security (none on public routes), a 2xx and a 4xx answer, a request
// body for every POST and PUT that reads one, and error answers whose
// codes are the wire's.
func TestOpenAPIDocumentDescribesEveryOperation(t *testing.T) {
	_, doc, _ := served(t)
	if doc.OpenAPI != "3.1.0" || len(doc.Servers) == 0 || doc.Components.SecuritySchemes["bearer"] == nil {
		t.Fatalf("openapi %q, servers %v, security schemes %v", doc.OpenAPI, doc.Servers, doc.Components.SecuritySchemes)
	}
	if doc.Components.Schemas["ErrorBody"] == nil || doc.Components.Schemas["Error"] == nil {
		t.Fatal("no error schema in components")
	}
	ids := map[string]string{}
	public := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || ids[op.OperationID] != "" {
				t.Errorf("%s: operationId %q missing or also %s's", name, op.OperationID, ids[op.OperationID])
			}
			ids[op.OperationID] = name
			if op.Summary == "" || len(op.Tags) != 1 || op.Description == "" {
				t.Errorf("%s: summary %q, tags %v, description %q", name, op.Summary, op.Tags, op.Description)
			}
			roles, _ := op.Extensions["x-roles"].([]any)
			scope, _ := op.Extensions["x-scope"].(string)
			if op.Extensions["x-roles"] == nil || scope == "" {
				t.Errorf("%s: x-roles %v, x-scope %q", name, op.Extensions["x-roles"], scope)
			}
			if op.Security == nil {
				t.Errorf("%s: no security of its own", name)
			} else if len(roles) == 0 {
				public++
				if len(*op.Security) != 0 {
					t.Errorf("%s is public but its security is %v", name, *op.Security)
				}
			} else if len(*op.Security) != 1 || (*op.Security)[0]["bearer"] == nil {
				t.Errorf("%s needs a key but its security is %v", name, *op.Security)
			}
			var ok2, ok4 bool
			for code, resp := range op.Responses.Map() {
				ok2 = ok2 || code[0] == '2'
				ok4 = ok4 || code[0] == '4'
				if code[0] < '4' {
					continue
				}
				if op.OperationID == "getReadiness" {
					continue // its 503 is a Health, as its 200
				}
				if s := resp.Value.Content.Get("application/json"); s != nil {
					enum := s.Schema.Value.Properties["error"].Value.Properties["code"].Value.Enum
					if len(enum) == 0 {
						t.Errorf("%s: %s answer lists no codes", name, code)
					}
					for _, c := range enum {
						if !slices.Contains(wire.ErrorCodes, wire.ErrorCode(c.(string))) || fmt.Sprint(wire.ErrorCode(c.(string)).Status()) != code {
							t.Errorf("%s: %s answer lists code %v (status %d)", name, code, c, wire.ErrorCode(c.(string)).Status())
						}
					}
				}
			}
			if !ok2 || !ok4 {
				t.Errorf("%s: a 2xx answer %v, a 4xx answer %v", name, ok2, ok4)
			}
			// startMatch and takeBackup act on what is there: their options are query parameters.
			if (method == "POST" || method == "PUT") && op.RequestBody == nil && op.OperationID != "startMatch" && op.OperationID != "takeBackup" {
				t.Errorf("%s reads no request body", name)
			}
		}
	}
	if doc.Paths.Find("/openapi.json") == nil || public != 4 {
		t.Errorf("/openapi.json documented: %v; %d public operations, want 4", doc.Paths.Find("/openapi.json") != nil, public)
	}
}

// TestOpenAPIListsExactlyTheServedRoutes: every route echo serves is an
// operation of the document, and every operation a route echo serves;
// the console's static pages (and the redirects to them) are not API.
func TestOpenAPIListsExactlyTheServedRoutes(t *testing.T) {
	s, doc, _ := served(t)
	inDoc := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc[method+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range s.e.Routes() {
		if consoleRoute(r.Path) {
			continue
		}
		served[r.Method+" "+oasPath(r.Path)] = true
	}
	for k := range served {
		if !inDoc[k] {
			t.Errorf("%s is served but not in the document", k)
		}
	}
	for k := range inDoc {
		if !served[k] {
			t.Errorf("%s is in the document but not served", k)
		}
	}
	if len(served) != len(s.table) {
		t.Errorf("%d routes served, %d in the table", len(served), len(s.table))
	}
}

// TestOpenAPILint runs Redocly's linter (its recommended rules) on the
// served document and wants no error and no warning. make lint installs
// @redocly/cli under .cache/ and passes CLEANROOM_REDOCLY.
func TestOpenAPILint(t *testing.T) {
	dir := os.Getenv("CLEANROOM_REDOCLY")
	if dir == "" {
		t.Skip("CLEANROOM_REDOCLY not set: skipping the Redocly lint of the OpenAPI document (make lint installs @redocly/cli with npm and runs it)")
	}
	_, _, raw := served(t)
	spec := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(spec, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", "redocly"), "lint", "--config", filepath.Join("testdata", "redocly.yaml"), "--format", "json", spec)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var report struct {
		Totals   struct{ Errors, Warnings, Ignored int }
		Version  string
		Problems []struct {
			RuleID, Severity, Message string
			Location                  []struct{ Pointer string }
		}
	}
	if jerr := json.Unmarshal(out, &report); jerr != nil {
		t.Fatalf("redocly lint: %v (%v)\n%s\n%s", err, jerr, out, stderr.Bytes())
	}
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		t.Errorf("redocly %s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
	}
	t.Logf("redocly %s: %d errors, %d warnings, %d ignored", report.Version, report.Totals.Errors, report.Totals.Warnings, report.Totals.Ignored)
	if err != nil || report.Totals.Errors+report.Totals.Warnings+report.Totals.Ignored != 0 {
		t.Errorf("redocly lint: %v; want no error, warning or ignored problem", err)
	}
}

// TestErrorsMapOnce: each kind of error, and each refusal of a query, has
// one code and so one status; messages never repeat the kind; oversize
// bodies are 413 however they are read.
func TestErrorsMapOnce(t *testing.T) {
	for _, c := range []struct {
		err     error
		code    wire.ErrorCode
		status  int
		message string
	}{
		{errs.New(errs.Invalid, "%w", errs.New(errs.Invalid, "row 601")), wire.CodeInvalid, http.StatusBadRequest, "row 601"},
		{errs.New(errs.InvalidRules, "rules: epsilon_budget: must be positive"), wire.CodeInvalidRules, http.StatusBadRequest, "rules: epsilon_budget: must be positive"},
		{errs.New(errs.NotFound, "collaboration c_1"), wire.CodeNotFound, http.StatusNotFound, "collaboration c_1"},
		{errs.New(errs.Conflict, "%w", errs.New(errs.StaleMatch, "match m_1 is stale")), wire.CodeStaleMatch, http.StatusConflict, "match m_1 is stale"},
		{errs.New(errs.Conflict, "%w", errs.New(errs.AwaitingUpload, "awaiting upload; %w", errs.New(errs.NotFound, "partner p has no audience"))), wire.CodeAwaitingUpload, http.StatusConflict,
			errs.AwaitingUpload.Error() + "; partner p has no audience"},
		{errs.New(errs.Forbidden, "this needs a key with role analyst"), wire.CodeForbidden, http.StatusForbidden, "this needs a key with role analyst"},
		{errs.New(errs.Invalid, "request body: %w", &http.MaxBytesError{Limit: 10}), wire.CodeTooLarge, http.StatusRequestEntityTooLarge, "the body is over the 10 bytes this route reads"},
		{fmt.Errorf("%w: reading the body", cohort.ErrTooLarge), wire.CodeTooLarge, http.StatusRequestEntityTooLarge, ""},
		{errs.New(errs.Unavailable, "no signing key"), wire.CodeUnavailable, http.StatusServiceUnavailable, "no signing key"},
		{errs.Unauthorized, wire.CodeUnauthorized, http.StatusUnauthorized, ""},
		{errors.New("disk on fire"), wire.CodeInternal, http.StatusInternalServerError, "internal error; the operator's log has details"},
		{errs.New(errs.Syntax, "syntax error at position 7").At(7), wire.CodeSyntax, http.StatusBadRequest, "syntax error at position 7"},
	} {
		e := classify(c.err)
		if e.Code != c.code || e.Code.Status() != c.status || (c.message != "" && e.Message != c.message) {
			t.Errorf("%v: %s %d %q, want %s %d %q", c.err, e.Code, e.Code.Status(), e.Message, c.code, c.status, c.message)
		}
		for _, k := range errs.Kinds {
			if strings.HasPrefix(e.Message, k.Error()+":") {
				t.Errorf("%v: message %q repeats the kind", c.err, e.Message)
			}
		}
	}
	for _, k := range errs.Kinds {
		if e := classify(errs.New(k, "x")); e.Code == wire.CodeInternal {
			t.Errorf("the kind %q has no code", k)
		}
	}
	if e := classify(errs.New(errs.Syntax, "x").At(7)); e.Position == nil || *e.Position != 7 {
		t.Errorf("a syntax refusal's position: %v", e.Position)
	}
	if e := classify(errs.New(errs.NotAllowed, "x")); e.Position != nil {
		t.Errorf("a refusal without a position has one: %v", *e.Position)
	}
	// Every refusal kind is a wire code with a 4xx status.
	for _, k := range errs.Kinds {
		if !errs.IsRefusal(k) {
			continue
		}
		if c := k.Code(); !slices.Contains(wire.ErrorCodes, c) || c.Status() >= 500 {
			t.Errorf("query refusal %q is not a wire code with a 4xx status", c)
		}
	}
}
