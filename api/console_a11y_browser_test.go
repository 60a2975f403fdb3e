package api_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The console's accessibility and small-screen tests: every view, as the
// role that uses it, at a desktop's 1400 px and a phone's 390 px, checked
// by axe-core (no serious or critical violation), for sideways scrolling
// (none at 390 px), for its main actions and Sign out being reachable, and
// for errors in the page's console (the tab fails on them). Then what a
// user sees when things go wrong: a wrong key, the server gone, a spent
// budget.
//
// axe-core comes from npm (make test installs it under .cache/axe-core and
// passes its directory as CLEANROOM_AXE). With CLEANROOM_REQUIRE_BROWSER set
// the check must run; otherwise, without it, the axe check is skipped,
// saying so, and the layout checks still run.

// axeSource is the text of axe.min.js, or "" when the check is skipped.
func axeSource(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CLEANROOM_AXE")
	if dir != "" {
		for _, p := range []string{filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"), filepath.Join(dir, "axe.min.js"), dir} {
			if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
				return string(b)
			}
		}
	}
	if os.Getenv("CLEANROOM_REQUIRE_BROWSER") != "" {
		t.Fatalf("no axe.min.js in CLEANROOM_AXE (%q), and CLEANROOM_REQUIRE_BROWSER is set: make test installs axe-core with npm under .cache/axe-core", dir)
	}
	t.Log("no axe-core (CLEANROOM_AXE unset or empty): the accessibility check is skipped; make test installs it with npm")
	return ""
}

// axeCheck runs axe-core in the page and fails on every serious or
// critical violation, naming the elements.
func (tb *tab) axeCheck(src, where string) {
	tb.t.Helper()
	if src == "" {
		return
	}
	var loaded bool
	tb.run("axe present", chromedp.Evaluate(`typeof window.axe !== 'undefined'`, &loaded))
	if !loaded {
		tb.run("inject axe", chromedp.Evaluate(src+"\n;true", &loaded))
	}
	var found []string
	tb.run("axe "+where, evalAsync(`axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
		.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => v.id + ' (' + v.impact + '): ' + v.help + ': ' + v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | ') +
			' (' + (v.nodes[0].failureSummary || '').replace(/\s+/g, ' ').slice(0, 200) + ')'))`, &found))
	for _, f := range found {
		tb.t.Errorf("%s: axe: %s", where, f)
	}
}

// noSideways fails when the page scrolls sideways, naming what sticks out.
func (tb *tab) noSideways(where string) {
	tb.t.Helper()
	var over int
	tb.run("overflow", chromedp.Evaluate(`document.scrollingElement.scrollWidth - window.innerWidth`, &over))
	if over <= 0 {
		return
	}
	var wide []string
	tb.run("what sticks out", chromedp.Evaluate(`[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1 &&
		!(e.parentElement && e.parentElement.getBoundingClientRect().right > innerWidth + 1)).slice(0, 8).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').slice(0, 40))`, &wide))
	tb.t.Errorf("%s: the page is %d px wider than the screen and scrolls sideways: %q", where, over, wide)
}

// reachable scrolls to each element (CSS selectors) as a user would and
// fails unless it is then wholly on the screen and not covered.
func (tb *tab) reachable(where string, css ...string) {
	tb.t.Helper()
	arg, _ := json.Marshal(css)
	var bad []string
	tb.run("reachable", chromedp.Evaluate(fmt.Sprintf(`%s.map(s => {
		const e = document.querySelector(s);
		if (!e) return s + ': not in the page';
		// An element taller than the screen is reached when its top is.
		const tall = e.getBoundingClientRect().height > innerHeight;
		e.scrollIntoView({block: tall ? 'start' : 'center', inline: 'nearest'});
		const r = e.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) return s + ': not shown';
		if (r.left < -0.5 || r.right > innerWidth + 0.5 || r.top < -0.5 || (!tall && r.bottom > innerHeight + 0.5))
			return s + ': off the screen at ' + Math.round(r.left) + ',' + Math.round(r.top) + ' to ' + Math.round(r.right) + ',' + Math.round(r.bottom);
		const hit = document.elementFromPoint((r.left + r.right) / 2, tall ? r.top + 20 : (r.top + r.bottom) / 2);
		if (!hit || !(hit === e || e.contains(hit))) return s + ': covered by ' + (hit ? hit.tagName + '.' + hit.className : 'nothing');
		return '';
	}).filter(Boolean)`, arg), &bad))
	for _, b := range bad {
		tb.t.Errorf("%s: %s", where, b)
	}
}

