package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/internal/geoip"
	"github.com/vigilsec/vigil/internal/geotest"
)

// okUpstream answers every login as a success, so the benchmarks below
// include the learning a success starts (places and risk profile, on the
// background pool).
type okUpstream struct{}

func (okUpstream) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Location", "/dashboard")
	w.WriteHeader(http.StatusFound)
	return nil
}

// withGeoIP gives app the test databases (192.0.2.0/25 Berlin, the
// benchmark client 198.51.100.1 New York).
func withGeoIP(b *testing.B, app *App) {
	city, asn := geotest.Files(b)
	loc, err := geoip.Open(city, asn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = loc.Close() })
	app.locator, app.core.Locator = loc, loc
}

// behaviourHandler is a site with GeoIP, location and risk.
func behaviourHandler(b *testing.B, app *App) *Handler {
	h := testHandler(b, app, newClock())
	h.Lockout, h.BlockIP, h.Stuffing, h.now = nil, nil, nil, nil
	h.Location = &LocationConfig{}
	h.Risk = &RiskConfig{Alert: 30, Challenge: 16}
	if err := h.setup(app); err != nil {
		b.Fatal(err)
	}
	return h
}

// benchSuccesses measures successful logins of one user from one place:
// the login is located and scored on the request path, then learned.
func benchSuccesses(b *testing.B, h *Handler) {
	r := benchRequest("POST", "/login", "")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	body := strings.NewReader("username=alice&password=right")
	for i := 0; i < b.N; i++ {
		_, _ = body.Seek(0, io.SeekStart)
		r.Body = io.NopCloser(body)
		_ = h.ServeHTTP(w, r, okUpstream{})
	}
	h.pool.Wait()
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
}

// BenchmarkLoginGeoRiskMemory: a successful login with GeoIP, location
// and risk scoring on the memory store.
func BenchmarkLoginGeoRiskMemory(b *testing.B) {
	app := testApp(b)
	withGeoIP(b, app)
	benchSuccesses(b, behaviourHandler(b, app))
}

// BenchmarkLoginGeoRiskRedis: the same on Redis (the risk read is a second
// round trip before the upstream; learning runs in the background).
func BenchmarkLoginGeoRiskRedis(b *testing.B) {
	app := redisBenchApp(b)
	withGeoIP(b, app)
	benchSuccesses(b, behaviourHandler(b, app))
}

// BenchmarkNonLoginWithBehaviour is the hot path on a site with location
// and risk: the only added work is removing a client-sent risk header.
func BenchmarkNonLoginWithBehaviour(b *testing.B) {
	app := testApp(b)
	withGeoIP(b, app)
	h := behaviourHandler(b, app)
	r := benchRequest("GET", "/products/42", "")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	}
}
