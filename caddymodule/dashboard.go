package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/internal/dashboard"
)

func init() {
	caddy.RegisterModule(Dashboard{})
	httpcaddyfile.RegisterHandlerDirective("vigil_dashboard", parseDashboardDirective)
	// a terminal handler: after authentication (basic_auth, forward_auth),
	// with the other handlers that answer
	httpcaddyfile.RegisterDirectiveOrder("vigil_dashboard", httpcaddyfile.Before, "respond")
}

// Dashboard is the `vigil_dashboard` handler: the live security dashboard
// of the vigil app, one page with its own API, mounted by the operator on
// a route behind the authentication of their choice:
//
//	handle /security/* {
//		basic_auth { ops <bcrypt hash> }
//		vigil_dashboard
//	}
//
// It refuses to serve (401) when the operator placeholder is empty, so it
// is never open by default. Its actions (unblock, unlock, revoke …) are
// CSRF-protected and recorded as ADMIN_ACTION with the operator's name.
type Dashboard struct {
	// Operator is the placeholder naming the authenticated operator;
	// default {http.auth.user.id} (set by basic_auth and other
	// authentication handlers).
	Operator string `json:"operator,omitempty"`

	app  *App
	ctx  caddy.Context
	stop chan struct{}
}

// CaddyModule returns the Caddy module information.
func (Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.vigil_dashboard", New: func() caddy.Module { return new(Dashboard) }}
}

const defaultOperator = "{http.auth.user.id}"

// Provision attaches the dashboard to the vigil app.
func (d *Dashboard) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("vigil")
	if err != nil {
		return fmt.Errorf("getting vigil app: %w", err)
	}
	d.app, d.ctx = appIface.(*App), ctx
	if d.Operator == "" {
		d.Operator = defaultOperator
	}
	d.stop = make(chan struct{})
	return nil
}

// Cleanup ends the live streams of this config, so that a reload does not
// wait on them.
func (d *Dashboard) Cleanup() error {
	if d.stop != nil {
		close(d.stop)
	}
	return nil
}

// operator is the authenticated operator's name, or "".
func (d *Dashboard) operator(r *http.Request) string {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return ""
	}
	return strings.TrimSpace(repl.ReplaceAll(d.Operator, ""))
}

// ServeHTTP serves the page, its assets, its stream and its API. Paths are
// taken relative to where the dashboard is mounted: the page links to
// assets/…, api/… and stream.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	op := d.operator(r)
	if op == "" {
		return caddyhttp.Error(http.StatusUnauthorized,
			fmt.Errorf("vigil_dashboard: no authenticated operator (%s is empty): mount it behind basic_auth or another authentication handler", d.Operator))
	}
	base, rest := splitDashboardPath(r.URL.Path)
	setDashboardHeaders(w.Header())
	switch {
	case rest == "":
		http.Redirect(w, r, base+"/", http.StatusFound)
		return nil
	case rest == "/":
		return d.servePage(w, r, base, op)
	case strings.HasPrefix(rest, "/assets/"):
		return d.serveAsset(w, r, strings.TrimPrefix(rest, "/assets/"))
	case rest == "/stream":
		return dashboard.ServeStream(w, r, dashboard.HubFor(d.app.store().Events), dashboard.StreamOptions{Stop: d.stop})
	case strings.HasPrefix(rest, "/api/"):
		return d.serveAPI(w, r, strings.TrimPrefix(rest, "/api/"), op)
	}
	return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no such dashboard path"))
}

// splitDashboardPath finds where the dashboard is mounted from the
// request's path: the part before its own /assets/, /api/ or /stream, or
// the whole path for the page.
func splitDashboardPath(p string) (base, rest string) {
	if i := strings.LastIndex(p, "/assets/"); i >= 0 {
		return p[:i], p[i:]
	}
	if i := strings.LastIndex(p, "/api/"); i >= 0 && !strings.Contains(p[i+len("/api/"):], "/") {
		return p[:i], p[i:]
	}
	if strings.HasSuffix(p, "/stream") {
		return strings.TrimSuffix(p, "/stream"), "/stream"
	}
	if strings.HasSuffix(p, "/") {
		return strings.TrimSuffix(p, "/"), "/"
	}
	return p, ""
}

// setDashboardHeaders keeps the page to its own origin and out of caches
// and frames.
func setDashboardHeaders(h http.Header) {
	h.Set("Content-Security-Policy", dashboard.ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (d *Dashboard) servePage(w http.ResponseWriter, r *http.Request, base, op string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
	}
	tok := dashboard.CSRFToken(w, r, base+"/")
	body, err := dashboard.Page(dashboard.PageData{Operator: op, CSRF: tok})
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, err = w.Write(body)
	return err
}

var dashboardFiles = http.FileServerFS(dashboard.Assets())

func (d *Dashboard) serveAsset(w http.ResponseWriter, r *http.Request, name string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
	}
	if name == "" || strings.HasSuffix(name, "/") || name == "index.html" {
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no such asset"))
	}
	// the assets change only with the binary: cacheable, revalidated
	w.Header().Set("Cache-Control", "no-cache")
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + name
	dashboardFiles.ServeHTTP(w, r2)
	return nil
}

// UnmarshalCaddyfile sets up the dashboard from Caddyfile tokens:
//
//	vigil_dashboard [{
//		operator <placeholder>    # default {http.auth.user.id}
//	}]
func (d *Dashboard) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // directive name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	for disp.NextBlock(0) {
		switch disp.Val() {
		case "operator":
			if !disp.NextArg() {
				return disp.ArgErr()
			}
			d.Operator = disp.Val()
			if disp.NextArg() {
				return disp.ArgErr()
			}
		default:
			return disp.Errf("unknown vigil_dashboard option %q", disp.Val())
		}
	}
	return nil
}

func parseDashboardDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(Dashboard)
	err := d.UnmarshalCaddyfile(h.Dispenser)
	return d, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Dashboard)(nil)
	_ caddy.CleanerUpper          = (*Dashboard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ caddyfile.Unmarshaler       = (*Dashboard)(nil)
)
