package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// testApp is a vigil app on a fresh memory store, without Caddy around it.
func testApp(t testing.TB, allow ...string) *App {
	t.Helper()
	prefixes, err := parsePrefixes(allow)
	if err != nil {
		t.Fatal(err)
	}
	store := respond.NewMemoryStore(respond.MemoryOptions{}, respond.Hooks{})
	app := &App{allow: prefixes, state: &sharedState{store: store}, logger: zap.NewNop()}
	app.buildCore()
	t.Cleanup(func() {
		_ = app.logSink.Close()
		_ = store.Close()
	})
	return app
}

// clock is a settable time source for the handler.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

// fakeApp is the upstream: it answers logins like the demo app (302 to
// /dashboard or back to /login) and records what it received.
type fakeApp struct {
	hits   int
	bodies [][]byte
}

func (f *fakeApp) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	f.hits++
	body, _ := io.ReadAll(r.Body)
	f.bodies = append(f.bodies, body)
	if r.URL.Path == "/login" {
		if bytes.Contains(body, []byte("password=right")) {
			w.Header().Set("Location", "/dashboard")
		} else {
			w.Header().Set("Location", "/login?error=1")
		}
		w.WriteHeader(http.StatusFound)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("hello"))
	return nil
}

func testHandler(t testing.TB, app *App, c *clock) *Handler {
	t.Helper()
	h := &Handler{
		Logins: []LoginRoute{{Method: "POST", Path: "/login", User: UserSource{From: "form", Name: "username"},
			Success: &SuccessRule{RedirectNot: "/login"}}},
		Lockout:  &BanPolicy{Failures: 3, Within: caddy.Duration(time.Minute), For: caddy.Duration(10 * time.Second), Max: caddy.Duration(time.Minute)},
		BlockIP:  &BanPolicy{Failures: 6, Within: caddy.Duration(time.Minute), For: caddy.Duration(20 * time.Second)},
		Stuffing: &StuffingPolicy{Accounts: 4, Within: caddy.Duration(time.Minute)},
		now:      c.now,
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	h.setup(app)
	return h
}

func newRequest(method, target, body, ip string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: ip})
	ctx = context.WithValue(ctx, caddy.ReplacerCtxKey, caddy.NewReplacer())
	return r.WithContext(ctx)
}

// serve runs one request and returns the status the client would see.
func serve(t testing.TB, h *Handler, up *fakeApp, r *http.Request) (int, http.Header) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, up)
	if err != nil {
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) {
			t.Fatalf("unexpected error: %v", err)
		}
		return he.StatusCode, w.Header()
	}
	return w.Code, w.Header()
}

func login(t testing.TB, h *Handler, up *fakeApp, user, pass, ip string) (int, http.Header) {
	return serve(t, h, up, newRequest("POST", "/login", "username="+user+"&password="+pass, ip))
}

