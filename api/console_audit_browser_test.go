package api_test

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/cleanroom/cleanroom/internal/auditlog"
)

// TestConsoleAudit is the auditor's day in the console, in a New York
// browser, on a desktop and on a phone: filter the log by a
// collaboration's name, an action's prefix and a time in UTC, jump to a
// page, open the view's URL afresh (as a colleague the link went to
// would) and find it restored, and download the filtered view as CSV.
func TestConsoleAudit(t *testing.T) {
	chromiumPath(t)
	e := newAuditFilterEnv(t)
	ctx := context.Background()
	// More queries than a page (100), each by the brand's key labelled
	// like a formula.
	if err := e.db.Write(ctx, func(tx *sql.Tx) error {
		for i := 0; i < 120; i++ {
			if _, err := auditlog.Append(ctx, tx, e.formulaKeyID, e.brand.id, e.collab, "query.cached", map[string]any{"sql": "SELECT COUNT(*) AS n FROM cohort", "n": i}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// "From" is the second of the refused query: the entry at that very
	// second must be in the view (a picker read as New York time would
	// start five hours later and find nothing).
	refused := auditGet(t, e.brand.audit, url.Values{"action": {"query.refused"}}).Entries
	if len(refused) != 1 {
		t.Fatalf("the log has %d refused queries, want 1", len(refused))
	}
	at := refused[0].At // 2026-12-07T00:51:29Z
	want := auditGet(t, e.brand.audit, url.Values{"collab": {e.collab}, "action": {"query"}, "since": {at}, "order": {"desc"}, "limit": {"1000"}})
	if want.Total <= 100 {
		t.Fatalf("the filtered view has %d entries; the test needs more than a page", want.Total)
	}
	b := newBrowser(t, e.srv.URL)

	for _, width := range []int64{1400, 390} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			tb := b.newTab(t, "auditor")
			tb.run("a New York browser", emulation.SetTimezoneOverride("America/New_York"), chromedp.EmulateViewport(width, 900))
			tb.signIn(e.brand.audit.Key)
			tb.run("the log", chromedp.Navigate(b.base+"/console/#/audit"), chromedp.WaitVisible(sel("audit-row"), chromedp.ByQuery))
			if z := tb.text("audit-zone"); !strings.Contains(z, "UTC") {
				t.Errorf("the pickers do not state their zone: %q", z)
			}
			tb.run("filter",
				chromedp.SetValue(sel("audit-filter-collab"), "campaign", chromedp.ByQuery),
				chromedp.SetValue(sel("audit-filter-action"), "query", chromedp.ByQuery),
				chromedp.SetValue(sel("audit-filter-since"), strings.TrimSuffix(at, "Z"), chromedp.ByQuery),
				chromedp.Click(sel("audit-apply"), chromedp.ByQuery),
				chromedp.Poll(fmt.Sprintf(`document.querySelector('[data-test="audit-total"]').textContent.startsWith(%q)`, fmt.Sprintf("%d entries", want.Total)), nil,
					chromedp.WithPollingInterval(50*time.Millisecond)))
			hash := tb.hash()
			for _, p := range []string{"collab=campaign", "action=query", "since=" + url.QueryEscape(at)} {
				if !strings.Contains(hash, p) {
					t.Errorf("the URL %s lacks %s", hash, p)
				}
			}
			first := tb.seqs()
			if len(first) != 100 || first[0] != want.Entries[0].Seq {
				t.Fatalf("the first page shows %d entries from #%v, want 100 from #%d", len(first), first[:min(len(first), 1)], want.Entries[0].Seq)
			}
			if r := tb.text("audit-row"); !strings.Contains(r, formulaLabel) || !strings.Contains(r, "query.") {
				t.Errorf("a row shows %q, want the action and its key's label %s", r, formulaLabel)
			}
			if w := tb.text("audit-pages"); w != "of 2" {
				t.Errorf("the pager says %q, want of 2", w)
			}

			// Page 2, by the jump.
			tb.run("jump to page 2", chromedp.SetValue(sel("audit-page"), "2", chromedp.ByQuery), chromedp.Click(sel("audit-go"), chromedp.ByQuery),
				chromedp.Poll(fmt.Sprintf(`+document.querySelector('[data-test="audit-row"]')?.dataset.seq == %d`, want.Entries[100].Seq), nil))
			second := tb.seqs()
			if len(second) != int(want.Total)-100 || !slices.Contains(second, refused[0].Seq) {
				t.Errorf("page 2 shows %v, want the %d last entries, the refused query #%d among them", second, want.Total-100, refused[0].Seq)
			}
			hash = tb.hash()
			if !strings.Contains(hash, "page=2") {
				t.Errorf("the URL %s lacks the page", hash)
			}
			tb.shot(fmt.Sprintf("audit-filtered-%d", width))

			// The link, opened in a new tab and signed in, is the same view.
			other := b.newTab(t, "*")
			other.run("open the link", emulation.SetTimezoneOverride("America/New_York"), chromedp.EmulateViewport(width, 900),
				chromedp.Navigate(b.base+"/console/"+hash),
				chromedp.WaitVisible(sel("signin-key"), chromedp.ByQuery),
				chromedp.SendKeys(sel("signin-key"), e.brand.audit.Key, chromedp.ByQuery),
				chromedp.Click(sel("signin-submit"), chromedp.ByQuery),
				chromedp.WaitVisible(sel("audit-row"), chromedp.ByQuery))
			if got := other.seqs(); !slices.Equal(got, second) {
				t.Errorf("the link shows %v, want %v", got, second)
			}
			for name, wantV := range map[string]string{"audit-filter-collab": "campaign", "audit-filter-action": "query", "audit-filter-since": strings.TrimSuffix(at, "Z"), "audit-page": "2"} {
				var v string
				other.run("read "+name, chromedp.Value(sel(name), &v, chromedp.ByQuery))
				if v != wantV {
					t.Errorf("the link restores %s as %q, want %q", name, v, wantV)
				}
			}
			// Back goes to the first page.
			tb.run("back", chromedp.NavigateBack(),
				chromedp.Poll(fmt.Sprintf(`+document.querySelector('[data-test="audit-row"]')?.dataset.seq == %d`, first[0]), nil))

			// The CSV is the whole filtered view, not a page.
			dir := t.TempDir()
			tb.run("download the CSV", cdpbrowser.SetDownloadBehavior(cdpbrowser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(dir),
				chromedp.Click(sel("audit-csv"), chromedp.ByQuery), chromedp.WaitVisible(sel("audit-csv-link"), chromedp.ByQuery))
			recs := downloadedCSV(t, dir)
			if len(recs)-1 != int(want.Total) {
				t.Fatalf("the CSV has %d entries, the view %d", len(recs)-1, want.Total)
			}
			for _, r := range recs[1:] {
				if !strings.HasPrefix(r[2], "query.") || r[8] != "campaign" {
					t.Errorf("the CSV holds %s of %q, outside the filters", r[2], r[8])
				}
				if r[3] == e.formulaKeyID && r[4] != "'"+formulaLabel {
					t.Errorf("the CSV's label cell %q is not defused", r[4])
				}
			}
			if width < 1000 {
				tb.fitsPhone()
			}
		})
	}
}

func (tb *tab) hash() string {
	tb.t.Helper()
	var h string
	tb.run("the URL", chromedp.Evaluate(`location.hash`, &h))
	return h
}

// seqs are the entries the log shows, by sequence number.
func (tb *tab) seqs() []int64 {
	tb.t.Helper()
	var out []int64
	tb.run("rows", chromedp.Evaluate(`[...document.querySelectorAll('[data-test="audit-row"]')].map(r => +r.dataset.seq)`, &out))
	return out
}

// downloadedCSV waits for the one CSV the browser saves in dir.
func downloadedCSV(t *testing.T, dir string) [][]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
		if len(files) == 1 {
			raw, err := os.ReadFile(files[0])
			if err == nil && len(raw) > 0 {
				recs, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
				if err == nil {
					return recs
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CSV downloaded to %s: %v", dir, files)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