// a11yView is one view of the console as the role that uses it.
type a11yView struct {
	name    string
	who     string // the key's "role/party"; "" for the sign-in form
	hash    string
	ready   []string // data-test names shown once it has loaded
	actions []string // CSS selectors of what a user must be able to reach
	then    func(tb *tab)
}

// TestConsoleA11y: every view, at 1400 and 390 px.
func TestConsoleA11y(t *testing.T) {
	chromiumPath(t)
	axe := axeSource(t)
	ce := newConsoleEnv(t)
	b := newBrowser(t, ce.srv.URL)
	q := `SELECT brand_co_label, COUNT(*) AS people, AVG(brand_co_value) AS value FROM cohort GROUP BY brand_co_label`
	views := []a11yView{
		{name: "signin", hash: "", ready: []string{"signin-key"}, actions: []string{sel("signin-key"), sel("signin-submit")}},
		{name: "collabs", who: "analyst/brand", hash: "#/collabs", ready: []string{"collab-item"}, actions: []string{sel("collab-item")}},
		{name: "workbench", who: "analyst/brand", hash: "#/collab/" + ce.collab + "/workbench", ready: []string{"sql", "budget-gauge", "budget-questions"},
			actions: []string{sel("sql"), sel("epsilon"), sel("run-query"), sel("download-csv"), sel("run-template"), sel("answer-table")},
			then: func(tb *tab) {
				tb.run("ask", chromedp.SetValue(sel("sql"), q, chromedp.ByQuery), chromedp.SetValue(sel("epsilon"), "0.5", chromedp.ByQuery),
					chromedp.Poll(`!document.querySelector('[data-test="run-query"]').disabled`, nil),
					chromedp.Click(sel("run-query"), chromedp.ByQuery),
					chromedp.WaitVisible(sel("answer-table")+" tbody tr", chromedp.ByQuery),
					chromedp.WaitVisible(sel("history-item"), chromedp.ByQuery))
			}},
		{name: "collaboration", who: "engineer/brand", hash: "#/collab/" + ce.collab + "/collab", ready: []string{"audiences", "matches", "receipts"},
			actions: []string{sel("receipts")}},
		{name: "rules-diff", who: "admin/pub", hash: "#/collab/" + ce.pending + "/collab", ready: []string{"rules-diff"},
			actions: []string{sel("approve"), sel("reject")}},
		{name: "tables", who: "engineer/brand", hash: "#/collab/" + ce.events + "/collab", ready: []string{"audiences", "partner-tables"},
			actions: []string{sel("partner-tables")}},
		{name: "tables-diff", who: "admin/pub", hash: "#/collab/" + ce.events + "/collab", ready: []string{"rules-tables-diff"},
			actions: []string{sel("approve"), sel("reject")}},
		{name: "report", who: "auditor/brand", hash: "#/collab/" + ce.collab + "/report", ready: []string{"report"},
			actions: []string{sel("print")},
			then: func(tb *tab) {
				tb.run("charts", chromedp.WaitVisible(sel("report-chart")+`[data-rendered="true"]`, chromedp.ByQuery))
			}},
		{name: "audit", who: "auditor/pub", hash: "#/audit", ready: []string{"audit-row", "audit-head"},
			actions: []string{sel("audit-apply"), sel("audit-older"), sel("audit-row"), sel("verify-run")}},
		{name: "privacy", who: "admin/brand", hash: "#/privacy", ready: []string{"privacy-report"},
			actions: []string{sel("privacy-apply"), sel("print")}},
	}
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			role := "*"
			if v.who != "" {
				role, _, _ = strings.Cut(v.who, "/")
			}
			for _, w := range []int{1400, 390} {
				// A tab for each width: a tab's life is bounded (newTab).
				tb := b.newTab(t, role)
				if v.who != "" {
					tb.signIn(ce.keys[v.who])
				}
				where := fmt.Sprintf("%s at %d px", v.name, w)
				tb.run("open "+where, chromedp.EmulateViewport(int64(w), 844),
					chromedp.Navigate("about:blank"), chromedp.Navigate(b.base+"/console/"+v.hash))
				for _, r := range v.ready {
					tb.run("wait for "+r, chromedp.WaitVisible(sel(r), chromedp.ByQuery), loaded(r))
				}
				if v.then != nil {
					v.then(tb)
				}
				tb.run("settle", chromedp.Sleep(150*time.Millisecond))
				tb.axeCheck(axe, where)
				if w == 390 {
					tb.noSideways(where)
				}
				actions := v.actions
				if v.who != "" {
					actions = append([]string{sel("signout")}, actions...)
				}
				tb.reachable(where, actions...)
				if v.who != "" {
					tb.navReachable(where)
				}
				tb.run("top", chromedp.Evaluate(`window.scrollTo(0, 0)`, nil))
				tb.shot(fmt.Sprintf("a11y-%s-%d", v.name, w))
			}
		})
	}
}

