package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/api"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

// policy is who may call each operation, and what its path must name
// that the caller takes part in: written out here, not read from the
// route table, so that the test checks the table (and the document made
// from it). "" is public.
var policy = map[string]struct{ allow, scope string }{
	"getHealth":            {"", "none"},
	"getReadiness":         {"", "none"},
	"getMetrics":           {"operator", "none"},
	"takeBackup":           {"operator", "none"},
	"getOpenAPI":           {"", "none"},
	"getAuditPublicKey":    {"", "none"},
	"createPartner":        {"operator", "none"},
	"listPartners":         {"admin operator", "none"},
	"getMe":                {"admin engineer analyst auditor operator", "none"},
	"rejectRulesChange":    {"admin", "collaboration"},
	"listQueries":          {"analyst", "collaboration"},
	"getPrivacyReport":     {"admin auditor operator", "partner"},
	"putReportSettings":    {"admin", "partner"},
	"createKey":            {"admin", "partner"},
	"listKeys":             {"admin", "partner"},
	"revokeKey":            {"admin", "partner"},
	"getExposureCap":       {"admin engineer analyst auditor operator", "partner"},
	"setExposureCap":       {"admin", "partner"},
	"proposeCollaboration": {"admin", "none"},
	"listCollaborations":   {"admin engineer analyst auditor operator", "none"},
	"getCollaboration":     {"admin engineer analyst auditor operator", "collaboration"},
	"changeRules":          {"admin", "collaboration"},
	"approveCollaboration": {"admin", "collaboration"},
	"deleteCollaboration":  {"admin", "collaboration"},
	"uploadAudience":       {"engineer", "collaboration"},
	"listAudiences":        {"admin engineer analyst auditor operator", "collaboration"},
	"deleteAudience":       {"engineer", "collaboration"},
	"startMatch":           {"engineer", "collaboration"},
	"getMatch":             {"admin engineer analyst auditor operator", "collaboration"},
	"getMatchPoints":       {"engineer", "collaboration"},
	"putMatchPoints":       {"engineer", "collaboration"},
	"deleteIdentifiers":    {"engineer", "collaboration"},
	"optOut":               {"engineer", "collaboration"},
	"listReceipts":         {"admin engineer analyst auditor operator", "collaboration"},
	"accessRequest":        {"engineer admin", "collaboration"},
	"getReport":            {"admin engineer analyst auditor operator", "collaboration"},
	"listAccessRequests":   {"engineer admin auditor operator", "collaboration"},
	"runQuery":             {"analyst", "collaboration"},
	"previewQuery":         {"analyst", "collaboration"},
	"getBudget":            {"admin engineer analyst auditor operator", "collaboration"},
	"getSchema":            {"admin engineer analyst auditor operator", "collaboration"},
	"listAuditEntries":     {"auditor admin operator", "none"},
	"getAuditHead":         {"auditor admin operator", "none"},
	"exportAudit":          {"auditor admin operator", "none"},
}

type operation struct {
	id, method, path string
	allow            []string
	scope            string
}

