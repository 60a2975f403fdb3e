package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cleanroom/cleanroom/wire"
)

// TestRulesErrorsSayWhereInTheBody: rules that do not decode, sent in a
// proposal's body, are placed at their line and column in that body (as
// the person who wrote it reads it), never at a byte offset, and nothing
// is stored.
func TestRulesErrorsSayWhereInTheBody(t *testing.T) {
	e := newEnv(t, testRules)
	post := func(body string) (int, wire.Error) {
		t.Helper()
		r, _ := http.NewRequest("POST", e.srv.URL+"/v1/collaborations", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+e.brand.admin.Key)
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb wire.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb.Error
	}
	for _, c := range []struct{ body, code, want string }{
		{"{\"name\": \"x\", \"partner\": \"" + e.pub.id + "\",\n \"rules\": {\n   \"purpose\": \"measurement\",\n   \"min_cohort_users\": \"many\"}}",
			"invalid_rules", `rules: request body: line 4, column 24: min_cohort_users: a string where a whole number is expected`},
		{"{\"name\": \"x\", \"partner\": \"" + e.pub.id + "\",\n \"rules\": {\"dimensons\": []}}",
			"invalid_rules", `rules: request body: line 2, column 12: unknown field "dimensons"`},
		{"{\"name\": \"x\",\n \"partner\": \"" + e.pub.id + "\",\n \"rules\": {}\n,}",
			"invalid", `request body: line 4, column 2: invalid character '}'`},
		{"{\"name\": \"x\",\n \"colour\": 1}", "invalid", `request body: line 2, column 2: unknown field "colour"`},
	} {
		st, er := post(c.body)
		if st != http.StatusBadRequest || string(er.Code) != c.code || !strings.HasPrefix(er.Message, c.want) || strings.Contains(er.Message, "byte") {
			t.Errorf("%s:\n%d %s %q, want 400 %s %q", c.body, st, er.Code, er.Message, c.code, c.want)
		}
	}
	cs, err := e.brand.admin.Collaborations(t.Context())
	if err != nil || len(cs) != 1 {
		t.Errorf("refused proposals stored: %d collaborations, %v", len(cs), err)
	}

}
