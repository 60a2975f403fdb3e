package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestConsoleWorkbench: the analyst's workbench as an analyst uses it,
// at 1400 and 390 px. The epsilon control refuses a value past the
// rules' maximum, naming it; a question runs with Ctrl+Enter (Cmd+Enter
// at 390 px) and its intervals read apart; the answer sorts by a column;
// a past answer reopens from the history with Enter at the epsilon it was
// asked with, free; a download is named by the collaboration and the
// time and states its epsilon and time inside; on a collaboration
// without a cohort, or not yet active, Run is off, saying why. Each width is screenshotted
// and checked by axe-core, at 390 px for sideways scrolling.
func TestConsoleWorkbench(t *testing.T) {
	chromiumPath(t)
	ctx := context.Background()
	e := newEnv(t, queryRules)
	e.uploadBoth()
	e.matchBoth()
	// A past answer, at an epsilon of its own, for the history.
	const past = `SELECT publisher_label, COUNT(*) AS people FROM cohort GROUP BY publisher_label`
	var a json.RawMessage
	if err := e.brand.analyst.Query(ctx, e.collab, past, 1, "json", &a); err != nil {
		t.Fatal(err)
	}
	// An active collaboration nobody has uploaded to: no cohort.
	bare, err := e.brand.admin.Propose(ctx, "launch", e.pub.id, json.RawMessage(`{"purpose": "measurement", "dimensions": ["brand_co_label"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.admin.Approve(ctx, bare.ID, bare.RulesVersion); err != nil {
		t.Fatal(err)
	}
	// A collaboration proposed and not yet approved: not active.
	draft, err := e.brand.admin.Propose(ctx, "draft", e.pub.id, json.RawMessage(`{"purpose": "measurement", "dimensions": ["brand_co_label"]}`))
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.srv.URL)
	axe := axeSource(t)

	for _, w := range []struct {
		width int
		eps   string
		mod   input.Modifier
	}{{1400, "0.9", input.ModifierCtrl}, {390, "0.8", input.ModifierMeta}} {
		t.Run(strconv.Itoa(w.width), func(t *testing.T) {
			tb := b.newTab(t, "analyst")
			tb.run("size", chromedp.EmulateViewport(int64(w.width), 900))
			tb.signIn(e.brand.analyst.Key)
			tb.run("workbench", chromedp.Navigate(b.base+"/console/#/collab/"+e.collab+"/workbench"),
				chromedp.WaitVisible(sel("sql"), chromedp.ByQuery),
				chromedp.WaitVisible(sel("schema-column")+`[data-name="brand_co_value"]`, chromedp.ByQuery),
				chromedp.WaitVisible(sel("history-item"), chromedp.ByQuery),
				chromedp.WaitVisible(sel("budget-questions"), chromedp.ByQuery))

			// The schema: each column as queries name it, its type, its
			// use under the rules and its bounds.
			var schema map[string]string
			tb.run("schema", chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll('[data-test="schema-column"]')]
				.map(r => [r.dataset.name, [...r.children].map(c => c.textContent).join(' | ')]))`, &schema))
			for name, want := range map[string]string{
				"brand_co_value":  "brand_co_value | number | metric: SUM, AVG… | 0 to 50",
				"brand_co_label":  "brand_co_label | text | dimension: group, filter | –",
				"publisher_value": "publisher_value | number | not allowed by the rules | –",
			} {
				if schema[name] != want {
					t.Errorf("the schema shows %s as %q, want %q", name, schema[name], want)
				}
			}

			// The epsilon control: the rules' default to start, and a value
			// past the maximum refused there, the bound named, Run off and
			// no "would leave".
			var start string
			tb.run("default epsilon", chromedp.Value(sel("epsilon"), &start, chromedp.ByQuery))
			if start != "0.09" {
				t.Errorf("the epsilon starts at %q, want the rules' default_query_epsilon 0.09", start)
			}
			setEpsilon := func(v string) chromedp.Action {
				return chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector('[data-test="epsilon"]'); e.value = %q; e.dispatchEvent(new Event('input')); })()`, v), nil)
			}
			var disabled bool
			tb.run("too much epsilon", setEpsilon("5"), chromedp.WaitVisible(sel("epsilon-error"), chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('[data-test="run-query"]').disabled`, &disabled))
			if msg := tb.text("epsilon-error"); !strings.Contains(msg, "maximum") || !strings.Contains(msg, "ε 1 ") || !strings.Contains(msg, "max_query_epsilon") {
				t.Errorf("epsilon 5 past the maximum 1 reads %q", msg)
			}
			if !disabled {
				t.Error("Run stays on for an epsilon past the rules' maximum")
			}
			var page string
			tb.run("page text", chromedp.Text("main", &page, chromedp.ByQuery))
			if strings.Contains(page, "would leave") {
				t.Error("the page says what an impossible epsilon would leave")
			}

			// A refusal at a place in the SQL says where once, as a line and
			// column, never "at position 24 … (at byte 24)".
			tb.run("a syntax error", chromedp.SetValue(sel("sql"), "SELECT COUNT(*)\nFROM cohort WHERE WHERE", chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('[data-test="sql"]').dispatchEvent(new Event('input'))`, nil),
				setEpsilon(w.eps),
				chromedp.Poll(`document.querySelector('[data-test="preview"]').textContent.includes('refused')`, nil))
			if pv := tb.text("preview"); !strings.Contains(pv, "line 2, column ") || strings.Contains(pv, "position") || strings.Contains(pv, "byte") {
				t.Errorf("a syntax error's place reads %q", pv)
			}

			// Ctrl+Enter (Cmd+Enter) runs the question in the editor.
			q := `SELECT brand_co_label, COUNT(*) AS people, AVG(brand_co_value) AS value FROM cohort GROUP BY brand_co_label`
			tb.run("a question", chromedp.SetValue(sel("sql"), q, chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('[data-test="sql"]').dispatchEvent(new Event('input'))`, nil),
				setEpsilon(w.eps),
				chromedp.Poll(`document.querySelector('[data-test="epsilon-error"]').hidden`, nil))
			tb.run("its preview", chromedp.Poll(`document.querySelector('[data-test="preview"]').textContent.includes('Run would spend') && !document.querySelector('[data-test="run-query"]').disabled`, nil))
			tb.run("Ctrl+Enter", chromedp.Focus(sel("sql"), chromedp.ByQuery),
				chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(w.mod)),
				chromedp.WaitVisible(sel("answer-table")+" tbody tr", chromedp.ByQuery),
				chromedp.WaitVisible(sel("answer-chart")+`[data-rendered="true"]`, chromedp.ByQuery))
			if s := tb.text("answer-summary"); !strings.Contains(s, "Charged ε "+w.eps) || !strings.Contains(s, "Brand Co (your company) has ε") || strings.Contains(s, "your partner") {
				t.Errorf("the answer's summary reads %q", s)
			}
			if got := tb.text("budget-whose"); !strings.Contains(got, "Brand Co (your company)") || !strings.Contains(got, "the other party, Publisher") {
				t.Errorf("the budget names its owner %q", got)
			}
			// Intervals read apart from their value: "21.62, 95%: 21.47 –
			// 21.77", never "21.6, 95%: 21.6 – 21.6".
			var cells []string
			tb.run("cells", chromedp.Evaluate(`[...document.querySelectorAll('[data-test="answer-table"] td.n')].map(td => td.textContent)`, &cells))
			ivRe := regexp.MustCompile(`^(.+), 95%: (.+) – (.+)$`)
			for _, c := range cells {
				m := ivRe.FindStringSubmatch(c)
				if m == nil || m[1] == m[2] || m[1] == m[3] || m[2] == m[3] {
					t.Errorf("an aggregate cell reads %q: value and interval bounds must read apart", c)
				}
			}

			// Sorted by the grouping column; a header (at 390 px, where the
			// table is cards, the sort menu) sorts by another.
			rowsBy := func(col int) []string {
				var out []string
				tb.run("column", chromedp.Evaluate(fmt.Sprintf(`[...document.querySelectorAll('[data-test="answer-table"] tbody tr')].map(tr => tr.children[%d].textContent)`, col), &out))
				return out
			}
			sortOf := func(col int) string {
				var s string
				tb.run("aria-sort", chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll('[data-test="answer-table"] th')[%d].getAttribute('aria-sort')`, col), &s))
				return s
			}
			if labels := rowsBy(0); !isSorted(labels, 1) || sortOf(0) != "ascending" {
				t.Errorf("the answer is not sorted by its grouping column: %q (aria-sort %s)", labels, sortOf(0))
			}
			sortPeople := func(dir string) chromedp.Action {
				if w.width < 600 {
					v := "1:1"
					if dir == "descending" {
						v = "1:-1"
					}
					return chromedp.Evaluate(fmt.Sprintf(`(() => { const s = document.querySelector('[data-test="answer-sort"]'); s.value = %q; s.dispatchEvent(new Event('change')); })()`, v), nil)
				}
				return chromedp.Click(sel("sort-people"), chromedp.ByQuery)
			}
			for i, dir := range []string{"ascending", "descending"} {
				tb.run("sort by people", sortPeople(dir))
				people := rowsBy(1)
				var nums []float64
				for _, p := range people {
					v, _, _ := strings.Cut(p, ", 95%")
					n, err := strconv.ParseFloat(strings.ReplaceAll(v, ",", ""), 64)
					if err != nil {
						t.Fatalf("a count reads %q", p)
					}
					nums = append(nums, n)
				}
				if !isSortedNums(nums, 1-2*i) || sortOf(1) != dir || sortOf(0) != "none" {
					t.Errorf("sorted by people %s: %v (aria-sort %s, first column %s)", dir, nums, sortOf(1), sortOf(0))
				}
			}
			tb.shot(fmt.Sprintf("workbench-analyst-%d", w.width))
			tb.axeCheck(axe, fmt.Sprintf("workbench at %d px", w.width))
			if w.width < 600 {
				tb.noSideways("workbench at 390 px")
			}

			// The past answer, reopened from the history with Enter: as it
			// was, at its own epsilon, free.
			spent := func() float64 {
				bb, _ := e.budget(e.brand.analyst.Key)
				return bb.Budgets[0].Spent
			}
			before := spent()
			item := sel("history-item") + `[data-outcome="answered"]:last-child`
			var itemText string
			tb.run("the oldest answer", chromedp.Text(item, &itemText, chromedp.ByQuery))
			if !strings.Contains(itemText, "publisher_label") {
				t.Fatalf("the oldest history item is %q, want the past question", itemText)
			}
			tb.run("reopen with Enter", chromedp.Focus(item, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter),
				chromedp.WaitVisible(sel("answer")+`[data-cached="true"]`, chromedp.ByQuery))
			var epsAttr, epsValue string
			var ok bool
			tb.run("its epsilon", chromedp.AttributeValue(sel("answer"), "data-epsilon", &epsAttr, &ok, chromedp.ByQuery),
				chromedp.Value(sel("epsilon"), &epsValue, chromedp.ByQuery))
			if s := tb.text("answer-summary"); epsAttr != "1" || epsValue != "1" || !strings.Contains(s, "as it was: released at ε 1,") || tb.count(sel("answer-table")+" tbody tr") == 0 {
				t.Errorf("the reopened answer: epsilon %q (control %q), summary %q", epsAttr, epsValue, s)
			}
			if after := spent(); after != before {
				t.Errorf("reopening a past answer spent ε %v", after-before)
			}

			// The download: named by the collaboration and the time, with
			// the epsilon, noise and time inside.
			dir := t.TempDir()
			asked := time.Now().UTC().Truncate(time.Second)
			tb.run("download", cdpbrowser.SetDownloadBehavior(cdpbrowser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(dir),
				chromedp.Click(sel("download-csv"), chromedp.ByQuery),
				chromedp.Poll(`document.querySelector('[data-test="download-note"]').textContent.startsWith('Downloaded')`, nil))
			file := downloaded(t, dir, ".csv")
			name := filepath.Base(file)
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			body := string(raw)
			if !regexp.MustCompile(`^campaign-\d{4}-\d\d-\d\dT\d{4}Z\.csv$`).MatchString(name) {
				t.Errorf("the download is named %q, want campaign-<UTC time>.csv", name)
			}
			if ft, err := time.Parse("2006-01-02T1504Z", strings.TrimSuffix(strings.TrimPrefix(name, "campaign-"), ".csv")); err != nil || ft.Before(asked.Truncate(time.Minute)) || ft.After(time.Now().Add(time.Minute)) {
				t.Errorf("the download's name %q does not say when: %v", name, err)
			}
			meta, rest := csvComments(t, []byte(body))
			at, err := time.Parse(time.RFC3339, meta["answered_at"])
			if meta["epsilon"] != "1" || meta["noise"] != "laplace" || meta["collaboration"] != "campaign" || err != nil || at.Before(asked) {
				t.Errorf("the CSV states %v (answered_at: %v)", meta, err)
			}
			if !strings.HasPrefix(string(rest), "publisher_label,people,") {
				t.Errorf("the CSV after its comments:\n%s", rest)
			}
			if after := spent(); after != before {
				t.Errorf("downloading the stored answer spent ε %v", after-before)
			}

			// Once a deletion has changed the cohort, the past answer is no
			// longer stored: reopening it says so and charges nothing.
			if w.width < 600 {
				if _, err := e.brand.eng.DeleteIDs(ctx, e.collab, e.brand.key, blindPeople(t, e.brand.key, 11), false); err != nil {
					t.Fatal(err)
				}
				tb.expect("status of 409")
				tb.run("reopen after a deletion", chromedp.Focus(item, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter),
					chromedp.WaitVisible(sel("reopen-gone"), chromedp.ByQuery))
				if s := tb.text("reopen-gone"); !strings.Contains(s, "no longer stored") || !strings.Contains(s, "back in the editor") {
					t.Errorf("reopening an answer no longer stored says %q", s)
				}
				if after := spent(); after != before {
					t.Errorf("reopening an answer no longer stored spent ε %v", after-before)
				}
			}

			// A collaboration without a cohort: Run is off, and says why.
			tb.run("no cohort", chromedp.Navigate(b.base+"/console/#/collab/"+bare.ID+"/workbench"),
				chromedp.WaitVisible(sel("run-reason"), chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('[data-test="run-query"]').disabled`, &disabled))
			if why := tb.text("run-reason"); !disabled || !strings.Contains(why, "no cohort yet") || !strings.Contains(why, "match") {
				t.Errorf("without a cohort Run is disabled %v, saying %q", disabled, why)
			}
			tb.reachable("no cohort", sel("run-reason"))
			tb.shot(fmt.Sprintf("workbench-no-cohort-%d", w.width))
			tb.run("not active", chromedp.Navigate(b.base+"/console/#/collab/"+draft.ID+"/workbench"),
				chromedp.Poll(`(document.querySelector('[data-test="run-reason"]') || {}).textContent?.includes('not active')`, nil),
				chromedp.Evaluate(`document.querySelector('[data-test="run-query"]').disabled`, &disabled))
			if !disabled {
				t.Error("Run is on in a collaboration that is not active")
			}
			tb.axeCheck(axe, fmt.Sprintf("workbench without a cohort at %d px", w.width))
			if w.width < 600 {
				tb.noSideways("workbench without a cohort at 390 px")
			}
		})
	}
}

func isSorted(s []string, dir int) bool {
	for i := 1; i < len(s); i++ {
		if dir*strings.Compare(s[i-1], s[i]) > 0 {
			return false
		}
	}
	return len(s) > 1
}

func isSortedNums(s []float64, dir int) bool {
	for i := 1; i < len(s); i++ {
		if float64(dir)*(s[i-1]-s[i]) > 0 {
			return false
		}
	}
	return len(s) > 1
}
