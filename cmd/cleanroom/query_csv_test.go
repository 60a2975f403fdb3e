package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestQueryCSVComments: query --format csv asks for the answer with its
// comment lines (the collaboration, time and privacy cost before the
// header) and writes the server's bytes; --no-comments asks for the CSV
// alone.
func TestQueryCSVComments(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Query().Get("format")+" comments="+r.URL.Query().Get("comments"))
		w.Header().Set("Content-Type", "text/csv")
		if r.URL.Query().Get("comments") != "false" {
			io.WriteString(w, "# epsilon: 0.09\n")
		}
		io.WriteString(w, "count,count_ci_lower,count_ci_upper\n100,90,110\n")
	}))
	defer srv.Close()
	run := func(args ...string) string {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs(append(args, "--url", srv.URL, "--key", "crk_k_1.secret"))
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if out := run("query", "--collab", "c_1", "--format", "csv", "SELECT COUNT(*) FROM cohort"); !strings.HasPrefix(out, "# epsilon: 0.09\ncount,") {
		t.Errorf("--format csv wrote:\n%s", out)
	}
	if out := run("query", "--collab", "c_1", "--format", "csv", "--no-comments", "SELECT COUNT(*) FROM cohort"); !strings.HasPrefix(out, "count,") {
		t.Errorf("--no-comments wrote:\n%s", out)
	}
	if strings.Join(asked, "; ") != "csv comments=true; csv comments=false" {
		t.Errorf("the server was asked: %q", asked)
	}
}