// operations lists the served document's operations, the collaboration's
// deletion last (the real server runs each request for real).
func operations(t *testing.T, h http.Handler) []operation {
	doc, _ := servedSpec(t, h)
	var ops []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			o := operation{id: op.OperationID, method: method, path: path}
			for _, r := range op.Extensions["x-roles"].([]any) {
				o.allow = append(o.allow, r.(string))
			}
			o.scope, _ = op.Extensions["x-scope"].(string)
			want, ok := policy[o.id]
			if !ok {
				t.Errorf("%s %s (%s) has no policy in this test", method, path, o.id)
				continue
			}
			if got, w := sorted(o.allow), sorted(strings.Fields(want.allow)); !slices.Equal(got, w) || o.scope != want.scope {
				t.Errorf("%s: roles %v scope %s, want %v scope %s", o.id, got, o.scope, w, want.scope)
			}
			ops = append(ops, o)
		}
	}
	if len(ops) != len(policy) {
		t.Errorf("%d operations served, %d in the policy", len(ops), len(policy))
	}
	slices.SortFunc(ops, func(a, b operation) int {
		if (a.id == "deleteCollaboration") != (b.id == "deleteCollaboration") {
			if a.id == "deleteCollaboration" {
				return 1
			}
			return -1
		}
		return strings.Compare(a.id, b.id)
	})
	return ops
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestAccessMatrix: every operation × every role (a partner's admin,
// engineer, analyst and auditor, and the operator's admin) × the path
// naming the key's own partner and collaboration or another's, and with
// no key. A route's allowed roles reach its handler; any other role gets
// 403, a partner's key on another partner's or collaboration's path 404
// (before any role check), no key 401. Run twice: against a server whose
// handlers are stubs answering 204 (so what comes back is the access
// check's answer alone), and against the real server (whose answers the
// contract check validates), where an allowed role must get past the
// check: neither 401 nor 403, and 404 only for a made-up match, audience
// or key ID.
func TestAccessMatrix(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	// A collaboration the brand is not part of: the outsider's with the publisher.
	cp, err := e.op.CreatePartner(ctx, "Outsider")
	if err != nil {
		t.Fatal(err)
	}
	outsider := client.New(e.srv.URL, cp.Secret)
	foreign, err := outsider.Propose(ctx, "elsewhere", e.pub.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	stub := httptest.NewServer(api.NewStubbed(e.db).Handler())
	defer stub.Close()

	keys := []struct {
		role string
		c    *client.Client
	}{{"admin", e.brand.admin}, {"engineer", e.brand.eng}, {"analyst", e.brand.analyst}, {"auditor", e.brand.audit}, {"operator", e.op}}
	for _, run := range []struct {
		name string
		url  string
		real bool
	}{{"stubbed handlers", stub.URL, false}, {"real handlers", e.srv.URL, true}} {
		t.Run(run.name, func(t *testing.T) {
			for _, op := range operations(t, e.srv.Config.Handler) {
				public := len(op.allow) == 0
				// The made-up match, audience and key IDs are not found.
				madeUpID := strings.Contains(op.path, "{mid}") || strings.Contains(op.path, "{aid}") || strings.Contains(op.path, "{kid}")
				variants := []string{"own"}
				if op.scope != "none" {
					variants = append(variants, "foreign")
				}
				for _, variant := range variants {
					path := strings.NewReplacer("{cid}", e.collab, "{pid}", e.brand.id,
						"{mid}", "m_aaaaaaaaaaaaaaaa", "{aid}", "a_aaaaaaaaaaaaaaaa", "{kid}", "k_aaaaaaaaaaaaaaaa").Replace(op.path)
					if variant == "foreign" {
						path = strings.NewReplacer(e.collab, foreign.ID, e.brand.id, e.pub.id).Replace(path)
					}
					// No key.
					st, code := call(t, run.url, op.method, path, "")
					if !public && (st != http.StatusUnauthorized || code != wire.CodeUnauthorized) {
						t.Errorf("%s %s %s without a key: %d %s, want 401", op.id, variant, path, st, code)
					}
					for _, k := range keys {
						st, code := call(t, run.url, op.method, path, k.c.Key)
						allowed := public || slices.Contains(op.allow, k.role)
						var want int
						switch {
						case public:
						case k.role == "operator" && !allowed:
							want = http.StatusForbidden
						case k.role != "operator" && variant == "foreign":
							want = http.StatusNotFound
						case !allowed:
							want = http.StatusForbidden
						}
						name := op.id + " " + variant + " as " + k.role
						switch {
						case want != 0 && st != want:
							t.Errorf("%s: %d %s, want %d", name, st, code, want)
						case want == http.StatusForbidden && code != wire.CodeForbidden,
							want == http.StatusNotFound && code != wire.CodeNotFound:
							t.Errorf("%s: code %s", name, code)
						case want == 0 && !run.real && st != http.StatusNoContent:
							t.Errorf("%s: %d %s, want the handler (204)", name, st, code)
						case want == 0 && run.real && (st == http.StatusUnauthorized || st == http.StatusForbidden ||
							st == http.StatusNotFound && !madeUpID):
							t.Errorf("%s: %d %s: refused, but the role may call it", name, st, code)
						}
					}
				}
			}
		})
	}
}

// call makes one request without a body and returns the status and the
// error code of the answer, if it is an error.
func call(t *testing.T, base, method, path, key string) (int, wire.ErrorCode) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body wire.ErrorBody
	if resp.StatusCode >= 400 {
		json.Unmarshal(b, &body)
	}
	return resp.StatusCode, body.Error.Code
}

// TestOnlyAPartnersOwnAdminManagesItsKeys: the operator's admin creates a
// partner with its first admin key, and nothing else among keys: it may
// not create, list or revoke a partner's keys (403), not even its own
// partner's; the partner's admin does all three, for its own partner only.
func TestOnlyAPartnersOwnAdminManagesItsKeys(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	cp, err := e.op.CreatePartner(ctx, "Third")
	if err != nil {
		t.Fatal(err)
	}
	third := client.New(e.srv.URL, cp.Secret)
	forbidden := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, client.ErrForbidden) {
			t.Errorf("operator %s: %v, want 403 forbidden", what, err)
		}
	}
	_, err = e.op.CreateKey(ctx, cp.Partner.ID, "admin", "")
	forbidden("creates a key for a partner", err)
	_, err = e.op.ListKeys(ctx, cp.Partner.ID)
	forbidden("lists a partner's keys", err)
	_, err = e.op.RevokeKey(ctx, cp.Partner.ID, cp.AdminKey.ID)
	forbidden("revokes a partner's first admin key", err)
	_, err = e.op.CreateKey(ctx, "operator", "auditor", "")
	forbidden("creates a key for itself", err)
	if _, err := third.Collaborations(ctx); err != nil {
		t.Fatalf("the partner's admin key stopped working: %v", err)
	}

	k, err := third.CreateKey(ctx, cp.Partner.ID, "engineer", "etl")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := third.ListKeys(ctx, cp.Partner.ID)
	if err != nil || len(keys) != 2 {
		t.Fatalf("the partner's admin lists %d keys (%v), want its first admin key and the engineer's", len(keys), err)
	}
	if _, err := third.RevokeKey(ctx, cp.Partner.ID, k.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := third.CreateKey(ctx, e.brand.id, "admin", ""); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("a partner's admin creates a key for another partner: %v, want 404", err)
	}
	if _, err := e.brand.eng.ListKeys(ctx, e.brand.id); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("an engineer lists its partner's keys: %v, want 403", err)
	}
}

