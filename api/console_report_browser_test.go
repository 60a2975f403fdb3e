package api_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/cleanroom/cleanroom/internal/console"
	"github.com/cleanroom/cleanroom/wire"
)

// The reports in a browser: what a reader of the public privacy report
// and of the transparency report notices (one H1, charts with their
// figures in words, whole-number count axes, durations in words, the
// brand's own words shown as text), and what a printed copy looks like
// (Chromium's PDF: no page less than half full but the last, page
// numbers on each).

// reportSettings has markup in it, to show that the page shows it as text.
var reportSettings = wire.ReportSettings{
	Introduction:   "Brand Co sells shoes online.\n<img src=x onerror=\"window.pwned=1\"> & we mean it.",
	PrivacyContact: "privacy@brand.example",
	OptOutURL:      "https://brand.example/opt-out?from=report&x=<1>",
}

func TestConsoleReportPrivacy(t *testing.T) {
	ce := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := ce.brand.admin.SetReportSettings(ctx, ce.brand.id, reportSettings); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ce.srv.URL)
	tb := b.newTab(t, "admin")
	tb.run("wide", chromedp.EmulateViewport(1400, 900))
	tb.signIn(ce.keys["admin/brand"])
	tb.run("the public report", chromedp.Click(sel("nav-privacy"), chromedp.ByQuery),
		chromedp.WaitVisible(sel("privacy-report"), chromedp.ByQuery), loaded("privacy-report"),
		chromedp.WaitVisible(sel("report-chart")+`[data-chart="honoured"][data-rendered="true"]`, chromedp.ByQuery),
		chromedp.WaitVisible(sel("report-chart")+`[data-chart="exposure"][data-rendered="true"]`, chromedp.ByQuery))
	r := tb.text("privacy-report")
	// Campaign and events received the brand's data; summer never did.
	for _, want := range []string{"Brand Co's data was sent to 2 collaborations in this period", "campaign", "events", "moderate protection"} {
		if !strings.Contains(r, want) {
			t.Errorf("the public report does not say %q: %.600q", want, r)
		}
	}
	for _, bad := range []string{"summer", "e^", "×10", "times likelier", " 0 s"} {
		if strings.Contains(r, bad) {
			t.Errorf("the public report says %q: %.600q", bad, r)
		}
	}
	checkReportPage(t, tb, "privacy-report", []string{"honoured"})
	if m := tb.text("privacy-median"); !regexp.MustCompile(`^(under a second|\d+ (second|minute|hour|day)s?)`).MatchString(m) {
		t.Errorf("the median time to honour reads %q, want it in words", m)
	}

	// The brand's words, as text: markup shows, nothing runs.
	var intro, optout, contact string
	var pwned, imgs int
	tb.run("the brand's words", chromedp.Text(sel("privacy-intro"), &intro, chromedp.ByQuery),
		chromedp.AttributeValue(sel("privacy-optout"), "href", &optout, nil, chromedp.ByQuery),
		chromedp.Text(sel("privacy-contact"), &contact, chromedp.ByQuery),
		chromedp.Evaluate(`window.pwned ? 1 : 0`, &pwned),
		chromedp.Evaluate(`document.querySelectorAll('[data-test="privacy-report"] img').length`, &imgs))
	if !strings.Contains(intro, "Brand Co sells shoes online.") || !strings.Contains(intro, `<img src=x onerror="window.pwned=1"> & we mean it.`) || pwned != 0 || imgs != 0 {
		t.Errorf("the introduction shows %q (ran: %d, images: %d), want its text as written and nothing run", intro, pwned, imgs)
	}
	if optout != reportSettings.OptOutURL || contact != reportSettings.PrivacyContact {
		t.Errorf("the opt-out link goes to %q and the contact reads %q, want %q and %q", optout, contact, reportSettings.OptOutURL, reportSettings.PrivacyContact)
	}

	// The admin edits them in place: a refused link says why, a good one
	// shows at once.
	tb.expect("400")
	var msg string
	tb.run("a bad link", chromedp.Click(sel("about-editor")+" summary", chromedp.ByQuery),
		chromedp.SetValue(sel("about-optout"), "http://brand.example/out", chromedp.ByQuery),
		chromedp.Click(sel("about-save"), chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('[data-test="about-message"]').textContent.includes('https')`, nil, chromedp.WithPollingInterval(50*time.Millisecond)),
		chromedp.Text(sel("about-message"), &msg, chromedp.ByQuery))
	if !strings.Contains(msg, "opt_out_url") {
		t.Errorf("a refused link says %q, want the field named", msg)
	}
	const friendly = "Brand Co sells shoes online. This page says what became of our customers' data in our data collaborations, in figures that describe no one."
	tb.run("a good one", chromedp.SetValue(sel("about-optout"), "https://brand.example/stop", chromedp.ByQuery),
		chromedp.SetValue(sel("about-intro"), friendly, chromedp.ByQuery),
		chromedp.Click(sel("about-save"), chromedp.ByQuery),
		chromedp.Poll(`(document.querySelector('[data-test="privacy-optout"]') || {}).textContent === 'https://brand.example/stop'`, nil, chromedp.WithPollingInterval(50*time.Millisecond)),
		chromedp.WaitVisible(sel("report-chart")+`[data-chart="honoured"][data-rendered="true"]`, chromedp.ByQuery))
	if intro := tb.text("privacy-intro"); intro != friendly {
		t.Errorf("after saving, the introduction reads %q, want %q", intro, friendly)
	}
	tb.shot("report-privacy-1400")

	tb.fitsPhone()
	tb.shot("report-privacy-390")
}

// TestConsoleReportTransparency: the collaboration's report, with two
// analyst keys labelled alike.
func TestConsoleReportTransparency(t *testing.T) {
	ce := newConsoleEnv(t)
	ctx := context.Background()
	// A second analyst key labelled as the first, that answers too.
	k, err := ce.brand.admin.CreateKey(ctx, ce.brand.id, "analyst", "analyst")
	if err != nil {
		t.Fatal(err)
	}
	if st, body, _ := ce.ask(k.Secret, `SELECT COUNT(*) AS n FROM cohort`, 0.5, ""); st != 200 {
		t.Fatalf("%d %s", st, body)
	}
	b := newBrowser(t, ce.srv.URL)
	tb := b.newTab(t, "auditor")
	tb.run("wide", chromedp.EmulateViewport(1400, 900))
	tb.signIn(ce.keys["auditor/brand"])
	tb.run("the report", chromedp.Navigate(b.base+"/console/#/collab/"+ce.collab+"/report"),
		chromedp.WaitVisible(sel("report"), chromedp.ByQuery), loaded("report"))
	for _, c := range []string{"budget", "analysts", "refusals", "consent", "deletions"} {
		tb.run("chart "+c, chromedp.WaitVisible(sel("report-chart")+`[data-chart="`+c+`"][data-rendered="true"]`, chromedp.ByQuery))
	}
	checkReportPage(t, tb, "report", []string{"analysts", "refusals", "deletions"})
	var label string
	tb.run("the analysts' names", chromedp.AttributeValue(sel("report-chart")+`[data-chart="analysts"]`, "aria-label", &label, nil, chromedp.ByQuery))
	names := regexp.MustCompile(`analyst \(analyst, key …\w{4}\)`).FindAllString(label, -1)
	if len(names) != 2 || names[0] == names[1] {
		t.Errorf("the two keys labelled analyst read %q in %q, want two names told apart", names, label)
	}
	if e := tb.text("report-exposure"); !strings.Contains(e, "ε = ") || strings.Contains(e, "e^") {
		t.Errorf("the exposure reads %q", e)
	}
	tb.shot("report-transparency-1400")
	tb.fitsPhone()
	tb.shot("report-transparency-390")
}

// checkReportPage checks the report in the tab (data-test root): one H1,
// each chart an image named by its figures with the figures in a table,
// and the value axes of counts (charts named in counts) in whole steps.
func checkReportPage(t *testing.T, tb *tab, root string, counts []string) {
	t.Helper()
	var h1 []string
	tb.run("headings", chromedp.Evaluate(`[...document.querySelectorAll('h1')].map(h => h.textContent)`, &h1))
	if len(h1) != 1 || !strings.Contains(h1[0], "report") && !strings.Contains(h1[0], "how your data was used") {
		t.Errorf("the page has headings of level 1 %q, want one naming the report", h1)
	}
	var charts []struct {
		Name, Role, Label string
		Rows              int
	}
	tb.run("charts", chromedp.Evaluate(`[...document.querySelectorAll('[data-test="`+root+`"] [data-test="report-chart"]')].map(c => ({
		name: c.dataset.chart, role: c.getAttribute('role') || '', label: c.getAttribute('aria-label') || '',
		rows: c.closest('figure').querySelectorAll('[data-test="chart-table"] tbody tr').length}))`, &charts))
	if len(charts) == 0 {
		t.Fatal("no chart in the report")
	}
	for _, c := range charts {
		if c.Role != "img" || !regexp.MustCompile(`\d`).MatchString(c.Label) {
			t.Errorf("chart %s: role %q, name %q: want an image named by its figures", c.Name, c.Role, c.Label)
		}
		if c.Rows == 0 && !strings.HasSuffix(c.Label, "empty.") {
			t.Errorf("chart %s has no table of its figures", c.Name)
		}
	}
	for _, name := range counts {
		var ticks []float64
		tb.run("ticks of "+name, chromedp.Evaluate(`(() => {
			const c = echarts.getInstanceByDom(document.querySelector('[data-chart="`+name+`"]'));
			const m = c.getModel(), ax = m.getComponent('yAxis', 0).axis.type === 'value' ? m.getComponent('yAxis', 0) : m.getComponent('xAxis', 0);
			return ax.axis.scale.getTicks().map(t => t.value);
		})()`, &ticks))
		if len(ticks) < 2 {
			t.Errorf("the count axis of chart %s has ticks %v", name, ticks)
		}
		for _, v := range ticks {
			if v != math.Trunc(v) {
				t.Errorf("the count axis of chart %s has ticks %v, want whole numbers", name, ticks)
				break
			}
		}
	}
}

// TestConsoleReportPrint prints the public privacy report a brand
// publishes (the standalone export) and the transparency report to PDF
// in Chromium, A4: no page of either is less than half full but the
// last, and each page carries its number.
func TestConsoleReportPrint(t *testing.T) {
	ce := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := ce.brand.admin.SetReportSettings(ctx, ce.brand.id, reportSettings); err != nil {
		t.Fatal(err)
	}
	priv, err := ce.brand.audit.PrivacyReport(ctx, ce.brand.id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ce.brand.audit.Report(ctx, ce.collab)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := newBrowser(t, "file://"+dir)
	for _, x := range []struct {
		page, root string
		data       any
	}{{"privacy", "privacy-report", priv}, {"report", "report", rep}} {
		t.Run(x.page, func(t *testing.T) {
			var buf bytes.Buffer
			if err := console.Standalone(&buf, x.page, x.data); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, x.page+".html")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			tb := b.newTab(t, "file")
			tb.run("open the export", chromedp.Navigate("file://"+path),
				chromedp.WaitVisible(sel(x.root), chromedp.ByQuery),
				chromedp.Poll(`[...document.querySelectorAll('[data-test="report-chart"]')].every(c => c.dataset.rendered === 'true')`, nil,
					chromedp.WithPollingInterval(50*time.Millisecond)))
			checkPrint(t, tb, x.root, "report-print-"+x.page)
		})
	}
}

// A4 with the style sheet's 15 mm margins, in CSS pixels (96 a inch).
const (
	a4Width, a4Height = 8.27, 11.69 // inches
	printMargin       = 15 / 25.4   // inches
	pageContentWidth  = (a4Width - 2*printMargin) * 96
	pageContentHeight = (a4Height - 2*printMargin) * 96
)

// pageFills lays the page out for print at the paper's width and works
// out where Chromium breaks it: each part that must stay whole (the
// style sheet's break-inside: avoid) goes to the next page when it does
// not fit; everything else breaks anywhere. It returns how full each
// page is (0 to 1), what stays whole yet is taller than half a page, and
// any forced break.
const pageFills = `((pageH) => {
	const all = [...document.body.querySelectorAll('*')].filter(e => e.getClientRects().length);
	const style = e => getComputedStyle(e);
	const forced = all.filter(e => /page|always|left|right|recto|verso/.test(style(e).breakBefore + ' ' + style(e).breakAfter))
		.map(e => e.tagName + '.' + e.className);
	const avoid = all.filter(e => /avoid/.test(style(e).breakInside) || e.tagName === 'CANVAS');
	const atoms = avoid.filter(e => !avoid.some(a => a !== e && a.contains(e)))
		.map(e => { const r = e.getBoundingClientRect(); return { top: r.top + scrollY, bottom: r.bottom + scrollY, name: e.tagName + '.' + e.className }; })
		.sort((a, b) => a.top - b.top);
	const tall = atoms.filter(a => a.bottom - a.top > pageH / 2).map(a => a.name + ' ' + Math.round(a.bottom - a.top) + 'px');
	const end = Math.max(...all.map(e => e.getBoundingClientRect().bottom + scrollY));
	let start = 0, shift = 0;
	const fills = [];
	for (const a of atoms) {
		const top = a.top + shift, bottom = a.bottom + shift;
		while (top >= start + pageH) { fills.push(1); start += pageH; }
		if (bottom > start + pageH && top > start) {
			fills.push((top - start) / pageH);
			shift += start + pageH - top;
			start += pageH;
		}
	}
	while (end + shift > start + pageH) { fills.push(1); start += pageH; }
	fills.push((end + shift - start) / pageH);
	return { fills, tall, forced };
})`

// checkPrint prints the tab's page to PDF as a reader would (A4, the
// browser's page numbers in the footer), and checks the pages against
// the layout: as many as pageFills predicts, none but the last less
// than half full, nothing unbreakable over half a page, no forced
// break; each page numbered.
func checkPrint(t *testing.T, tb *tab, root, shot string) {
	t.Helper()
	var layout struct {
		Fills  []float64
		Tall   []string
		Forced []string
	}
	tb.run("lay out for print", emulation.SetEmulatedMedia().WithMedia("print"),
		chromedp.EmulateViewport(int64(math.Round(pageContentWidth)), int64(math.Round(pageContentHeight))),
		chromedp.Evaluate(`window.dispatchEvent(new Event('beforeprint'))`, nil),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.Evaluate(fmt.Sprintf(`%s(%f)`, pageFills, pageContentHeight), &layout))
	if len(layout.Tall) > 0 || len(layout.Forced) > 0 {
		t.Errorf("on paper these stay whole yet are over half a page: %q; these force a page break: %q", layout.Tall, layout.Forced)
	}
	for i, f := range layout.Fills[:len(layout.Fills)-1] {
		if f < 0.5 {
			t.Errorf("page %d of %d is %.0f%% full: %v", i+1, len(layout.Fills), f*100, layout.Fills)
		}
	}
	// Printed as from the browser: the page numbers are the style
	// sheet's own (@page margin boxes), not a footer only this test would
	// add.
	var pdf []byte
	tb.run("print", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		pdf, _, err = page.PrintToPDF().WithPaperWidth(a4Width).WithPaperHeight(a4Height).
			WithMarginTop(printMargin).WithMarginBottom(printMargin).WithMarginLeft(printMargin).WithMarginRight(printMargin).Do(ctx)
		return err
	}))
	path := filepath.Join(tb.b.shots, shot+".pdf")
	if err := os.WriteFile(path, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("printed: %s", path)
	texts, err := pdfPageTexts(pdf)
	if err != nil {
		t.Fatal(err)
	}
	pages := len(texts)
	if pages != len(layout.Fills) {
		t.Errorf("Chromium printed %d pages, the layout predicts %d (%v)", pages, len(layout.Fills), layout.Fills)
	}
	for i, text := range texts {
		if want := fmt.Sprintf("Page %d of %d", i+1, pages); !strings.Contains(text, want) {
			t.Errorf("page %d does not say %q: %.300q", i+1, want, text)
		}
	}
	t.Logf("%s: %d pages, filled %v", root, pages, layout.Fills)
}

// pdfPageTexts extracts the text of each page of a PDF as Chromium (Skia)
// writes it: plain objects, Flate streams, Identity-H fonts with a
// ToUnicode map, glyphs shown as hex strings. Text runs are joined by a
// space, spaces collapsed.
func pdfPageTexts(pdf []byte) ([]string, error) {
	objects := map[string][]byte{} // number -> dictionary
	streams := map[string][]byte{} // number -> decoded stream
	for _, m := range regexp.MustCompile(`(?s)(\d+) 0 obj\s*(<<.*?>>)\s*(stream\r?\n|endobj)`).FindAllSubmatchIndex(pdf, -1) {
		num, dict := string(pdf[m[2]:m[3]]), pdf[m[4]:m[5]]
		objects[num] = dict
		if !bytes.HasPrefix(pdf[m[6]:m[7]], []byte("stream")) {
			continue
		}
		n := regexp.MustCompile(`/Length (\d+)`).FindSubmatch(dict)
		if n == nil {
			return nil, fmt.Errorf("stream %s has no length", num)
		}
		length, _ := strconv.Atoi(string(n[1]))
		data := pdf[m[7] : m[7]+length]
		if bytes.Contains(dict, []byte("/FlateDecode")) {
			r, err := zlib.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("stream %s: %w", num, err)
			}
			if data, err = io.ReadAll(r); err != nil {
				return nil, fmt.Errorf("stream %s: %w", num, err)
			}
		}
		streams[num] = data
	}
	ref := func(dict []byte, key string) string {
		if m := regexp.MustCompile(key + ` (\d+) 0 R`).FindSubmatch(dict); m != nil {
			return string(m[1])
		}
		return ""
	}
	hex16 := func(h []byte) int { v, _ := strconv.ParseUint(string(h), 16, 32); return int(v) }
	// toUnicode reads a font's glyph-to-text map.
	toUnicode := func(font string) map[int]rune {
		cmap := streams[ref(objects[font], "/ToUnicode")]
		out := map[int]rune{}
		for _, m := range regexp.MustCompile(`<([0-9A-Fa-f]{4})> <([0-9A-Fa-f]{4})>(?: <([0-9A-Fa-f]{4})>)?`).FindAllSubmatch(cmap, -1) {
			if m[3] == nil { // bfchar
				out[hex16(m[1])] = rune(hex16(m[2]))
				continue
			}
			for g, u := hex16(m[1]), hex16(m[3]); g <= hex16(m[2]); g, u = g+1, u+1 {
				out[g] = rune(u)
			}
		}
		return out
	}
	// Pages in the order of their tree's Kids.
	var order []string
	for _, dict := range objects {
		if bytes.Contains(dict, []byte("/Type /Pages")) && !bytes.Contains(dict, []byte("/Parent")) {
			for _, m := range regexp.MustCompile(`(\d+) 0 R`).FindAllSubmatch(regexp.MustCompile(`(?s)/Kids \[(.*?)\]`).FindSubmatch(dict)[1], -1) {
				order = append(order, string(m[1]))
			}
		}
	}
	var texts []string
	for _, p := range order {
		dict := objects[p]
		fonts := map[string]map[int]rune{}
		if f := regexp.MustCompile(`(?s)/Font <<(.*?)>>`).FindSubmatch(dict); f != nil {
			for _, m := range regexp.MustCompile(`/(\w+) (\d+) 0 R`).FindAllSubmatch(f[1], -1) {
				fonts[string(m[1])] = toUnicode(string(m[2]))
			}
		}
		var b strings.Builder
		var font map[int]rune
		for _, m := range regexp.MustCompile(`/(\w+) [\d.]+ Tf|<([0-9A-Fa-f]*)>|ET`).FindAllSubmatch(streams[ref(dict, "/Contents")], -1) {
			switch {
			case m[1] != nil:
				font = fonts[string(m[1])]
			case m[2] != nil:
				for i := 0; i+4 <= len(m[2]); i += 4 {
					if r, ok := font[hex16(m[2][i:i+4])]; ok {
						b.WriteRune(r)
					}
				}
			default:
				b.WriteByte(' ')
			}
		}
		texts = append(texts, strings.Join(strings.Fields(b.String()), " "))
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("no page in the PDF")
	}
	return texts, nil
}
