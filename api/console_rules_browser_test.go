package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

// TestConsoleRules is an admin's rules in the console, on a desktop and
// on a phone: a partner with no collaboration follows the empty list to
// the rules form, declares its tables and the publisher's, has a
// dimension named without its prefix refused in the form with the
// nearest name (nothing is sent), sees bounds and budgets checked as it
// types, and proposes; the body sent is the JSON the form previewed, and
// the publisher's admin finds the proposal, each rule explained, to
// approve. On the way it lets only its own analysts ask (neither is
// refused in the form) and declares a public group in the Advanced
// section, where bad JSON is refused with the server's line and column
// before anything is sent; the rules created carry both. Then the
// brand's admin changes the rules of a collaboration whose tables are
// uploaded: the form offers the uploaded columns and suggests them.
func TestConsoleRules(t *testing.T) {
	chromiumPath(t)
	axe := axeSource(t)
	e := newEnv(t, queryRules)
	e.uploadBoth()
	ctx := context.Background()
	cp, err := e.op.CreatePartner(ctx, "Retailer")
	if err != nil {
		t.Fatal(err)
	}
	retailer := client.New(e.srv.URL, cp.Secret)
	b := newBrowser(t, e.srv.URL)

	for i, width := range []int64{1400, 390} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			tb := b.newTab(t, "admin")
			posts := tb.capturePosts("/v1/collaborations")
			tb.run("size", chromedp.EmulateViewport(width, 900))
			tb.signIn(retailer.Key)
			// The empty list points at the form, not at the CLI; a list
			// has a button to it.
			link := "new-collab"
			if i == 0 {
				link = "propose-link"
			}
			tb.run("the list", chromedp.Navigate(b.base+"/console/#/collabs"), chromedp.WaitVisible(sel(link), chromedp.ByQuery))
			if s := tb.text("collab-list"); i == 0 && (!strings.Contains(s, "No collaboration yet: propose one") || strings.Contains(s, "cleanroom collab propose")) {
				t.Errorf("the empty list says %q", s)
			}
			tb.run("the form", chromedp.Click(sel(link), chromedp.ByQuery), chromedp.WaitVisible(sel("rules-preview"), chromedp.ByQuery))
			name := fmt.Sprintf("spring %d", width)
			tb.run("name and partner", chromedp.SendKeys(sel("rf-name"), name, chromedp.ByQuery))
			tb.set(sel("rf-partner"), e.pub.id)
			// Before any table is declared, a name behind no prefix is
			// refused with either party's, and one behind a prefix is
			// accepted, said to be unknown until that party uploads.
			tb.run("a dimension", chromedp.Click(sel("rf-add-dimension"), chromedp.ByQuery),
				chromedp.SendKeys(sel("rf-dimension"), "region", chromedp.ByQuery))
			if m := tb.problemOf(sel("rf-dimension")); !strings.Contains(m, `did you mean "retailer_region" or "publisher_region"?`) {
				t.Errorf("dimension region, no table declared: %q", m)
			}
			tb.set(sel("rf-dimension"), "retailer_region")
			if m := tb.problemOf(sel("rf-dimension")); m != "" {
				t.Errorf("retailer_region, nothing uploaded: %q", m)
			}
			var hint string
			tb.run("hint", chromedp.Evaluate(`document.querySelector('[data-test="rf-dimension"]').parentElement.querySelector('.rf-hint').textContent`, &hint))
			if hint != "No column yet: Retailer has uploaded nothing, so its upload must bring region." {
				t.Errorf("retailer_region, nothing uploaded, is said to be %q", hint)
			}
			// The brand's purchases and the publisher's exposures.
			pr, pa := `[data-party="proposer"] `, `[data-party="partner"] `
			tb.run("a table", chromedp.Click(pr+sel("rf-add-table"), chromedp.ByQuery))
			tb.set(pr+sel("rf-table-name"), "purchases")
			tb.set(pr+sel("rf-col-name"), "amount")
			amount := pr + sel("rf-col") + ":first-child "
			tb.set(amount+sel("rf-col-role"), "metric")
			tb.set(amount+sel("rf-col-hi"), "500")
			tb.run("a column", chromedp.Click(pr+sel("rf-add-column"), chromedp.ByQuery))
			tb.set(pr+sel("rf-col-name"), "region")
			tb.run("the partner's table", chromedp.Click(pa+sel("rf-add-table"), chromedp.ByQuery))
			tb.set(pa+sel("rf-table-name"), "exposures")
			tb.set(pa+sel("rf-col-name"), "campaign")

			// A dimension typed without its party's prefix: refused in
			// the form, with the name it should be.
			tb.set(sel("rf-dimension"), "")
			tb.run("retype", chromedp.SendKeys(sel("rf-dimension"), "region", chromedp.ByQuery))
			if m := tb.problemOf(sel("rf-dimension")); !strings.Contains(m, `"region" is no column of the cohort`) || !strings.Contains(m, `did you mean "retailer_region"?`) {
				t.Errorf("the form says of dimension region: %q", m)
			}
			// Bounds and budgets are checked as they are typed.
			tb.set(amount+sel("rf-col-lo"), "600")
			if m := tb.problemOf(amount + sel("rf-col-lo")); !strings.Contains(m, "The lower bound must not be above the upper") {
				t.Errorf("bounds 600 to 500: %q", m)
			}
			// Equal bounds, which the server accepts, are accepted.
			tb.set(amount+sel("rf-col-lo"), "500")
			if m := tb.problemOf(amount + sel("rf-col-lo")); m != "" {
				t.Errorf("bounds 500 to 500: %q", m)
			}
			tb.set(amount+sel("rf-col-lo"), "0")
			tb.set(sel("rf-max_query_epsilon"), "20")
			if m := tb.problemOf(sel("rf-max_query_epsilon")); !strings.Contains(m, "At most the epsilon budget (10)") {
				t.Errorf("a question's epsilon over the budget: %q", m)
			}
			tb.set(sel("rf-max_query_epsilon"), "1")
			if m := tb.explained(sel("rf-max_query_epsilon")); m != "A question spends at most ε 1." {
				t.Errorf("max_query_epsilon is explained as %q", m)
			}
			// Sending is refused in the form: nothing reaches the server.
			tb.run("send refused", chromedp.Click(sel("rf-submit"), chromedp.ByQuery), chromedp.Sleep(300*time.Millisecond))
			if s := tb.text("rules-problems"); !strings.Contains(s, "1 problem to fix") {
				t.Errorf("the form's summary says %q", s)
			}
			if n := len(posts()); n != 0 {
				t.Fatalf("the form sent %d proposals with a column no party has", n)
			}
			tb.set(sel("rf-dimension"), "retailer_region")
			if m := tb.problemOf(sel("rf-dimension")); m != "" {
				t.Errorf("retailer_region is refused: %q", m)
			}

			// Who may ask: both partners, by name, until one is unticked;
			// neither is refused in the form.
			var asks []string
			tb.run("queriers", chromedp.Evaluate(`[...document.querySelectorAll('[data-test="rf-querier"]')].map(b => b.parentElement.textContent.trim() + ':' + b.checked)`, &asks))
			if strings.Join(asks, ",") != "Retailer (you):true,Publisher:true" {
				t.Errorf("the queriers offered: %q", asks)
			}
			own, other := `[data-test="rf-querier"][data-party="proposer"]`, `[data-test="rf-querier"][data-party="partner"]`
			tb.run("neither asks", chromedp.Click(own, chromedp.ByQuery), chromedp.Click(other, chromedp.ByQuery))
			if m := tb.problemOf(other); !strings.Contains(m, "Tick at least one partner") {
				t.Errorf("no querier: %q", m)
			}
			tb.run("only we ask", chromedp.Click(own, chromedp.ByQuery))
			if m := tb.problemOf(other); m != "" {
				t.Errorf("the proposer alone may ask: %q", m)
			}
			if m := tb.explained(own); m != "Only analysts of Retailer may ask questions." {
				t.Errorf("queriers are explained as %q", m)
			}

			// Public groups in the Advanced section: a JSON syntax error
			// is refused with the line and column the server would give,
			// and nothing is sent.
			pg := sel("rf-public_groups")
			tb.run("advanced", chromedp.Click(sel("rf-advanced-summary"), chromedp.ByQuery), chromedp.WaitVisible(pg, chromedp.ByQuery))
			bad := "{\n  \"retailer_region\": {\"values\": [\"north\", \"south\",]}\n}"
			var decoded map[string]wire.PublicValues
			var je *wire.JSONError
			if err := wire.DecodeJSON([]byte(bad), &decoded); !errors.As(err, &je) {
				t.Fatalf("the server's decoder takes %q: %v", bad, err)
			}
			tb.set(pg, bad)
			if m, want := tb.problemOf(pg), fmt.Sprintf("line %d, column %d: ", je.Line, je.Column); !strings.HasPrefix(m, want) {
				t.Errorf("public groups %q: the form says %q, want it to start %q (the server: %v)", bad, m, want, je)
			}
			tb.run("send refused", chromedp.Click(sel("rf-submit"), chromedp.ByQuery), chromedp.Sleep(300*time.Millisecond))
			if s := tb.text("rules-problems"); !strings.Contains(s, "1 problem to fix") {
				t.Errorf("with bad JSON the form's summary says %q", s)
			}
			if n := len(posts()); n != 0 {
				t.Fatalf("the form sent %d proposals with bad JSON", n)
			}
			// A group named without its prefix: the nearest dimension.
			tb.set(pg, `{"region": {"values": ["north", "south"]}}`)
			if m := tb.problemOf(pg); !strings.Contains(m, `did you mean "retailer_region"`) {
				t.Errorf("public group region: %q", m)
			}
			tb.set(pg, `{"retailer_region": {"values": ["north", 1]}}`)
			if m := tb.problemOf(pg); !strings.Contains(m, "values mix strings and numbers") {
				t.Errorf("public values of two kinds: %q", m)
			}
			tb.set(pg, `{"retailer_region": {"values": ["north", "south"]}}`)
			if m := tb.problemOf(pg); m != "" {
				t.Errorf("public group retailer_region: %q", m)
			}
			if m := tb.explained(pg); !strings.HasPrefix(m, "Answers grouped by retailer_region release every declared value") {
				t.Errorf("public groups are explained as %q", m)
			}
			tb.shot(shotName("rules-form", width))
			tb.axeCheck(axe, fmt.Sprintf("the rules form at %d px", width))
			if width == 390 {
				tb.noSideways("the rules form at 390 px")
				tb.reachable("the rules form at 390 px", sel("rf-submit"), sel("rules-preview"))
			}
			preview := tb.text("rules-preview")
			tb.run("propose", chromedp.Click(sel("rf-submit"), chromedp.ByQuery),
				chromedp.Poll(`location.hash.startsWith('#/collab/c_') || document.querySelector('[data-test="rf-error"]')`, nil, chromedp.WithPollingInterval(50*time.Millisecond)))
			if tb.count(sel("rf-error")) > 0 {
				t.Fatalf("the server refused the proposal: %s", tb.text("rf-error"))
			}
			tb.run("the proposal", chromedp.WaitVisible(sel("rules"), chromedp.ByQuery))
			sent := posts()
			if len(sent) != 1 {
				t.Fatalf("%d proposals sent, want 1", len(sent))
			}
			var want, got map[string]any
			if err := json.Unmarshal([]byte(preview), &want); err != nil {
				t.Fatalf("the preview is no JSON: %v\n%s", err, preview)
			}
			if err := json.Unmarshal([]byte(sent[0]), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("sent %s\nthe preview showed %s", sent[0], preview)
			}
			rules, _ := got["rules"].(map[string]any)
			if got["name"] != name || got["partner"] != e.pub.id || fmt.Sprint(rules["dimensions"]) != "[retailer_region]" ||
				fmt.Sprint(rules["queriers"]) != "["+cp.Partner.ID+"]" || fmt.Sprint(rules["public_groups"]) != "map[retailer_region:map[values:[north south]]]" {
				t.Errorf("sent %s", sent[0])
			}
			// The collaboration's rules, as the API gives them, carry them.
			var hash string
			tb.run("its id", chromedp.Evaluate(`location.hash`, &hash))
			id := strings.TrimSuffix(strings.TrimPrefix(hash, "#/collab/"), "/collab")
			co, err := retailer.Collaboration(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(co.Rules.Queriers, []string{cp.Partner.ID}) || fmt.Sprint(co.Rules.PublicGroups["retailer_region"].Values) != "[north south]" || len(co.Rules.PublicGroups) != 1 {
				t.Errorf("the rules created: queriers %v, public groups %+v", co.Rules.Queriers, co.Rules.PublicGroups)
			}

			// The publisher's admin finds it, each rule in a sentence.
			pt := b.newTab(t, "admin")
			pt.run("size", chromedp.EmulateViewport(width, 900))
			pt.signIn(e.pub.admin.Key)
			item := fmt.Sprintf(`//tr[@data-test="collab-item"][.//strong[text()=%q]]`, name)
			pt.run("the proposal", chromedp.Navigate(b.base+"/console/#/collabs"), chromedp.WaitVisible(item, chromedp.BySearch),
				chromedp.Click(item, chromedp.BySearch), chromedp.WaitVisible(sel("approve"), chromedp.ByQuery))
			if s := pt.text("rules"); !strings.Contains(s, `Only people who consented to "measurement" can match.`) ||
				!strings.Contains(s, "Groups a person adds to") || !strings.Contains(s, "One person adds to at most 1 group of an answer") {
				t.Errorf("the rules as the publisher reads them: %q", s)
			}
			pt.shot(shotName("rules-proposed", width))
			pt.axeCheck(axe, fmt.Sprintf("a proposal at %d px", width))
			if width == 390 {
				pt.noSideways("a proposal at 390 px")
				pt.reachable("a proposal at 390 px", sel("approve"))
			}
		})
	}

	// A change of rules: the form offers what each party uploaded.
	t.Run("change", func(t *testing.T) {
		tb := b.newTab(t, "admin")
		tb.signIn(e.brand.admin.Key)
		tb.run("the collaboration", chromedp.Navigate(b.base+"/console/#/collab/"+e.collab+"/collab"), chromedp.WaitVisible(sel("change-rules"), chromedp.ByQuery),
			chromedp.Click(sel("change-rules"), chromedp.ByQuery), chromedp.WaitVisible(sel("rules-preview"), chromedp.ByQuery))
		if n := tb.count(sel("rf-declare-uploaded")); n != 2 {
			t.Errorf("%d uploaded tables offered to declare, want both parties' audience", n)
		}
		var offered []string
		tb.run("offered columns", chromedp.Evaluate(`[...document.querySelectorAll('#rf-cohort-names option')].map(o => o.value)`, &offered))
		if strings.Join(offered, ",") != "brand_co_value,brand_co_label,publisher_value,publisher_label" {
			t.Errorf("the form offers %v", offered)
		}
		tb.run("a dimension", chromedp.Click(sel("rf-add-dimension"), chromedp.ByQuery))
		tb.set(sel("rf-dimension"), "brand_co_lable")
		if m := tb.problemOf(sel("rf-dimension")); !strings.Contains(m, `did you mean "brand_co_label"?`) {
			t.Errorf("a misspelt uploaded column: %q", m)
		}
		var removed bool
		tb.run("remove it", chromedp.Evaluate(`[...document.querySelectorAll('[aria-label^="Remove dimension"]')].pop().click() || true`, &removed))
		tb.set(sel("rf-epsilon_budget"), "9")
		tb.run("propose the change", chromedp.Click(sel("rf-submit"), chromedp.ByQuery), chromedp.WaitVisible(sel("rules-diff"), chromedp.ByQuery))
		if s := tb.text("rules-diff"); !strings.Contains(s, "Each partner's analysts may spend ε 9 in all") {
			t.Errorf("the diff does not explain the change: %q", s)
		}
		co, err := e.pub.admin.Collaboration(ctx, e.collab)
		if err != nil || co.Rules.EpsilonBudget != 9 || co.RulesVersion != 2 {
			t.Errorf("after the change: %+v %v", co.Rules, err)
		}
	})
}

