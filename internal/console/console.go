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
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// CSP is the console's Content-Security-Policy: scripts, styles and
// requests only from the server itself, no inline code, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

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
		if _, ok := etags[name]; !ok {
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
