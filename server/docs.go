package server

import (
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"

	swgui "github.com/swaggest/swgui/v5/static"

	"github.com/levqor/levqor/static"
)

// docsCSP is the policy of the docs page: every script and style is a file served
// from /docs/, so nothing inline needs allowing. Swagger UI draws its icons as
// data: images and fetches the spec from this origin.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// swaggerAssets are the files of Swagger UI the page loads, all stored gzipped in swgui.
var swaggerAssets = []string{"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png"}

// loadDocs prepares the docs page and its assets, keyed by asset name ("" is the page).
func loadDocs() (map[string]*document, error) {
	const cache = "public, max-age=3600"
	docs := map[string]*document{}
	ours, err := fs.Sub(static.Docs, "docs")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(ours, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(ours, name)
		if err != nil {
			return err
		}
		doc := newDocument(contentTypeOf(name), cache, b)
		if name == "index.html" {
			doc.csp, doc.cacheControl = docsCSP, "no-cache"
			name = ""
		}
		docs[name] = doc
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range swaggerAssets {
		if strings.HasSuffix(name, ".png") {
			b, err := fs.ReadFile(swgui.FS, name)
			if err != nil {
				return nil, fmt.Errorf("swagger UI asset %s: %w", name, err)
			}
			docs[name] = newDocument("image/png", cache, b)
			continue
		}
		gz, err := fs.ReadFile(swgui.FS, name+".gz")
		if err != nil {
			return nil, fmt.Errorf("swagger UI asset %s: %w", name, err)
		}
		docs[name] = newGzipDocument(contentTypeOf(name), cache, gz)
	}
	return docs, nil
}

func contentTypeOf(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
