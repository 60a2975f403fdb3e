package console_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom/cleanroom/internal/console"
	"github.com/cleanroom/cleanroom/wire"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	h := console.Handler()
	for _, c := range []struct {
		method, path string
		status       int
		ctype        string // prefix; "" for no check
		body         string // a substring of the body
	}{
		{"GET", "/console/", 200, "text/html", `<script src="/console/js/app.js" defer></script>`},
		{"GET", "/console/collab/c_1/workbench", 200, "text/html", `id="app"`},
		{"GET", "/console/audit", 200, "text/html", `id="app"`},
		{"HEAD", "/console/", 200, "text/html", ""},
		{"GET", "/console/app.css", 200, "text/css", "@media print"},
		{"GET", "/console/js/app.js", 200, "text/javascript", "CR.route"},
		{"GET", "/console/js/verify.js", 200, "text/javascript", "CR.verifyExport"},
		{"GET", "/console/vendor/echarts-6.0.0/echarts.min.js", 200, "text/javascript", "Apache"},
		{"GET", "/console/vendor/echarts-6.0.0/LICENSE", 200, "", "Apache License"},
		{"GET", "/console/js/missing.js", 404, "text/plain", "no such file"},
		{"GET", "/console/rules-defaults.json", 200, "application/json", `"min_upload_users":1000`},
		{"GET", "/console/js/../../../go.mod", 404, "", ""},
		{"GET", "/console/../../etc/passwd", 200, "text/html", `id="app"`}, // only ever the console's own files
		{"POST", "/console/", 405, "", "GET"},
		{"DELETE", "/console/app.css", 405, "", ""},
	} {
		w := get(t, h, c.method, c.path)
		if w.Code != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, w.Code, c.status)
		}
		// Every answer carries the policy, errors included.
		if got := w.Header().Get("Content-Security-Policy"); got != console.CSP {
			t.Errorf("%s %s: Content-Security-Policy %q", c.method, c.path, got)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s %s: headers %v", c.method, c.path, w.Header())
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %s", c.method, c.path, ct, c.ctype)
		}
		if !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("%s %s: the body does not hold %q", c.method, c.path, c.body)
		}
		if w.Header().Get("Set-Cookie") != "" {
			t.Errorf("%s %s: sets a cookie", c.method, c.path)
		}
	}
	if !strings.Contains(console.CSP, "script-src 'self';") || strings.Contains(console.CSP, "unsafe") {
		t.Errorf("the CSP allows inline code: %s", console.CSP)
	}
}

// TestRulesDefaults: the rules form starts from the server's own
// defaults, every field of them.
func TestRulesDefaults(t *testing.T) {
	w := get(t, console.Handler(), "GET", "/console/"+console.RulesDefaults)
	got, err := wire.ParseRules(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(wire.DefaultRules())
	if g, _ := json.Marshal(got); !bytes.Equal(g, want) || !bytes.Equal(w.Body.Bytes(), want) {
		t.Errorf("served defaults %s, want %s", w.Body.Bytes(), want)
	}
}

// TestHandlerRevalidates: a browser that has an asset asks again with its
// ETag and gets 304, without the body; a changed asset would not match.
func TestHandlerRevalidates(t *testing.T) {
	h := console.Handler()
	first := get(t, h, "GET", "/console/js/core.js")
	etag := first.Header().Get("ETag")
	if etag == "" || first.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("no ETag or Cache-Control: %v", first.Header())
	}
	again := get(t, h, "GET", "/console/js/core.js", "If-None-Match", etag)
	if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("revalidating: status %d, %d bytes; want 304 and none", again.Code, again.Body.Len())
	}
	if again.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("a 304 without the CSP")
	}
	if other := get(t, h, "GET", "/console/js/core.js", "If-None-Match", `"stale"`); other.Code != http.StatusOK {
		t.Errorf("a stale ETag: status %d, want 200", other.Code)
	}
	if get(t, h, "GET", "/console/app.css").Header().Get("ETag") == etag {
		t.Errorf("two assets share an ETag")
	}
}