func eventsOf(t testing.TB, app *App, typ detect.Type) []detect.Event {
	t.Helper()
	page, err := app.store().Events.Query(context.Background(), respond.EventFilter{Types: []detect.Type{typ}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

func TestLockoutAtThreshold(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	for i := 1; i <= 3; i++ {
		if code, _ := login(t, h, up, "alice", "wrong", "198.51.100.1"); code != http.StatusFound {
			t.Fatalf("failure %d: got %d, want 302 from the app", i, code)
		}
	}
	code, hdr := login(t, h, up, "alice", "right", "198.51.100.2")
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "10" {
		t.Fatalf("4th attempt: got %d Retry-After %q, want 429 and 10", code, hdr.Get("Retry-After"))
	}
	if up.hits != 3 {
		t.Fatalf("upstream saw %d logins, want 3 (the locked attempt must not reach it)", up.hits)
	}
	// another account and other paths are unaffected
	if code, _ := login(t, h, up, "bob", "right", "198.51.100.1"); code != http.StatusFound {
		t.Fatalf("bob: got %d", code)
	}
	if code, _ := serve(t, h, up, newRequest("GET", "/dashboard", "", "198.51.100.1")); code != http.StatusOK {
		t.Fatalf("non-login request: got %d", code)
	}
	locks := eventsOf(t, app, detect.AccountLocked)
	if len(locks) != 1 || locks[0].User != "alice" || locks[0].Severity != detect.Medium {
		t.Fatalf("ACCOUNT_LOCKED events = %+v", locks)
	}
	if got := len(eventsOf(t, app, detect.FailedLogin)); got != 3 {
		t.Fatalf("FAILED_LOGIN events = %d, want 3", got)
	}
	// the lock expires; a new lock needs three fresh failures and lasts twice as long
	c.advance(11 * time.Second)
	for i := 0; i < 3; i++ {
		login(t, h, up, "ALICE ", "wrong", "198.51.100.5")
	}
	if code, hdr := login(t, h, up, "alice", "wrong", "198.51.100.5"); code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "20" {
		t.Fatalf("second lock: got %d Retry-After %q, want 429 and 20 (doubled, case-insensitive account)", code, hdr.Get("Retry-After"))
	}
}

func TestSuccessClearsAccountFailures(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	login(t, h, up, "alice", "wrong", "198.51.100.1")
	login(t, h, up, "alice", "wrong", "198.51.100.1")
	login(t, h, up, "alice", "right", "198.51.100.1")
	login(t, h, up, "alice", "wrong", "198.51.100.1")
	if code, _ := login(t, h, up, "alice", "wrong", "198.51.100.1"); code != http.StatusFound {
		t.Fatalf("got %d: failures before a success must be forgotten", code)
	}
	if n := len(eventsOf(t, app, detect.SuccessfulLogin)); n != 1 {
		t.Fatalf("SUCCESSFUL_LOGIN events = %d", n)
	}
}

func TestIPBlockAndStuffing(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	h.Stuffing = nil
	h.setup(app)
	users := []string{"a", "b", "a", "b", "a", "b"}
	for _, u := range users {
		login(t, h, up, u, "wrong", "203.0.113.9")
	}
	code, hdr := serve(t, h, up, newRequest("GET", "/anything", "", "203.0.113.9"))
	if code != http.StatusForbidden || hdr.Get("Retry-After") != "20" {
		t.Fatalf("after 6 failures: got %d Retry-After %q, want 403 and 20", code, hdr.Get("Retry-After"))
	}
	if code, _ := serve(t, h, up, newRequest("GET", "/anything", "", "203.0.113.10")); code != http.StatusOK {
		t.Fatalf("another IP: got %d", code)
	}

	// stuffing: four distinct accounts from one address block it at once
	h2 := testHandler(t, app, c)
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		login(t, h2, up, u, "wrong", "203.0.113.20")
	}
	if code, _ := serve(t, h2, up, newRequest("GET", "/", "", "203.0.113.20")); code != http.StatusForbidden {
		t.Fatalf("after stuffing: got %d, want 403", code)
	}
	ev := eventsOf(t, app, detect.CredentialStuffing)
	if len(ev) != 1 || ev[0].Severity != detect.High || ev[0].IP != "203.0.113.20" {
		t.Fatalf("CREDENTIAL_STUFFING events = %+v", ev)
	}
}

func TestAllowlistNeverBlocked(t *testing.T) {
	app, c, up := testApp(t, "10.0.0.0/8"), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	for i := 0; i < 12; i++ {
		login(t, h, up, "user"+string(rune('a'+i)), "wrong", "10.1.2.3")
	}
	if code, _ := serve(t, h, up, newRequest("GET", "/", "", "10.1.2.3")); code != http.StatusOK {
		t.Fatalf("allowlisted IP got %d", code)
	}
	if _, ok := app.store().Cache.Blocked(netip.MustParseAddr("10.1.2.3"), c.now()); ok {
		t.Fatal("an allowlisted address was blocked")
	}
	ev := eventsOf(t, app, detect.IPBlocked)
	if len(ev) == 0 || ev[0].Details["allowlisted"] != true {
		t.Fatalf("the finding must still be recorded, marked allowlisted: %+v", ev)
	}
	// a manual CIDR block covering an allowlisted address is not enforced either
	_ = app.store().Decisions.Put(context.Background(), respond.Decision{Kind: respond.Block, Target: "10.0.0.0/8", Until: c.now().Add(time.Hour)})
	if code, _ := serve(t, h, up, newRequest("GET", "/", "", "10.1.2.3")); code != http.StatusOK {
		t.Fatalf("allowlisted IP under a CIDR block got %d", code)
	}
}

func TestLoginBodyReachesUpstreamUnchanged(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	h.MaxBodyBytes = 4096
	bodies := []string{
		"username=alice&password=p%C3%A4ss%00word&x=" + strings.Repeat("z", 4000),
		"\xff\xfe\x00garbage",
		"username=" + strings.Repeat("A", 2000), // longer than a username may be
		"username=%27%20OR%201%3D1--%0D%0AEVAL&password=x",
	}
	// bodies Vigil reads reach the upstream byte for byte (a UTF-16 mark
	// over garbage reads as text naming no user); one it cannot read the
	// way an app might (a username longer than one may be) is refused,
	// never forwarded
	for i, b := range bodies {
		hits := up.hits
		code, _ := serve(t, h, up, newRequest("POST", "/login", b, "192.0.2.1"))
		readable := i != 2
		if !readable {
			if up.hits != hits || code != http.StatusBadRequest {
				t.Fatalf("unreadable body %d: %d, upstream hits %d → %d", i, code, hits, up.hits)
			}
			continue
		}
		if got := up.bodies[len(up.bodies)-1]; string(got) != b {
			t.Fatalf("upstream got %d bytes, want the %d sent, unchanged", len(got), len(b))
		}
	}
	// refused bodies count against the IP, with no user
	fails := eventsOf(t, app, detect.FailedLogin)
	if len(fails) != 4 || fails[0].User != "' OR 1=1--\r\nEVAL" || fails[1].User != "" || fails[1].Details["ip_failures"] != 3 {
		t.Fatalf("FAILED_LOGIN events: %+v", fails)
	}
}

// TestUninspectableLoginsRefused covers the bodies that could smuggle a
// locked account past the gateway: too long to read whole, or naming the
// user twice.
func TestUninspectableLoginsRefused(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	h.MaxBodyBytes = 1024
	_ = h.setup(app)
	cases := []struct {
		body string
		want int
	}{
		{strings.Repeat("p", 2000) + "&username=alice&password=right", http.StatusRequestEntityTooLarge},
		{"username=decoy&password=right&username=alice", http.StatusBadRequest},
	}
	for _, tc := range cases {
		if code, _ := serve(t, h, up, newRequest("POST", "/login", tc.body, "192.0.2.9")); code != tc.want {
			t.Errorf("got %d, want %d", code, tc.want)
		}
	}
	if up.hits != 0 {
		t.Fatalf("upstream saw %d refused logins", up.hits)
	}
	fails := eventsOf(t, app, detect.FailedLogin)
	if len(fails) != 2 || fails[0].Details["ip_failures"] != 2 || fails[0].Details["user_error"] == nil {
		t.Fatalf("refused logins must count against the IP: %+v", fails)
	}
}

func TestMonitorOnlyNeverRefuses(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	h.MonitorOnly = true
	_ = h.setup(app)
	for i := 0; i < 8; i++ {
		if code, _ := login(t, h, up, "alice", "wrong", "198.51.100.7"); code != http.StatusFound {
			t.Fatalf("monitor_only refused attempt %d with %d", i, code)
		}
	}
	if ds := app.store().Cache.List(c.now()); len(ds) != 0 {
		t.Fatalf("monitor_only imposed decisions: %+v", ds)
	}
	if ev := eventsOf(t, app, detect.AccountLocked); len(ev) == 0 || ev[0].Details["monitor_only"] != true {
		t.Fatalf("monitor_only must still record findings: %+v", ev)
	}
}

func TestFailClosedRefusesLoginsWhileStoreDown(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	app.FailMode = "closed"
	app.core.FailClosed = true
	healthy := false
	app.state.store.Healthy = func() bool { return healthy }
	h := testHandler(t, app, c)
	if code, _ := login(t, h, up, "alice", "right", "198.51.100.1"); code != http.StatusServiceUnavailable {
		t.Fatalf("store down, fail_mode closed: got %d, want 503", code)
	}
	if code, _ := serve(t, h, up, newRequest("GET", "/", "", "198.51.100.1")); code != http.StatusOK {
		t.Fatalf("non-login requests keep flowing: got %d", code)
	}
	healthy = true
	if code, _ := login(t, h, up, "alice", "right", "198.51.100.1"); code != http.StatusFound {
		t.Fatalf("store back: got %d", code)
	}
}

func TestUserPlaceholderAlwaysSet(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	r := newRequest("GET", "/", "", "198.51.100.1")
	serve(t, h, up, r)
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if v, ok := repl.Get("http.vigil.user"); !ok || v != "" {
		t.Fatalf("http.vigil.user = %v, %v; want set and empty for anonymous requests", v, ok)
	}
}

func TestLoginRouteMatching(t *testing.T) {
	l := LoginRoute{Method: "POST", Path: "/login"}
	for _, p := range []string{"/login", "/LOGIN", "/login/", "//login", "/x/../login"} {
		if !l.Matches(httptest.NewRequest("POST", "http://h"+p, nil)) {
			t.Errorf("%s should match /login", p)
		}
	}
	for _, p := range []string{"/login2", "/api/login"} {
		if l.Matches(httptest.NewRequest("POST", "http://h"+p, nil)) {
			t.Errorf("%s should not match /login", p)
		}
	}
	// apps read credentials from any method: the route covers them all,
	// and ";" path parameters too
	for _, r := range []*http.Request{httptest.NewRequest("GET", "/login?username=alice", nil),
		httptest.NewRequest("PUT", "/login", nil), httptest.NewRequest("POST", "/login;jsessionid=x", nil)} {
		if !l.Matches(r) {
			t.Errorf("%s %s should match /login", r.Method, r.URL)
		}
	}
	g := LoginRoute{Method: "POST", Path: "/api/*/login"}
	if !g.Matches(httptest.NewRequest("POST", "/api/v2/login", nil)) {
		t.Error("glob route should match")
	}
}

func TestSuccessRules(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		rule   *SuccessRule
		status int
		hdr    http.Header
		want   bool
	}{
		{nil, 200, nil, true},
		{nil, 401, nil, false},
		{&SuccessRule{Status: []int{200, 201}}, 201, nil, true},
		{&SuccessRule{Status: []int{200}}, 302, nil, false},
		{&SuccessRule{RedirectNot: "/login"}, 302, h("Location", "/home"), true},
		{&SuccessRule{RedirectNot: "/login"}, 302, h("Location", "https://app.example/login?e=1"), false},
		{&SuccessRule{RedirectNot: "/login"}, 200, nil, false},
		{&SuccessRule{Header: &HeaderMatch{Name: "X-Login", Value: "ok"}}, 200, h("X-Login", "ok"), true},
		{&SuccessRule{Header: &HeaderMatch{Name: "X-Login", Value: "ok"}}, 200, h("X-Login", "no"), false},
		{&SuccessRule{Header: &HeaderMatch{Name: "Set-Cookie"}}, 200, h("Set-Cookie", "s=1"), true},
	}
	for i, c := range cases {
		l := LoginRoute{Success: c.rule}
		if got := l.Succeeded(c.status, c.hdr); got != c.want {
			t.Errorf("case %d: succeeded = %v, want %v", i, got, c.want)
		}
	}
}