// navReachable checks the top bar's links can be reached: at once on a
// wide screen, from the menu button on a narrow one (the bar collapses).
func (tb *tab) navReachable(where string) {
	tb.t.Helper()
	tb.run("top", chromedp.Evaluate(`window.scrollTo(0, 0)`, nil))
	var menu bool
	tb.run("menu shown", chromedp.Evaluate(`(() => { const m = document.querySelector('[data-test="menu"]'); return !!m && m.getBoundingClientRect().width > 0; })()`, &menu))
	if menu {
		tb.run("open the menu", chromedp.Click(sel("menu"), chromedp.ByQuery), chromedp.WaitVisible(sel("nav-collabs"), chromedp.ByQuery))
		var expanded string
		var ok bool
		tb.run("expanded", chromedp.AttributeValue(sel("menu"), "aria-expanded", &expanded, &ok, chromedp.ByQuery))
		if expanded != "true" {
			tb.t.Errorf("%s: the open menu says aria-expanded=%q", where, expanded)
		}
	}
	tb.reachable(where+" (top bar)", sel("nav-collabs"), sel("whoami"))
	if menu {
		tb.run("close the menu", chromedp.Evaluate(`window.scrollTo(0, 0)`, nil), chromedp.Click(sel("menu"), chromedp.ByQuery),
			chromedp.WaitNotVisible(sel("nav-collabs"), chromedp.ByQuery))
	}
}

// TestConsoleA11yWrongKey: a wrong key is refused in plain language, not
// the API's advice to developers.
func TestConsoleA11yWrongKey(t *testing.T) {
	chromiumPath(t)
	e := newEnv(t, queryRules)
	b := newBrowser(t, e.srv.URL)
	tb := b.newTab(t, "*")
	tb.expect("status of 401")
	tb.run("wrong key", chromedp.Navigate(b.base+"/console/"), chromedp.WaitVisible(sel("signin-key"), chromedp.ByQuery),
		chromedp.SendKeys(sel("signin-key"), "crk_not-a-real-key", chromedp.ByQuery),
		chromedp.Click(sel("signin-submit"), chromedp.ByQuery),
		chromedp.WaitVisible(sel("signin-error"), chromedp.ByQuery))
	msg := tb.text("signin-error")
	if !strings.Contains(msg, "That key was not accepted") || !strings.Contains(msg, "ask your admin for a new one") {
		t.Errorf("a wrong key says %q, want the plain-language advice", msg)
	}
	for _, dev := range []string{"Bearer", "Authorization", "unauthorized", "401"} {
		if strings.Contains(msg, dev) {
			t.Errorf("a wrong key's message shows developer text %q: %q", dev, msg)
		}
	}
	tb.shot("a11y-signin-wrong-key")
}