// shotName names a screenshot: the README's at 1400 px, its width's
// otherwise.
func shotName(name string, width int64) string {
	if width == 1400 {
		return name
	}
	return fmt.Sprintf("%s-%d", name, width)
}

// set gives the last element matching css a value as typing or picking
// would, with its input and change events.
func (tb *tab) set(css, value string) {
	tb.t.Helper()
	var ok bool
	tb.run("set "+css, chromedp.Evaluate(fmt.Sprintf(`(() => { const all = document.querySelectorAll(%q); const e = all[all.length - 1];
		if (!e) return false; e.value = %q; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return true })()`, css, value), &ok))
	if !ok {
		tb.t.Fatalf("no %s in the page", css)
	}
}

// problemOf is what the form says is wrong with the last element
// matching css (its message beside it), "" for nothing.
func (tb *tab) problemOf(css string) string {
	tb.t.Helper()
	var s string
	tb.run("problem of "+css, chromedp.Evaluate(fmt.Sprintf(`(() => { const all = document.querySelectorAll(%q); const e = all[all.length - 1];
		const m = (e.getAttribute('aria-describedby') || '').split(' ').map(id => document.getElementById(id)).filter(x => x && x.classList.contains('rf-msg'));
		return m.length ? m[0].textContent : 'no message element' })()`, css), &s))
	return s
}

