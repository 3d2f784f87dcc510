package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// nopUpstream answers like a login app without doing any work, so the
// benchmarks measure Vigil alone.
type nopUpstream struct{}

func (nopUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Location", "/login?error=1")
	w.WriteHeader(http.StatusFound)
	return nil
}

// nopWriter discards the answer without httptest.Recorder's allocations.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// benchRequest builds a request the way Caddy hands it to handlers: vars with
// client_ip and a replacer in the context.
func benchRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "198.51.100.1"})
	ctx = context.WithValue(ctx, caddy.ReplacerCtxKey, caddy.NewReplacer())
	return r.WithContext(ctx)
}

// BenchmarkNonLoginRequest is the hot path: a request that is not a login
// and carries no session (budget: ≤ 2 µs and ≤ 2 allocations).
func BenchmarkNonLoginRequest(b *testing.B) {
	app, c := testApp(b), newClock()
	h := testHandler(b, app, c)
	h.now = nil
	h.setup(app)
	r := benchRequest("GET", "/products/42", "")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = h.ServeHTTP(w, r, nopUpstream{})
	}
}

// BenchmarkLoginRequestMemory is a failed login counted in the memory store.
func BenchmarkLoginRequestMemory(b *testing.B) {
	app := testApp(b)
	h := testHandler(b, app, newClock())
	h.Lockout = nil
	h.BlockIP = nil
	h.Stuffing = nil
	h.now = nil
	h.setup(app)
	benchLogins(b, h)
}

func benchLogins(b *testing.B, h *Handler) {
	body := "username=alice&password=wrong"
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := benchRequest("POST", "/login", body)
		_ = h.ServeHTTP(w, r, nopUpstream{})
	}
}
