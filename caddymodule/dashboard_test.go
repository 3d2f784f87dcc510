package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func testDashboard(t *testing.T) (*Dashboard, *App) {
	t.Helper()
	app := testApp(t)
	d := &Dashboard{Operator: defaultOperator, app: app, stop: make(chan struct{})}
	t.Cleanup(func() { _ = d.Cleanup() })
	return d, app
}

// dashRequest is a request as Caddy hands it over after basic_auth: with
// a replacer holding the operator (none when user is "").
func dashRequest(method, path, user string) *http.Request {
	r := httptest.NewRequest(method, "http://dash.test"+path, nil)
	repl := caddy.NewReplacer()
	if user != "" {
		repl.Set("http.auth.user.id", user)
	}
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

func serveDash(t *testing.T, d *Dashboard, r *http.Request) (*httptest.ResponseRecorder, error) {
	t.Helper()
	w := httptest.NewRecorder()
	err := d.ServeHTTP(w, r, nil)
	return w, err
}

func TestDashboardRefusesWithoutOperator(t *testing.T) {
	d, _ := testDashboard(t)
	for _, p := range []string{"/security/", "/security/api/overview", "/security/stream", "/security/assets/app.js"} {
		_, err := serveDash(t, d, dashRequest(http.MethodGet, p, ""))
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s without an operator: %v, want a 401", p, err)
		}
	}
}

func TestDashboardPageAndAssets(t *testing.T) {
	d, _ := testDashboard(t)
	w, err := serveDash(t, d, dashRequest(http.MethodGet, "/security/", "ops"))
	if err != nil || w.Code != http.StatusOK {
		t.Fatalf("page: %d %v", w.Code, err)
	}
	body := w.Body.String()
	if !strings.Contains(body, "ops") || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("page without the operator or its CSP")
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Fatal("the page links outside its origin")
	}
	for _, a := range []string{"app.js", "app.css", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE"} {
		w, err := serveDash(t, d, dashRequest(http.MethodGet, "/security/assets/"+a, "ops"))
		if err != nil || w.Code != http.StatusOK || w.Body.Len() == 0 {
			t.Fatalf("asset %s: %d %v", a, w.Code, err)
		}
	}
	w, _ = serveDash(t, d, dashRequest(http.MethodGet, "/security", "ops"))
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/security/" {
		t.Fatalf("bare mount: %d %q, want a redirect to /security/", w.Code, w.Header().Get("Location"))
	}
}

// An action with the page's token unblocks through the core, recorded as
// ADMIN_ACTION with the operator's name; without it, it is refused.
func TestDashboardActionCSRFAndOperator(t *testing.T) {
	d, app := testDashboard(t)
	page, _ := serveDash(t, d, dashRequest(http.MethodGet, "/security/", "ops"))
	tok := regexp.MustCompile(`name="vigil-csrf" content="([^"]+)"`).FindStringSubmatch(page.Body.String())
	cookies := page.Result().Cookies()
	if tok == nil || len(cookies) != 1 {
		t.Fatalf("no token in the page (%v) or no cookie (%v)", tok, cookies)
	}
	ctx := context.Background()
	now := time.Now()
	if err := app.store().Decisions.Put(ctx, respond.Decision{Kind: respond.Block, Target: "203.0.113.9", Source: "auto", Strike: 1, Created: now, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	action := func(withToken bool, origin string) *httptest.ResponseRecorder {
		r := dashRequest(http.MethodPost, "/security/api/action", "ops")
		r.Body = io.NopCloser(strings.NewReader(`{"action":"unblock","target":"203.0.113.9"}`))
		r.Header.Set("Origin", origin)
		r.AddCookie(cookies[0])
		if withToken {
			r.Header.Set("X-CSRF-Token", tok[1])
		}
		w, err := serveDash(t, d, r)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := action(false, "http://dash.test"); w.Code != http.StatusForbidden {
		t.Fatalf("without the token: %d %s", w.Code, w.Body)
	}
	if w := action(true, "http://evil.test"); w.Code != http.StatusForbidden {
		t.Fatalf("cross-origin: %d %s", w.Code, w.Body)
	}
	if _, ok := app.store().Cache.Get(respond.Block, "203.0.113.9", time.Now()); !ok {
		t.Fatal("a refused action unblocked")
	}
	if w := action(true, "http://dash.test"); w.Code != http.StatusOK {
		t.Fatalf("with the token: %d %s", w.Code, w.Body)
	}
	if _, ok := app.store().Cache.Get(respond.Block, "203.0.113.9", time.Now()); ok {
		t.Fatal("still blocked")
	}
	var found detect.Event
	deadline := time.Now().Add(2 * time.Second)
	for found.ID == "" && time.Now().Before(deadline) {
		page, _ := app.store().Events.Query(ctx, respond.EventFilter{Types: []detect.Type{detect.AdminAction}})
		if len(page.Events) > 0 {
			found = page.Events[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if found.User != "ops" || found.Details["action"] != "unblock" {
		b, _ := json.Marshal(found)
		t.Fatalf("ADMIN_ACTION %s, want user ops, action unblock", b)
	}
}

func TestDashboardCaddyfile(t *testing.T) {
	var d Dashboard
	if err := d.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`vigil_dashboard {
		operator {http.request.header.X-Remote-User}
	}`)); err != nil || d.Operator != "{http.request.header.X-Remote-User}" {
		t.Fatalf("%v %q", err, d.Operator)
	}
	if err := new(Dashboard).UnmarshalCaddyfile(caddyfile.NewTestDispenser(`vigil_dashboard { colour red }`)); err == nil {
		t.Fatal("unknown option accepted")
	}
}

func TestSplitDashboardPath(t *testing.T) {
	for p, want := range map[string][2]string{
		"/security/":                         {"/security", "/"},
		"/security":                          {"/security", ""},
		"/security/stream":                   {"/security", "/stream"},
		"/security/api/user":                 {"/security", "/api/user"},
		"/security/assets/vendor/uplot/x.js": {"/security", "/assets/vendor/uplot/x.js"},
		"/":                                  {"", "/"},
		"/stream":                            {"", "/stream"},
	} {
		if b, r := splitDashboardPath(p); b != want[0] || r != want[1] {
			t.Errorf("%s: (%q, %q), want %q", p, b, r, want)
		}
	}
}