// TestAssetsKeepTheCSP: the HTML holds no inline script, style or event
// handler (the CSP would refuse them), its scripts exist, and no script
// builds code from strings or HTML from data.
func TestAssetsKeepTheCSP(t *testing.T) {
	index, err := os.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`),     // inline script
		regexp.MustCompile(`<style`),                       // inline style sheet
		regexp.MustCompile(`\sstyle=`),                     // style attribute
		regexp.MustCompile(`\son[a-z]+=`),                  // event handler attribute
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`), // another origin
	} {
		if m := bad.Find(index); m != nil {
			t.Errorf("index.html: %q breaks the CSP", m)
		}
	}
	h := console.Handler()
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllSubmatch(index, -1) {
		if w := get(t, h, "GET", string(m[1])); w.Code != http.StatusOK {
			t.Errorf("index.html loads %s: status %d", m[1], w.Code)
		}
	}
	js, _ := filepath.Glob("assets/js/*.js")
	if len(js) < 5 {
		t.Fatalf("only %d scripts", len(js))
	}
	for _, p := range js {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "setAttribute('style'", "http://", "https://"} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		if node, err := exec.LookPath("node"); err == nil {
			if out, err := exec.Command(node, "--check", p).CombinedOutput(); err != nil {
				t.Errorf("%s does not parse: %s", p, out)
			}
		}
	}
}

func testReport() wire.Report {
	n := int64(1234)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	co := wire.Collaboration{ID: "c_1", Name: "spring </script><script>alert(1)</script> campaign", Proposer: "p_b", Partner: "p_p",
		ProposerName: "Brand Co", PartnerName: "Publisher & Sons", Rules: wire.DefaultRules(), RulesVersion: 1, State: wire.StateActive}
	return wire.Report{
		Collaboration: co, GeneratedAt: at,
		DataHeld:         []wire.HeldData{{PartnerID: "p_b", ConsentRowsByPurpose: []wire.PurposeRows{{Purpose: "measurement", Rows: 900}, {Purpose: "ads", Rows: 300}}}, {PartnerID: "p_p"}},
		Matches:          []wire.ReportMatch{{ID: "m_1", State: wire.MatchDone, CohortSizeNoisy: &n, Epsilon: 0.1, CreatedAt: at}},
		QueriesByAnalyst: []wire.AnalystQueries{{AnalystKey: "k_a", AnalystLabel: "ana", PartnerID: "p_b", Queries: 3, Epsilon: 1.5}},
		BudgetSpentByDay: []wire.DaySpend{{Day: "2026-03-01", PartnerID: "p_b", Kind: "query", Charges: 3, Epsilon: 1.5}},
		RefusalsByReason: []wire.ReasonRefusals{{Reason: wire.CodeNotAllowed, Refusals: 1}},
		Deletions:        []wire.DeletionReceipts{{Kind: wire.DeleteOptOut, PartnerID: "p_b", Receipts: 1, IdentifiersSubmitted: 2}},
		Honoured:         []wire.HonouredDeletion{{ReceiptID: "r_1", Kind: wire.DeleteOptOut, PartnerID: "p_b", RequestedAt: at, HonouredAt: at.Add(3 * time.Second), Seconds: 3}},
		Exposure:         wire.Exposure{CollaborationEpsilonSpent: 1.7, CollaborationDeltaSpent: 1e-6},
	}
}

func testPrivacy() wire.PrivacyReport {
	m := int64(42)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return wire.PrivacyReport{PartnerID: "p_b", PartnerName: "Brand Co", Since: at.AddDate(-1, 0, 0), Until: at, GeneratedAt: at,
		Collaborations: []wire.PrivacyCollaboration{{Name: "campaign", PartnerName: "Publisher", Purpose: "measurement", State: "active",
			Noise: wire.NoiseLaplace, EpsilonSpent: 1.7, Queries: 3, Matches: 1}},
		OptOutsHonoured: 1, DeletionsHonoured: 2, IdentifiersSubmitted: 4, MedianSecondsToHonour: &m}
}

