package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/cleanroom/cleanroom/internal/errs"
	"github.com/cleanroom/cleanroom/wire"
)

// The contract check: every end-to-end test's server is wrapped in
// contract (env.start), so every response any test receives is checked
// against the OpenAPI document the server itself serves: its status must
// be one the operation lists, its media type one that status lists, and a
// JSON body must match the schema. Arrow, CSV, NDJSON and text bodies are
// checked by status and media type only. A request the server accepted
// (2xx) must match the document too, body included when it is JSON.

// servedSpec reads GET /openapi.json from h and loads it.
func servedSpec(t testing.TB, h http.Handler) (*openapi3.T, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", rec.Code, rec.Body)
	}
	raw := rec.Body.Bytes()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("loading the served document: %v", err)
	}
	return doc, raw
}

// contract wraps h in the check.
func contract(t *testing.T, h http.Handler) http.Handler {
	doc, _ := servedSpec(t, h)
	// The document names its server "/": match paths as they are.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("the served document does not validate: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/" || p == "/console" || strings.HasPrefix(p, "/console/") {
			h.ServeHTTP(w, r) // the console's static pages are no API
			return
		}
		route, params, err := router.FindRoute(r)
		if err != nil {
			// Not an operation of the document (a made-up path, a wrong
			// method): answered as an error, checked by shape below.
			route = nil
		}
		var reqBody []byte
		if isJSON(r.Header.Get("Content-Type")) && r.Body != nil {
			reqBody, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		tw := &teeWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(tw, r)
		if r.Context().Err() != nil {
			return // the client went away (a browser tab closed): nothing was answered
		}
		if tw.status >= 400 && isJSON(tw.Header().Get("Content-Type")) && !tw.overflow {
			if err := checkErrorBody(tw.body.Bytes()); err != nil {
				t.Errorf("contract: %s %s -> %d: %v", r.Method, r.URL.Path, tw.status, err)
			}
		}
		if route == nil {
			if tw.status < 400 || !isJSON(tw.Header().Get("Content-Type")) {
				t.Errorf("contract: %s %s is no operation of the document, yet answered %d %s", r.Method, r.URL.Path, tw.status, tw.Header().Get("Content-Type"))
			}
			return
		}
		if err := checkExchange(r, reqBody, route, params, tw); err != nil {
			t.Errorf("contract: %s %s -> %d: %v\nbody: %.600s", r.Method, r.URL.Path, tw.status, err, tw.body.Bytes())
		}
	})
}

// checkErrorBody holds an error answer to the one shape: the object
// "error" and nothing beside it, a message that does not start with the
// code or the name of an error kind.
func checkErrorBody(body []byte) error {
	var top map[string]json.RawMessage
	var e wire.ErrorBody
	if json.Unmarshal(body, &top) != nil || len(top) != 1 || top["error"] == nil || json.Unmarshal(body, &e) != nil {
		return contractError("an error body other than {\"error\": {...}}")
	}
	names := []string{string(e.Error.Code)}
	for _, k := range errs.Kinds {
		names = append(names, k.Error())
	}
	for _, n := range names {
		if strings.HasPrefix(e.Error.Message, n+":") {
			return contractError("the message repeats the kind: " + e.Error.Message)
		}
	}
	return nil
}

func isJSON(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json"
}

func checkExchange(r *http.Request, reqBody []byte, route *routers.Route, params map[string]string, tw *teeWriter) error {
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{Request: r.Clone(ctx), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if tw.status < 300 {
		in.Options.ExcludeRequestBody = reqBody == nil
		if reqBody != nil {
			in.Request.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return err
		}
	}
	ct := tw.Header().Get("Content-Type")
	resp := route.Operation.Responses.Status(tw.status)
	if resp == nil || resp.Value == nil {
		return errStatus
	}
	if len(resp.Value.Content) > 0 && resp.Value.Content.Get(ct) == nil {
		return errMediaType(ct)
	}
	if tw.overflow {
		return nil
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: tw.status, Header: tw.Header(),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: !isJSON(ct)}}
	out.SetBodyBytes(tw.body.Bytes())
	return openapi3filter.ValidateResponse(ctx, out)
}

type contractError string

func (e contractError) Error() string { return string(e) }

const errStatus = contractError("the operation does not list this status")

func errMediaType(ct string) error {
	return contractError("the operation does not list the media type " + ct + " for this status")
}

// teeWriter passes a response through, as it streams, and keeps a copy.
type teeWriter struct {
	http.ResponseWriter
	mu       sync.Mutex
	status   int
	wrote    bool
	body     bytes.Buffer
	overflow bool
}

const maxKept = 64 << 20

func (w *teeWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.wrote = true
	if w.body.Len()+len(b) > maxKept {
		w.overflow = true
	} else {
		w.body.Write(b)
	}
	w.mu.Unlock()
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
