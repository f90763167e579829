// Package static embeds Levqor's own public files: the API docs page (with the
// stylesheet every HTML page shares), the legal pages and FAQ, and the templates
// of the pages, the dashboard and the HTML error pages.
package static

import (
	"embed"
	"io/fs"
)

// Docs holds the API documentation page, its start-up script and the site's
// stylesheet (site.css); Swagger UI's own assets come from github.com/swaggest/swgui.
//
//go:embed docs
var Docs embed.FS

// Pages holds the Markdown sources of the legal pages and the FAQ.
//
//go:embed pages
var Pages embed.FS

// Templates holds the html/template files of the HTML pages: the layout, the
// Markdown page, the dashboard and the error pages.
//
//go:embed templates
var Templates embed.FS

// Marketing holds Levqor's own copy for the marketing summary:
// marketing/landing_snippets.json (headlines, calls to action, selling points) and
// marketing/testimonials.json.
//
//go:embed marketing
var Marketing embed.FS

// MarketingFS is the marketing directory itself (landing_snippets.json and
// testimonials.json at its root), what analytics.LoadCopy reads.
func MarketingFS() fs.FS {
	sub, err := fs.Sub(Marketing, "marketing")
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub
}