// TestStartMatchAnswers201OnlyWhenItStartsOne: starting a match answers
// 201 with a new match, and 200 when it joins the one running.
func TestStartMatchAnswers201OnlyWhenItStartsOne(t *testing.T) {
	e := newEnv(t, testRules)
	e.uploadBoth()
	path := "/v1/collaborations/" + e.collab + "/matches"
	var ids []string
	for i, c := range []struct {
		key  string
		want int
	}{{e.brand.eng.Key, http.StatusCreated}, {e.pub.eng.Key, http.StatusOK}, {e.brand.eng.Key, http.StatusOK}} {
		st, body := e.post(c.key, path, nil, "POST")
		var m wire.Match
		json.Unmarshal(body, &m)
		if st != c.want || m.ID == "" {
			t.Errorf("start %d: %d %s, want %d", i+1, st, body, c.want)
		}
		ids = append(ids, m.ID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("joins made new matches: %v", ids)
	}
}

// TestErrorsHaveOneShape: a refused query's position sits inside the
// error object; bodies over a route's limit are 413, JSON ones too; the
// router's own refusals are in the same shape; messages name no kind.
// (The contract check holds every error of every test to the shape.)
func TestErrorsHaveOneShape(t *testing.T) {
	e := newEnv(t, testRules)
	ctx := context.Background()
	req := func(key, method, path, contentType string, body []byte) (int, map[string]json.RawMessage, wire.Error) {
		t.Helper()
		r, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+key)
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var top map[string]json.RawMessage
		var b wire.ErrorBody
		json.Unmarshal(raw, &top)
		json.Unmarshal(raw, &b)
		return resp.StatusCode, top, b.Error
	}
	cp := "/v1/collaborations/" + e.collab

	// A syntax error: its position inside the error, nothing beside it.
	st, top, er := req(e.brand.analyst.Key, "POST", cp+"/queries", "application/json", []byte(`{"sql": "SELECT COUNT(*) FROM cohort WHERE", "epsilon": 0.1}`))
	if st != http.StatusBadRequest || er.Code != wire.CodeSyntax || er.Position == nil || *er.Position < 0 || len(top) != 1 {
		t.Errorf("syntax error: %d %+v (position %v), top-level keys %d", st, er, er.Position, len(top))
	}
	// The Go client reads it.
	err := e.brand.analyst.Query(ctx, e.collab, "SELECT COUNT(*) FROM cohort WHERE", 0.1, "json", &wire.Answer{})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != wire.CodeSyntax || ce.Position < 0 || ce.Status != http.StatusBadRequest {
		t.Errorf("the client reads %#v", err)
	}

	// Oversize bodies: 413, whatever reads them.
	big := bytes.Repeat([]byte(" "), 2<<20)
	for _, c := range []struct {
		key, method, path string
		body              []byte
	}{
		{e.brand.admin.Key, "POST", "/v1/collaborations", append([]byte(`{"name": "x",`), append(big, `"partner": "p"}`...)...)},
		{e.brand.admin.Key, "PUT", cp + "/rules", append(big, `{}`...)},
		{e.op.Key, "POST", "/v1/partners", append(big, `{"name": "x"}`...)},
		{e.brand.analyst.Key, "POST", cp + "/queries", append(big, `{"sql": "SELECT COUNT(*) FROM cohort"}`...)},
		{e.brand.eng.Key, "POST", cp + "/deletions", append(bytes.Repeat([]byte(" "), 17<<20), `{"pids": []}`...)},
	} {
		if st, _, er := req(c.key, c.method, c.path, "application/json", c.body); st != http.StatusRequestEntityTooLarge || er.Code != wire.CodeTooLarge {
			t.Errorf("%s %s with %d bytes: %d %+v, want 413 too_large", c.method, c.path, len(c.body), st, er)
		}
	}

	// Unknown fields, the router's 404 and 405: the same shape.
	st, _, er = req(e.brand.admin.Key, "POST", "/v1/collaborations", "application/json", []byte(`{"name": "x", "partner": "p", "color": "red"}`))
	if st != http.StatusBadRequest || er.Code != wire.CodeInvalid || !strings.Contains(er.Message, `"color"`) || strings.HasPrefix(er.Message, "invalid") {
		t.Errorf("unknown field: %d %+v", st, er)
	}
	if st, _, er := req(e.brand.admin.Key, "GET", "/v1/nothing", "", nil); st != http.StatusNotFound || er.Code != wire.CodeNotFound {
		t.Errorf("no such route: %d %+v", st, er)
	}
	if st, _, er := req(e.brand.admin.Key, "PATCH", "/v1/collaborations", "", nil); st != http.StatusMethodNotAllowed || er.Code != wire.CodeMethodNotAllowed {
		t.Errorf("wrong method: %d %+v", st, er)
	}
	// A bad upload's message says what is wrong once.
	_, err = e.brand.eng.Upload(ctx, e.collab, strings.NewReader("email\nalice@example.com\n"))
	if !errors.As(err, &ce) || ce.Code != wire.CodeInvalid || strings.HasPrefix(ce.Message, "invalid") {
		t.Errorf("bad upload: %#v", err)
	}
}
