// Package console is the web console: static assets embedded in the
// binary and served at /console/, and the self-contained HTML exports of
// the reports. The console is just another client of the HTTP API: it
// holds no data and no secret of its own, and every view shows what the
// signed-in key's role may read through the API.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/cleanroom/cleanroom/wire"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// CSP is the console's Content-Security-Policy: scripts, styles and
// requests only from the server itself, no inline code, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// RulesDefaults is the file, under Prefix, of the rules a collaboration
// gets for every field its rules leave out (wire.DefaultRules): the rules
// form starts from them, so that it never keeps a copy that could drift.
const RulesDefaults = "rules-defaults.json"

var rulesDefaults = func() []byte {
	b, err := json.Marshal(wire.DefaultRules())
	if err != nil {
		panic(err) // plain values: cannot fail
	}
	return b
}()

// Handler serves the console under Prefix: the assets, and index.html
// for any other path under it (the console's views are client-side
// routes).
func Handler() http.Handler {
	root, _ := fs.Sub(assets, "assets")
	etags := map[string]string{}
	_ = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read with GET", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, Prefix)), "/")
		if name == RulesDefaults {
			h.Set("Cache-Control", "no-cache")
			h.Set("Content-Type", "application/json")
			w.Write(rulesDefaults)
			return
		}
		if _, ok := etags[name]; !ok {
			if path.Ext(name) != "" {
				// A missing file, not a view: index.html in its place
				// would only fail later as a script or style sheet.
				http.Error(w, "no such file in the console", http.StatusNotFound)
				return
			}
			name = "index.html"
		}
		etag := etags[name]
		h.Set("ETag", etag)
		// Revalidate every time: a new binary must not run against a
		// cached older script; the ETag keeps it to a 304.
		h.Set("Cache-Control", "no-cache")
		if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		b, _ := fs.ReadFile(root, name)
		// The zero time leaves out Last-Modified: the ETag is the validator.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
}

// standaloneScripts are the scripts a standalone page inlines, in order:
// the charting library, then the same rendering code the console's report
// pages run, then the page's start.
var standaloneScripts = []string{
	"vendor/echarts-6.0.0/echarts.min.js",
	"js/core.js",
	"js/charts.js",
	"js/report.js",
	"js/standalone.js",
}

// standaloneCSP keeps a saved page offline: its own inline code runs, and
// it can load nothing, send nothing.
const standaloneCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

// Standalone writes one self-contained HTML page of a report: page
// "report" (data: a wire.Report) or "privacy" (a wire.PrivacyReport).
// The style sheet, ECharts, the console's rendering scripts and the data
// (as JSON) are all inlined, so the file opens offline, anywhere, and
// draws the same charts as the console's report page; it prints as the
// console does.
func Standalone(w io.Writer, page string, data any) error {
	var title string
	switch page {
	case "report":
		title = "Transparency report"
		switch r := data.(type) {
		case wire.Report:
			title += ": " + r.Collaboration.Name
		case *wire.Report:
			title += ": " + r.Collaboration.Name
		}
	case "privacy":
		title = "Privacy report"
		switch r := data.(type) {
		case wire.PrivacyReport:
			title = r.PartnerName + ": privacy report"
		case *wire.PrivacyReport:
			title = r.PartnerName + ": privacy report"
		}
	default:
		return fmt.Errorf("console: no standalone page %q (want report or privacy)", page)
	}
	// json.Marshal escapes <, > and &, so the data cannot end its script
	// element.
	js, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("console: the %s page's data: %w", page, err)
	}
	css, err := inlinable("app.css", "</style")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta http-equiv=\"Content-Security-Policy\" content=\"" + standaloneCSP + "\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<title>" + html.EscapeString(title) + "</title>\n<style>\n")
	b.Write(css)
	b.WriteString("</style>\n</head>\n<body class=\"standalone\">\n<main id=\"app\"></main>\n")
	b.WriteString("<script type=\"application/json\" id=\"cr-data\" data-page=\"" + page + "\">")
	b.Write(js)
	b.WriteString("</script>\n")
	for _, name := range standaloneScripts {
		src, err := inlinable(name, "</script")
		if err != nil {
			return err
		}
		b.WriteString("<script>\n")
		b.Write(src)
		b.WriteString("\n</script>\n")
	}
	b.WriteString("</body>\n</html>\n")
	_, err = w.Write(b.Bytes())
	return err
}

// inlinable reads an asset to inline in an element that closing ends,
// refusing one that holds it (or an HTML comment start, which changes
// how a script element ends).
func inlinable(name, closing string) ([]byte, error) {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	low := bytes.ToLower(b)
	if bytes.Contains(low, []byte(closing)) || bytes.Contains(low, []byte("<!--")) {
		return nil, fmt.Errorf("console: %s holds %s or <!-- and cannot be inlined", name, closing)
	}
	return b, nil
}
