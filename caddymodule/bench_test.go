package caddymodule

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
	"github.com/vigilsec/vigil/respond"
	"go.uber.org/zap"
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
	body := strings.NewReader("username=alice&password=wrong")
	r := benchRequest("POST", "/login", "")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body.Seek(0, io.SeekStart)
		r.Body = io.NopCloser(body)
		_ = h.ServeHTTP(w, r, nopUpstream{})
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
}

// processCPU is the user+system CPU time this process has used: on a login
// with Redis, wall time includes the Redis server's work on the same
// machine, which the budget does not count.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoginRequestRedis is a failed login counted in Redis: one script
// round trip after the upstream answered.
func BenchmarkLoginRequestRedis(b *testing.B) {
	app := redisBenchApp(b)
	h := testHandler(b, app, newClock())
	h.Lockout, h.BlockIP, h.Stuffing, h.now = nil, nil, nil, nil
	h.setup(app)
	benchLogins(b, h)
}

// BenchmarkLoginRequestRedisParallel is BenchmarkLoginRequestRedis with 16
// logins in flight at once, as a busy gateway has them: the events of
// concurrent logins share the stream writer's batches. cpu-µs/op is this
// process's CPU (request path, event writer, GC) per login.
func BenchmarkLoginRequestRedisParallel(b *testing.B) {
	app := redisBenchApp(b)
	h := testHandler(b, app, newClock())
	h.Lockout, h.BlockIP, h.Stuffing, h.now = nil, nil, nil, nil
	h.setup(app)
	b.SetParallelism(8)
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := strings.NewReader("username=alice&password=wrong")
		r := benchRequest("POST", "/login", "")
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			body.Seek(0, io.SeekStart)
			r.Body = io.NopCloser(body)
			_ = h.ServeHTTP(w, r, nopUpstream{})
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
}

// BenchmarkLoginRequestRedisPaced sends failed logins at 200 a second (the
// login rate of issue 13's load), one every 5 ms, as a gateway sees them
// arrive: each login's event would otherwise be written on its own, one
// XADD round trip per login. cpu-µs/op is this process's CPU per login,
// idle work between logins included.
func BenchmarkLoginRequestRedisPaced(b *testing.B) {
	app := redisBenchApp(b)
	h := testHandler(b, app, newClock())
	h.Lockout, h.BlockIP, h.Stuffing, h.now = nil, nil, nil, nil
	h.setup(app)
	body := strings.NewReader("username=alice&password=wrong")
	r := benchRequest("POST", "/login", "")
	w := &nopWriter{h: http.Header{}}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		body.Seek(0, io.SeekStart)
		r.Body = io.NopCloser(body)
		_ = h.ServeHTTP(w, r, nopUpstream{})
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
}

// redisBenchApp is an app on a Redis store under a fresh key prefix,
// closed and cleaned up when the benchmark ends.
//
// VIGIL_BENCH_REDIS_URL points the benchmark at another server, e.g.
// unix:///run/redis.sock to measure Redis on the same host over a Unix
// socket (docs/performance.md).
func redisBenchApp(b *testing.B) *App {
	client, prefix := redistest.Client(b)
	opts := store.RedisOptions{Addrs: []string{client.Options().Addr}, Prefix: prefix}
	if u := os.Getenv("VIGIL_BENCH_REDIS_URL"); u != "" {
		opts.Addrs, opts.URL = nil, u
	}
	ks, err := opts.Open()
	if err != nil {
		b.Fatal(err)
	}
	st, err := respond.NewRedisStore(context.Background(), ks, respond.RedisStoreOptions{}, respond.Hooks{})
	if err != nil {
		b.Fatal(err)
	}
	app := &App{state: &sharedState{store: st}, logger: zap.NewNop()}
	app.buildCore()
	b.Cleanup(func() {
		_ = app.logSink.Close()
		_ = st.Close()
		redistest.DeleteKeys(ks.Client, prefix)
	})
	return app
}

// benchSession measures a request carrying a valid session token: with the
// verification cache (the steady state of a busy session) or without (the
// first request of each token: the signature check). Uncached, a cache of
// one entry alternates between two tokens, so each request misses.
func benchSession(b *testing.B, key JWTKey, alg jose.SignatureAlgorithm, priv any, cached bool) {
	app := testApp(b)
	cfg := &JWTConfig{Keys: []JWTKey{key}}
	if !cached {
		cfg.CacheSize = 1
	}
	h := &Handler{Session: &SessionConfig{JWT: cfg}}
	if err := h.setup(app); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Cleanup() })
	var reqs [2]*http.Request
	for i := range reqs {
		tok := mint(b, alg, priv, "", claimsAt("alice", time.Now(), "roles", []string{"user"}, "jti", itoa(int64(i))))
		reqs[i] = benchRequest("GET", "/products/42", "")
		reqs[i].Header.Set("Authorization", "Bearer "+tok)
	}
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = h.ServeHTTP(w, reqs[i%2], nopUpstream{})
	}
}

func BenchmarkSessionHS256Cached(b *testing.B) {
	benchSession(b, JWTKey{Alg: "hs256", Secret: testSecret}, jose.HS256, []byte(testSecret), true)
}

func BenchmarkSessionHS256Uncached(b *testing.B) {
	benchSession(b, JWTKey{Alg: "hs256", Secret: testSecret}, jose.HS256, []byte(testSecret), false)
}

func BenchmarkSessionRS256Cached(b *testing.B) {
	benchSession(b, JWTKey{Alg: "rs256", PEMFile: writePEM(b, &sharedKeys.rsa.PublicKey)}, jose.RS256, sharedKeys.rsa, true)
}

func BenchmarkSessionRS256Uncached(b *testing.B) {
	benchSession(b, JWTKey{Alg: "rs256", PEMFile: writePEM(b, &sharedKeys.rsa.PublicKey)}, jose.RS256, sharedKeys.rsa, false)
}
