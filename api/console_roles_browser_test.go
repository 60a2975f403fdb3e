package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/cleanroom/cleanroom/audit"
	"github.com/cleanroom/cleanroom/client"
	"github.com/cleanroom/cleanroom/wire"
)

// Each role's own tasks in the console, as the role that does them, at a
// desktop's 1400 px and a phone's 390 px: the operator creates a partner,
// an admin creates and revokes keys, an engineer reads its tables and
// match and verifies a deletion receipt in the page. Each view is checked
// by axe-core, for sideways scrolling at 390 px, and by the tab for
// console errors and for requests the role may not make.

// roleWidths are the widths each task runs at.
var roleWidths = []int64{1400, 390}

// openAs opens a tab signed in as role at width, on the console's hash.
func openAs(t *testing.T, b *browser, role, secret string, width int64, hash string) *tab {
	t.Helper()
	tb := b.newTab(t, role)
	tb.run("viewport", chromedp.EmulateViewport(width, 900))
	tb.signIn(secret)
	tb.run("open "+hash, chromedp.Navigate(b.base+"/console/"+hash))
	return tb
}

// checkView is what every view must pass: axe, no sideways scrolling at
// 390 px, its actions reachable, and a screenshot.
func (tb *tab) checkView(axe, name string, width int64, actions ...string) {
	tb.t.Helper()
	where := fmt.Sprintf("%s at %d px", name, width)
	tb.run("settle", chromedp.Sleep(150*time.Millisecond))
	tb.axeCheck(axe, where)
	if width < 600 {
		tb.noSideways(where)
	}
	tb.reachable(where, append([]string{sel("signout")}, actions...)...)
	tb.run("top", chromedp.Evaluate(`window.scrollTo(0, 0)`, nil))
	tb.shot(fmt.Sprintf("roles-%s-%d", name, width))
	if width == 1400 {
		tb.shot(name) // the README's (make screenshots)
	}
}