// TestConsoleA11yServerDown: with the server unreachable the workbench
// shows one banner with Retry, not a box per failed request, and marks
// the figures it still shows as out of date; Retry, once the server is
// back, brings the view back fresh.
func TestConsoleA11yServerDown(t *testing.T) {
	chromiumPath(t)
	ce := newConsoleEnv(t)
	target, _ := url.Parse(ce.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var down atomic.Bool
	// Down, the proxy drops each connection unanswered: what the browser
	// sees of a server that is gone.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	b := newBrowser(t, front.URL)
	tb := b.newTab(t, "analyst")
	tb.expect("net::ERR_") // the failed requests, logged by the browser
	tb.signIn(ce.keys["analyst/brand"])
	tb.run("workbench", chromedp.Navigate(b.base+"/console/#/collab/"+ce.collab+"/workbench"),
		chromedp.WaitVisible(sel("budget-gauge"), chromedp.ByQuery), chromedp.WaitVisible(sel("budget-questions"), chromedp.ByQuery),
		chromedp.WaitVisible(sel("history"), chromedp.ByQuery), loaded("history"),
		chromedp.Poll(`!document.querySelector('[data-test="run-query"]').disabled`, nil))

	down.Store(true)
	tb.run("ask with the server gone", chromedp.Click(sel("run-query"), chromedp.ByQuery),
		chromedp.WaitVisible(sel("network-banner"), chromedp.ByQuery),
		chromedp.Sleep(500*time.Millisecond)) // the budget and history reloads fail too
	if n := tb.count(sel("network-banner")); n != 1 {
		t.Errorf("%d network banners, want one", n)
	}
	if n := tb.count(".error"); n != 0 {
		var boxes []string
		tb.run("boxes", chromedp.Evaluate(`[...document.querySelectorAll('.error')].map(e => e.textContent)`, &boxes))
		t.Errorf("with the server gone, %d error boxes besides the banner: %q", n, boxes)
	}
	if banner := tb.text("network-banner"); !strings.Contains(banner, "cannot reach the server") || strings.Contains(banner, "Failed to fetch") {
		t.Errorf("the banner says %q", banner)
	}
	tb.reachable("server down", sel("network-retry"))
	// The budget still shown is what it was: marked out of date.
	var stale bool
	tb.run("stale", chromedp.Evaluate(`!!document.querySelector('[data-test="budget-gauge"]').closest('[data-stale="true"]')`, &stale))
	if !stale {
		t.Error("the budget gauge is not marked out of date while the server cannot be reached")
	}
	tb.shot("a11y-server-down")

	// Retry while still down: still one banner.
	tb.run("retry while down", chromedp.Click(sel("network-retry"), chromedp.ByQuery),
		chromedp.WaitVisible(sel("network-banner"), chromedp.ByQuery), chromedp.Sleep(500*time.Millisecond))
	if n := tb.count(sel("network-banner")); n != 1 {
		t.Errorf("after a failed retry, %d network banners, want one", n)
	}

	down.Store(false)
	tb.run("retry", chromedp.Click(sel("network-retry"), chromedp.ByQuery),
		chromedp.WaitNotVisible(sel("network-banner"), chromedp.ByQuery),
		chromedp.WaitVisible(sel("budget-questions"), chromedp.ByQuery), loaded("history"))
	if n := tb.count(`[data-stale="true"]`); n != 0 {
		t.Errorf("after a successful retry, %d parts still marked out of date", n)
	}
}

// TestConsoleA11yBudgetSpent: when the analyst's partner has spent its
// budget, the workbench says when it refreshes or who can raise it.
func TestConsoleA11yBudgetSpent(t *testing.T) {
	chromiumPath(t)
	e := newEnv(t, budgetRules(`"epsilon_budget": 1.1, "max_query_epsilon": 1, "match_epsilon": 0.1`))
	e.uploadBoth()
	e.matchBoth()
	if st, body, _ := e.ask(e.brand.analyst.Key, `SELECT COUNT(*) FROM cohort`, 1, ""); st != 200 {
		t.Fatalf("spending the budget: %d %s", st, body)
	}
	b := newBrowser(t, e.srv.URL)
	tb := b.newTab(t, "analyst")
	tb.signIn(e.brand.analyst.Key)
	tb.run("workbench", chromedp.Navigate(b.base+"/console/#/collab/"+e.collab+"/workbench"),
		chromedp.WaitVisible(sel("budget-advice"), chromedp.ByQuery))
	advice := tb.text("budget-advice")
	if !strings.Contains(advice, "does not refresh") || !strings.Contains(advice, "admin") || !strings.Contains(advice, "rules") {
		t.Errorf("a spent budget that never refreshes says %q; want that it does not refresh and that an admin can raise it in the rules", advice)
	}
	tb.reachable("budget spent", sel("budget-advice"))
	// Run is off (the preview meets the refusal before anything is
	// asked), saying why beside it; the preview says the same beside the
	// server's reason.
	tb.run("Run off", chromedp.Poll(`document.querySelector('[data-test="run-query"]').disabled &&
		document.querySelector('[data-test="preview"]').textContent.includes('budget_exhausted')`, nil))
	if why := tb.text("run-reason"); !strings.Contains(why, "spent") || !strings.Contains(why, "raise") {
		t.Errorf("Run off for a spent budget says %q", why)
	}
	if pv := tb.text("preview"); !strings.Contains(pv, "budget_exhausted") || !strings.Contains(pv, "admin can raise it") {
		t.Errorf("the preview of a spent budget reads %q", pv)
	}
	tb.shot("a11y-budget-spent")
}
