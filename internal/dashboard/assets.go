package dashboard

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
)

//go:embed assets
var assets embed.FS

// Assets are the page's static files (app.js, app.css, vendor/uplot/…),
// served under <mount>/assets/.
func Assets() fs.FS {
	sub, _ := fs.Sub(assets, "assets")
	return sub
}

var page = template.Must(template.ParseFS(assets, "assets/index.html"))

// PageData is what the page is rendered with.
type PageData struct {
	Operator string // who is logged in
	CSRF     string // the session's CSRF token, copied into the actions' header
}

// Page renders the dashboard page.
func Page(d PageData) ([]byte, error) {
	var b bytes.Buffer
	err := page.Execute(&b, d)
	return b.Bytes(), err
}

// ContentSecurityPolicy is the page's policy: nothing but this origin, no
// inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