// copyWorks clicks the copy button of the secret shown and checks the
// secret reached the clipboard (or, where the browser refuses, that it is
// left selected for Ctrl+C, and the page says so).
func (tb *tab) copyWorks(secret string) {
	tb.t.Helper()
	tb.run("allow the clipboard", cdpbrowser.GrantPermissions([]cdpbrowser.PermissionType{
		cdpbrowser.PermissionTypeClipboardReadWrite, cdpbrowser.PermissionTypeClipboardSanitizedWrite}).WithOrigin(tb.b.base))
	tb.run("copy", chromedp.Click(sel("copy-secret"), chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('[data-test="copy-status"]').textContent !== ''`, nil, chromedp.WithPollingInterval(50*time.Millisecond)))
	status := tb.text("copy-status")
	tb.t.Logf("copy: %s", status)
	if strings.HasPrefix(status, "Copied") {
		var got string
		tb.run("read the clipboard", evalAsync(`navigator.clipboard.readText()`, &got))
		if got != secret {
			tb.t.Errorf("the clipboard holds %q, want the secret", got)
		}
		return
	}
	var selected string
	tb.run("selection", chromedp.Evaluate(`(() => { const f = document.querySelector('[data-test="secret"]'); return f.value.slice(f.selectionStart, f.selectionEnd); })()`, &selected))
	if selected != secret || !strings.Contains(status, "Ctrl+C") {
		tb.t.Errorf("copy: the page says %q and %q is selected; want the secret copied, or selected with advice", status, selected)
	}
}

// TestConsoleRolesPartners: the operator creates a partner and sees its
// first admin key's secret once, with a copy button.
func TestConsoleRolesPartners(t *testing.T) {
	chromiumPath(t)
	axe := axeSource(t)
	e := newEnv(t, queryRules)
	b := newBrowser(t, e.srv.URL)
	ctx := context.Background()
	for _, w := range roleWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			tb := openAs(t, b, "operator", e.op.Key, w, "#/partners")
			tb.run("the list", chromedp.WaitVisible(sel("partner-item"), chromedp.ByQuery), loaded("partners"))
			for _, id := range []string{e.brand.id, e.pub.id} {
				if tb.count(fmt.Sprintf(`[data-test="partner-item"][data-id=%q]`, id)) != 1 {
					t.Errorf("the list lacks partner %s", id)
				}
			}
			name := fmt.Sprintf("Retailer %d", w)
			tb.run("create", chromedp.SendKeys(sel("partner-name"), name, chromedp.ByQuery), chromedp.Click(sel("partner-create"), chromedp.ByQuery),
				chromedp.WaitVisible(sel("secret-once"), chromedp.ByQuery))
			var secret string
			tb.run("the secret", chromedp.Value(sel("secret"), &secret, chromedp.ByQuery))
			if once := tb.text("secret-once"); !strings.Contains(once, "will not be shown again") || !strings.Contains(once, "give it to the partner's admin alone") {
				t.Errorf("the secret is shown with %q, want the warning that it is shown once and the advice to rotate it", once)
			}
			me, err := client.New(e.srv.URL, secret).Me(ctx)
			if err != nil || me.Role != wire.Admin || me.PartnerName != name {
				t.Fatalf("the secret shown is %+v, %v; want the new partner's admin key", me, err)
			}
			tb.run("listed", chromedp.Poll(fmt.Sprintf(`[...document.querySelectorAll('[data-test="partner-item"]')].some(r => r.dataset.id === %q)`, me.PartnerID), nil))
			tb.copyWorks(secret)
			tb.checkView(axe, "partners", w, sel("partner-name"), sel("partner-create"), sel("copy-secret"))

			// The new partner's admin signs in with it: no collaboration
			// yet, and the page links to the rules form to propose one.
			admin := openAs(t, b, "admin", secret, w, "#/collabs")
			admin.run("empty list", chromedp.WaitVisible(sel("collab-list"), chromedp.ByQuery), loaded("collab-list"))
			if s := admin.text("collab-list"); !strings.Contains(s, "No collaboration yet") || strings.Contains(s, "cleanroom collab propose") {
				t.Errorf("a new partner's admin reads %q, want what to do next, in the console", s)
			}
			var href string
			admin.run("the form's link", chromedp.WaitVisible(sel("propose-link"), chromedp.ByQuery),
				chromedp.Evaluate(`document.querySelector('[data-test="propose-link"]').getAttribute('href')`, &href))
			if href != "#/collab/new" {
				t.Errorf("the empty list links to %q", href)
			}

			// A name already taken is refused, in the form.
			tb.expect("status of 409")
			tb.run("again", chromedp.SendKeys(sel("partner-name"), name, chromedp.ByQuery), chromedp.Click(sel("partner-create"), chromedp.ByQuery),
				chromedp.WaitVisible(sel("partner-error"), chromedp.ByQuery))
			if tb.count(sel("secret-once")) != 0 {
				t.Error("after a refused name the earlier secret is still shown")
			}

			// Shown once: the view drawn again has no secret.
			tb.run("away and back", chromedp.Navigate(b.base+"/console/#/collabs"), chromedp.WaitVisible(sel("collab-list"), chromedp.ByQuery),
				chromedp.Navigate(b.base+"/console/#/partners"), chromedp.WaitVisible(sel("partner-item"), chromedp.ByQuery))
			var html string
			tb.run("page", chromedp.OuterHTML("html", &html, chromedp.ByQuery))
			if strings.Contains(html, secret) {
				t.Error("the secret is in the page again after leaving it")
			}
		})
	}
}

// TestConsoleRolesKeys: an admin creates a key (its secret shown once,
// copied), revokes it after confirming, and is told in plain words why
// its partner's last admin key cannot be revoked.
func TestConsoleRolesKeys(t *testing.T) {
	chromiumPath(t)
	axe := axeSource(t)
	e := newEnv(t, queryRules)
	b := newBrowser(t, e.srv.URL)
	ctx := context.Background()
	admin, err := e.pub.admin.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range roleWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			tb := openAs(t, b, "admin", e.pub.admin.Key, w, "#/keys")
			tb.run("the list", chromedp.WaitVisible(sel("key-item"), chromedp.ByQuery), loaded("keys"))
			if n := tb.count(sel("key-item")); n < 4 {
				t.Errorf("the list shows %d keys, want the admin's, engineer's, analyst's and auditor's at least", n)
			}
			label := fmt.Sprintf("dashboard %d", w)
			tb.run("create", chromedp.SendKeys(sel("key-label"), label, chromedp.ByQuery), chromedp.SetValue(sel("key-role"), "analyst", chromedp.ByQuery),
				chromedp.Click(sel("key-create"), chromedp.ByQuery), chromedp.WaitVisible(sel("secret-once"), chromedp.ByQuery))
			var secret string
			tb.run("the secret", chromedp.Value(sel("secret"), &secret, chromedp.ByQuery))
			if !strings.Contains(tb.text("secret-once"), "will not be shown again") {
				t.Error("the new key's secret is shown without saying it is shown once")
			}
			k := client.New(e.srv.URL, secret)
			me, err := k.Me(ctx)
			if err != nil || me.Role != wire.Analyst || me.Label != label || me.PartnerID != e.pub.id {
				t.Fatalf("the secret shown is %+v, %v; want the new analyst key", me, err)
			}
			tb.copyWorks(secret)
			row := fmt.Sprintf(`[data-test="key-item"][data-id=%q]`, me.KeyID)
			tb.run("listed", chromedp.WaitVisible(row, chromedp.ByQuery))
			tb.checkView(axe, "keys", w, sel("key-label"), sel("key-role"), sel("key-create"), row+" "+sel("key-revoke"))

			// Revoke asks first; Cancel leaves the key working.
			tb.run("revoke, then cancel", chromedp.Click(row+" "+sel("key-revoke"), chromedp.ByQuery),
				chromedp.WaitVisible(row+" "+sel("key-revoke-question"), chromedp.ByQuery))
			if q := tb.text("key-revoke-question"); !strings.Contains(q, label) || !strings.Contains(q, "refused from now on") {
				t.Errorf("the confirmation says %q", q)
			}
			tb.reachable(fmt.Sprintf("confirm at %d px", w), row+" "+sel("key-revoke-confirm"), row+" "+sel("key-revoke-cancel"))
			tb.run("cancel", chromedp.Click(row+" "+sel("key-revoke-cancel"), chromedp.ByQuery), chromedp.WaitVisible(row+" "+sel("key-revoke"), chromedp.ByQuery))
			if _, err := k.Me(ctx); err != nil {
				t.Fatalf("after Cancel the key is refused: %v", err)
			}
			tb.run("revoke", chromedp.Click(row+" "+sel("key-revoke"), chromedp.ByQuery),
				chromedp.Click(row+" "+sel("key-revoke-confirm"), chromedp.ByQuery),
				chromedp.Poll(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ''}).textContent.includes('revoked')`, row), nil))
			if _, err := k.Me(ctx); err == nil {
				t.Error("the revoked key still works")
			}
			if tb.count(row+" "+sel("key-revoke")) != 0 {
				t.Error("a revoked key still offers Revoke")
			}

			// The last admin key: refused, and said in plain words.
			tb.expect("status of 409")
			mine := fmt.Sprintf(`[data-test="key-item"][data-id=%q]`, admin.KeyID)
			tb.run("revoke the last admin key", chromedp.Click(mine+" "+sel("key-revoke"), chromedp.ByQuery),
				chromedp.WaitVisible(mine+" "+sel("key-revoke-question"), chromedp.ByQuery))
			if q := tb.text("key-revoke-question"); !strings.Contains(q, "signed in with") {
				t.Errorf("revoking one's own key does not say it signs one out: %q", q)
			}
			tb.run("confirm", chromedp.Click(mine+" "+sel("key-revoke-confirm"), chromedp.ByQuery), chromedp.WaitVisible(mine+" "+sel("key-error"), chromedp.ByQuery))
			msg := tb.text("key-error")
			if !strings.Contains(msg, "last admin key") || !strings.Contains(msg, "Create another admin key first") || strings.Contains(msg, "last_admin_key") {
				t.Errorf("the last admin key's refusal says %q, want plain words and what to do", msg)
			}
			if _, err := e.pub.admin.Me(ctx); err != nil {
				t.Fatalf("the last admin key was revoked: %v", err)
			}
			tb.reachable(fmt.Sprintf("refusal at %d px", w), mine+" "+sel("key-error"), sel("signout"))
			tb.shot(fmt.Sprintf("roles-keys-last-admin-%d", w))
		})
	}
}

