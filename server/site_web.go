package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/net/html"
)

const (
	// MaxWebDirBytes bounds the static export read into memory at start-up; a
	// larger folder stops start-up rather than exhausting memory.
	MaxWebDirBytes = 64 << 20
	// MaxWebFiles bounds the number of files of the export.
	MaxWebFiles = 5000
	// webAssetCache is the cache life of Next's content-hashed assets.
	webAssetCache = "public, max-age=31536000, immutable"
)

// webCSPBase is the site's policy less its script hashes: its own scripts,
// styles, images and fonts, API calls to this origin (tracking, newsletter),
// forms to this origin, and nothing from anywhere else.
const webCSPBase = "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webSite is the marketing site's static export, read once at start-up: every
// file by the URL path that serves it, each HTML page with a policy that allows
// exactly its own inline scripts (by their SHA-256 hashes).
type webSite struct {
	files map[string]*document
}

// loadWebSite reads the export in dir (Next's `out/`). "/x" serves x.html, x, or
// x/index.html; "/" serves index.html, which must exist.
func loadWebSite(dir string) (*webSite, error) {
	w := &webSite{files: map[string]*document{}}
	var total int64
	root := os.DirFS(dir)
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and devices are not part of an export
		}
		if len(w.files) >= MaxWebFiles {
			return fmt.Errorf("more than %d files", MaxWebFiles)
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		if total += int64(len(body)); total > MaxWebDirBytes {
			return fmt.Errorf("more than %d bytes", MaxWebDirBytes)
		}
		doc, err := webDocument(name, body)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		urlPath := "/" + filepath.ToSlash(name)
		w.files[urlPath] = doc
		switch {
		case urlPath == "/index.html":
			w.files["/"] = doc
		case strings.HasSuffix(urlPath, "/index.html"):
			dir := strings.TrimSuffix(urlPath, "/index.html")
			w.files[dir], w.files[dir+"/"] = doc, doc
		case strings.HasSuffix(urlPath, ".html"):
			if p := strings.TrimSuffix(urlPath, ".html"); w.files[p] == nil {
				w.files[p] = doc
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("LEVQOR_WEB_DIR %s: %w", dir, err)
	}
	if w.files["/"] == nil {
		return nil, fmt.Errorf("LEVQOR_WEB_DIR %s: no index.html (want Next's static export, web/out)", dir)
	}
	return w, nil
}

// webDocument builds the document of one file; an HTML page gets its policy.
func webDocument(name string, body []byte) (*document, error) {
	ext := path.Ext(name)
	ct := mime.TypeByExtension(ext)
	switch {
	case ext == ".txt":
		ct = "text/plain; charset=utf-8" // Next's RSC payloads
	case ct == "":
		ct = "application/octet-stream"
	}
	cache := pageCache
	if strings.HasPrefix(name, "_next/static/") {
		cache = webAssetCache
	}
	doc := newDocument(ct, cache, body)
	if ext == ".html" {
		hashes, err := inlineScriptHashes(body)
		if err != nil {
			return nil, err
		}
		doc.csp = webCSP(hashes)
	}
	return doc, nil
}

// webCSP is webCSPBase with script-src allowing this origin and the given hashes.
func webCSP(hashes []string) string {
	var b strings.Builder
	b.WriteString("script-src 'self'")
	for _, h := range hashes {
		b.WriteString(" 'sha256-" + h + "'")
	}
	return webCSPBase + "; " + b.String()
}

// inlineScriptHashes returns the base64 SHA-256 of every inline script of an HTML
// page (a script element without src), as CSP hashes them, sorted and unique.
func inlineScriptHashes(page []byte) ([]string, error) {
	z := html.NewTokenizer(bytes.NewReader(page))
	var out []string
	inline := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if err := z.Err(); err != nil && err.Error() != "EOF" {
				return nil, fmt.Errorf("parse HTML: %w", err)
			}
			slices.Sort(out)
			return slices.Compact(out), nil
		case html.StartTagToken:
			name, hasAttr := z.TagName()
			inline = false
			if string(name) != "script" {
				continue
			}
			inline = true
			for hasAttr {
				var key []byte
				key, _, hasAttr = z.TagAttr()
				if string(key) == "src" {
					inline = false
				}
			}
		case html.TextToken:
			if inline {
				sum := sha256.Sum256(z.Text())
				out = append(out, base64.StdEncoding.EncodeToString(sum[:]))
			}
		case html.EndTagToken:
			inline = false
		}
	}
}

// lookup returns the document serving urlPath, if any.
func (w *webSite) lookup(urlPath string) *document {
	if w == nil || strings.Contains(urlPath, "..") {
		return nil
	}
	return w.files[urlPath]
}

// serveRoot answers GET and HEAD / with the site's home page for clients that
// prefer HTML (browsers); other requests, and every other path, go to next. Paths
// no route claims reach serveFile through the router's not-found handler.
func (w *webSite) serveRoot(next http.Handler) http.Handler {
	if w == nil {
		return next
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && prefersHTML(r.Header.Values("Accept")) {
			w.serve(rw, r, w.files["/"])
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// serveFile answers a GET or HEAD for a file of the export and reports whether it did.
func (w *webSite) serveFile(rw http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	doc := w.lookup(r.URL.Path)
	if doc == nil {
		return false
	}
	w.serve(rw, r, doc)
	return true
}

func (w *webSite) serve(rw http.ResponseWriter, r *http.Request, doc *document) {
	inm := r.Header.Get("If-None-Match")
	resp := respondDocument(doc, &inm, nil)
	if r.Method == http.MethodHead {
		rw = headOnly{rw}
	}
	_ = resp.visit(rw)
}

// headOnly drops the body of a HEAD answer.
type headOnly struct{ http.ResponseWriter }

func (h headOnly) Write(b []byte) (int, error) { return len(b), nil }
