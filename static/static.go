// Package static embeds Levqor's own public files: the API docs page and, later,
// legal pages, FAQ, well-known files and dashboard templates.
package static

import "embed"

// Docs holds the API documentation page and its start-up script; Swagger UI's
// own assets come from github.com/swaggest/swgui.
//
//go:embed docs
var Docs embed.FS
