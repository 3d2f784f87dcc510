package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/access"
)

// FuzzRestrictMatchesEveryRouting: whenever an app could route a path
// under /admin/ (Go's ServeMux, path.Clean with or without ";" parameters
// stripped, or a router that matches the raw path's prefix), the restrict
// rule "/admin/*" refuses an anonymous request for it.
func FuzzRestrictMatchesEveryRouting(f *testing.F) {
	for _, s := range []string{"/admin/x", "/admin/..;/x", "/x/..;/admin/y", "/admin;a=1/x", "//admin/x", "/ADMIN/x", "/admin/../x", "/./admin/x", "/a/%2e%2e/admin"} {
		f.Add(s)
	}
	rules, err := compileRestrictions([]RestrictRule{{Path: "/admin/*", Roles: []string{"admin"}}}, "roles")
	if err != nil {
		f.Fatal(err)
	}
	d := access.New(access.Options{Rules: rules, Pool: detect.NewPool(1, nil), Actor: nopActor{}})
	mux := http.NewServeMux()
	admin := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/admin/", admin)
	mux.Handle("/", http.NotFoundHandler())
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#\x00") {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = p
		req := &detect.Request{HTTP: r.WithContext(context.Background())}
		refused := d.Check(req) != nil
		routed := underAdmin(path.Clean(p)) || underAdmin(path.Clean(detect.StripPathParams(p))) ||
			strings.HasPrefix(strings.ToLower(p), "/admin/")
		if _, pattern := mux.Handler(r); pattern == "/admin/" {
			routed = true
		}
		if routed && !refused {
			t.Fatalf("%q reaches /admin/ for some app, but restrict let it through", p)
		}
	})
}

func underAdmin(p string) bool {
	p = strings.ToLower(p)
	return p == "/admin" || strings.HasPrefix(p, "/admin/")
}

// nopActor takes findings and does nothing with them.
type nopActor struct{}

func (nopActor) Act(context.Context, detect.Finding) detect.Outcome { return detect.Outcome{} }