// scriptBodies cuts a page into its markup and its script elements' text.
func scriptBodies(t *testing.T, page string) (markup string, scripts []string) {
	t.Helper()
	re := regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`)
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[1], "src=") {
			t.Errorf("a script loads from elsewhere: <script%s>", m[1])
		}
		scripts = append(scripts, m[2])
	}
	return re.ReplaceAllString(page, ""), scripts
}

func TestStandalone(t *testing.T) {
	for _, c := range []struct {
		page  string
		data  any
		title string
		holds []string
	}{
		{"report", testReport(), "<title>Transparency report: spring &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; campaign</title>",
			[]string{`"proposer_name":"Brand Co"`, `"partner_name":"Publisher \u0026 Sons"`, `\u003c/script\u003e`, `"honoured":[{"receipt_id":"r_1"`}},
		{"report", ptr(testReport()), "<title>Transparency report: spring", []string{`"purpose":"measurement"`}},
		{"privacy", testPrivacy(), "<title>Brand Co: privacy report</title>", []string{`"identifiers_in_the_clear":0`, `"median_seconds_to_honour":42`}},
	} {
		var b bytes.Buffer
		if err := console.Standalone(&b, c.page, c.data); err != nil {
			t.Fatalf("%s: %v", c.page, err)
		}
		page := b.String()
		markup, scripts := scriptBodies(t, page)
		if !strings.Contains(markup, c.title) {
			t.Errorf("%s: no %q in %.300s", c.page, c.title, markup)
		}
		if !strings.Contains(page, `<script type="application/json" id="cr-data" data-page="`+c.page+`">`) {
			t.Errorf("%s: no data block", c.page)
		}
		for _, h := range c.holds {
			if !strings.Contains(page, h) {
				t.Errorf("%s: the data does not hold %s", c.page, h)
			}
		}
		// Nothing from the network: no src or href in the markup, and the
		// scripts are the console's own, whole (ECharts, the report code).
		if m := regexp.MustCompile(`(?i)\s(src|href|action)=`).FindString(markup); m != "" {
			t.Errorf("%s: the markup links out: %q", c.page, m)
		}
		if !strings.Contains(markup, `content="default-src 'none';`) {
			t.Errorf("%s: no CSP keeping the page offline", c.page)
		}
		if len(scripts) != 6 || !strings.Contains(scripts[1], "echarts") || !strings.Contains(scripts[4], "CR.renderReport") || !strings.Contains(scripts[5], "cr-data") {
			t.Errorf("%s: %d scripts, want the data, ECharts, core, charts, report and standalone", c.page, len(scripts))
		}
		if strings.Count(strings.ToLower(page), "</script") != len(scripts) {
			t.Errorf("%s: a script element holds </script", c.page)
		}
	}
	var b bytes.Buffer
	err := console.Standalone(&b, "audit", nil)
	if err == nil || !strings.Contains(err.Error(), `"audit"`) || !strings.Contains(err.Error(), "report or privacy") {
		t.Errorf("an unknown page: %v, want an error naming report and privacy", err)
	}
	if b.Len() != 0 {
		t.Errorf("an unknown page wrote %d bytes", b.Len())
	}
}

func ptr[T any](v T) *T { return &v }

// TestStandaloneScriptsAreServed: the scripts a standalone page inlines
// are the console's own, which the report page runs too.
func TestStandaloneScriptsAreServed(t *testing.T) {
	var b bytes.Buffer
	if err := console.Standalone(&b, "privacy", testPrivacy()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"js/report.js", "js/charts.js", "js/core.js"} {
		src, err := fs.ReadFile(os.DirFS("assets"), name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b.Bytes(), src) {
			t.Errorf("the page does not inline %s as served", name)
		}
	}
}