// explained is the sentence the form shows under a rule's field.
func (tb *tab) explained(css string) string {
	tb.t.Helper()
	var s string
	tb.run("meaning of "+css, chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		const m = (e.getAttribute('aria-describedby') || '').split(' ').map(id => document.getElementById(id)).filter(x => x && x.classList.contains('rf-note'));
		return m.length ? m[0].textContent : '' })()`, css), &s))
	return s
}

// capturePosts records the bodies of the page's POST requests to path;
// the function returns those so far.
func (tb *tab) capturePosts(path string) func() []string {
	var mu sync.Mutex
	var bodies []string
	re := regexp.MustCompile(regexp.QuoteMeta(path) + `$`)
	chromedp.ListenTarget(tb.ctx, func(ev any) {
		r, ok := ev.(*network.EventRequestWillBeSent)
		if !ok || r.Request.Method != "POST" || !re.MatchString(r.Request.URL) {
			return
		}
		var b strings.Builder
		for _, p := range r.Request.PostDataEntries {
			d, err := base64.StdEncoding.DecodeString(p.Bytes)
			if err != nil {
				d = []byte(p.Bytes)
			}
			b.Write(d)
		}
		mu.Lock()
		bodies = append(bodies, b.String())
		mu.Unlock()
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), bodies...)
	}
}