// TestConsoleRolesData: an engineer sees its tables and consent mix, the
// match, and its deletions and opt-outs; downloads a receipt and verifies
// it in the page, from the file; a tampered copy fails. A collaboration
// with nothing yet says what to run.
func TestConsoleRolesData(t *testing.T) {
	chromiumPath(t)
	axe := axeSource(t)
	e := newEnv(t, queryRules)
	ctx := context.Background()
	e.uploadBoth()
	e.matchBoth()
	if _, err := e.brand.eng.DeleteIDs(ctx, e.collab, e.brand.key, blindPeople(t, e.brand.key, 3, 5), false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.brand.eng.DeleteIDs(ctx, e.collab, e.brand.key, blindPeople(t, e.brand.key, 7), true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.brand.eng.AccessRequest(ctx, e.collab, e.brand.key, blindPeople(t, e.brand.key, 11)[0]); err != nil {
		t.Fatal(err)
	}
	co, err := e.brand.admin.Propose(ctx, "spring", e.pub.id, json.RawMessage(`{"purpose": "measurement"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.admin.Approve(ctx, co.ID, co.RulesVersion); err != nil {
		t.Fatal(err)
	}
	// A third whose match waits for the publisher's half.
	waitCo, err := e.brand.admin.Propose(ctx, "autumn", e.pub.id, json.RawMessage(`{"purpose": "measurement"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.admin.Approve(ctx, waitCo.ID, waitCo.RulesVersion); err != nil {
		t.Fatal(err)
	}
	brandRows, pubRows, _ := audiences()
	if _, err := e.brand.eng.Upload(ctx, waitCo.ID, bytes.NewReader(encode(t, e.brand.key, brandRows))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.eng.Upload(ctx, waitCo.ID, bytes.NewReader(encode(t, e.pub.key, pubRows))); err != nil {
		t.Fatal(err)
	}
	m, err := e.brand.eng.StartMatch(ctx, waitCo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.brand.eng.ReblindPoints(ctx, waitCo.ID, m.ID, e.brand.key, client.MatchOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := e.brand.eng.Audiences(ctx, e.collab)
	if err != nil {
		t.Fatal(err)
	}
	own := list.Tables[e.brand.id][0]
	pubKey, err := e.brand.eng.AuditPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKey(pubKey)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.srv.URL)
	card := fmt.Sprintf(`[data-test="data-collab"][data-id=%q]`, e.collab)
	empty := fmt.Sprintf(`[data-test="data-collab"][data-id=%q]`, co.ID)
	for _, w := range roleWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			tb := openAs(t, b, "engineer", e.brand.eng.Key, w, "#/data")
			tb.run("the page", chromedp.WaitVisible(card+" "+sel("receipt-item"), chromedp.ByQuery),
				chromedp.WaitVisible(card+" "+sel("data-match"), chromedp.ByQuery), chromedp.WaitVisible(empty+" "+sel("data-no-tables"), chromedp.ByQuery),
				chromedp.WaitVisible(card+" "+sel("access-item"), chromedp.ByQuery),
				loaded("data-tables", "data-matches", "data-receipts", "data-access"))
			var tables string
			tb.run("tables", chromedp.Text(card+" "+sel("data-table"), &tables, chromedp.ByQuery))
			for _, want := range []string{own.Table, fmt.Sprintf("%d", own.Rows), fmt.Sprintf("%d", own.PeopleMatchable)} {
				if !strings.Contains(strings.ReplaceAll(tables, ",", ""), want) {
					t.Errorf("the table reads %q, want %s in it", tables, want)
				}
			}
			var consent string
			tb.run("consent", chromedp.Text(card+" "+sel("data-consent"), &consent, chromedp.ByQuery))
			if !strings.Contains(consent, "measurement") || !strings.Contains(consent, "marketing") {
				t.Errorf("the consent mix reads %q, want both purposes", consent)
			}
			var match string
			tb.run("match", chromedp.Text(card+" "+sel("data-match"), &match, chromedp.ByQuery))
			if !strings.Contains(match, "done") {
				t.Errorf("the match reads %q, want done with its noisy size", match)
			}
			if n := tb.count(card + " " + sel("receipt-item")); n != 2 {
				t.Errorf("%d receipts listed, want the deletion and the opt-out", n)
			}
			var access string
			tb.run("access", chromedp.Text(card+" "+sel("access-item"), &access, chromedp.ByQuery))
			if !strings.Contains(access, "engineer") || !strings.Contains(access, "1 (audience 1)") {
				t.Errorf("the access request reads %q, want the asking key's label and the row it found", access)
			}
			waiting := fmt.Sprintf(`[data-test="data-collab"][data-id=%q] [data-test="data-match-note"]`, waitCo.ID)
			tb.run("a waiting match", chromedp.Poll(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ''}).textContent.includes('waiting')`, waiting), nil))
			var note string
			tb.run("its note", chromedp.Text(waiting, &note, chromedp.ByQuery))
			if !strings.Contains(note, "your half is in") || !strings.Contains(note, "the other partner's engineer") {
				t.Errorf("the waiting match says %q, want whose half is missing", note)
			}
			var cmds string
			tb.run("commands", chromedp.Text(empty, &cmds, chromedp.ByQuery))
			for _, want := range []string{"cleanroom upload --collab " + co.ID, "cleanroom match --collab " + co.ID, "No deletion or opt-out yet", "No access request yet",
				"cleanroom access-request --psi-key " + co.ID + "=KEYFILE"} {
				if !strings.Contains(cmds, want) {
					t.Errorf("the empty collaboration does not say %q: %q", want, cmds)
				}
			}
			tb.checkView(axe, "your-data", w, card+" "+sel("receipt-download"), sel("receipt-text"), sel("receipt-check"))

			// Download the deletion's receipt: the file is the server's
			// signed receipt.
			dir := t.TempDir()
			row := card + ` [data-test="receipt-item"][data-kind="identifiers"]`
			tb.run("download", cdpbrowser.SetDownloadBehavior(cdpbrowser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(dir),
				chromedp.Click(row+" "+sel("receipt-download"), chromedp.ByQuery))
			file := downloaded(t, dir, ".json")
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var r audit.Receipt
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatalf("the downloaded receipt: %v", err)
			}
			if err := audit.VerifyReceipt(pub, r, nil); err != nil || r.Kind != "identifiers" || r.Identifiers != 2 {
				t.Fatalf("the downloaded receipt %+v does not verify in Go: %v", r, err)
			}

			// Verified in the page, picked as a file.
			tb.run("verify the file", chromedp.SetUploadFiles(sel("receipt-file"), []string{file}, chromedp.ByQuery),
				chromedp.WaitVisible(sel("receipt-result")+"[data-ok]", chromedp.ByQuery))
			if res := tb.text("receipt-result"); !strings.HasPrefix(res, "OK") || !strings.Contains(res, r.ID) || !strings.Contains(res, fmt.Sprintf("#%d", r.AuditSeq)) {
				t.Errorf("verifying the downloaded receipt says %q", res)
			}

			// A tampered copy, pasted, fails.
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			m["audience_rows"] = float64(r.AudienceRows + 1)
			bad, _ := json.MarshalIndent(m, "", "  ")
			tb.run("verify a tampered copy", chromedp.SetValue(sel("receipt-text"), string(bad), chromedp.ByQuery),
				chromedp.Click(sel("receipt-check"), chromedp.ByQuery),
				chromedp.WaitVisible(sel("receipt-result")+`[data-ok="false"]`, chromedp.ByQuery))
			if res := tb.text("receipt-result"); !strings.HasPrefix(res, "FAILED") || !strings.Contains(res, "forged or altered receipt") {
				t.Errorf("a tampered receipt says %q, want FAILED", res)
			}
			tb.shot(fmt.Sprintf("roles-your-data-tampered-%d", w))

			// The opt-out's Verify button checks it in place.
			tb.run("verify from the list", chromedp.Click(card+` [data-test="receipt-item"][data-kind="optout"] `+sel("receipt-verify"), chromedp.ByQuery),
				chromedp.WaitVisible(sel("receipt-result")+`[data-ok="true"]`, chromedp.ByQuery))
			tb.reachable(fmt.Sprintf("verified at %d px", w), sel("receipt-result"))
		})
	}
}

// downloaded waits for the one file with ext the browser saves in dir.
func downloaded(t *testing.T, dir, ext string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
		if len(files) == 1 {
			if st, err := os.Stat(files[0]); err == nil && st.Size() > 0 {
				return files[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s file downloaded to %s: %v", ext, dir, files)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
