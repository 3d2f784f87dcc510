package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/session"
	"github.com/vigilsec/vigil/respond"
)

// userApp is the upstream of the session tests: it records the user Vigil
// exposed ({http.vigil.user}) and answers status (default 200).
type userApp struct {
	users  []string
	status int
}

func (u *userApp) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	v, _ := repl.Get("http.vigil.user")
	u.users = append(u.users, v.(string))
	w.WriteHeader(max(u.status, http.StatusOK))
	return nil
}

func (u *userApp) last() string {
	if len(u.users) == 0 {
		return "<none>"
	}
	return u.users[len(u.users)-1]
}

// sessionHandler is a handler verifying JWTs with cfg (keys default to the
// shared HS256 secret) and the default probes.
func sessionHandler(t testing.TB, app *App, c *clock, cfg *JWTConfig, tweak ...func(*Handler)) *Handler {
	t.Helper()
	if len(cfg.Keys) == 0 && len(cfg.JWKS) == 0 {
		cfg.Keys = []JWTKey{{Alg: "hs256", Secret: testSecret}}
	}
	h := &Handler{Session: &SessionConfig{JWT: cfg}, now: c.now,
		Logins:  []LoginRoute{{Method: "POST", Path: "/login", User: UserSource{From: "form", Name: "username"}, Success: &SuccessRule{RedirectNot: "/login"}}},
		Lockout: &BanPolicy{Failures: 3, Within: caddy.Duration(time.Minute), For: caddy.Duration(time.Minute)}}
	for _, f := range tweak {
		f(h)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := h.setup(app); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// call serves one request with headers and returns the status and the
// answer's headers.
func call(t testing.TB, h *Handler, up caddyhttp.Handler, method, target, ip string, hdr http.Header) (int, http.Header) {
	t.Helper()
	r := newRequest(method, target, "", ip)
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, up); err != nil {
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) {
			t.Fatalf("unexpected error: %v", err)
		}
		return he.StatusCode, w.Header()
	}
	return w.Code, w.Header()
}

func TestSessionAlgorithms(t *testing.T) {
	c := newClock()
	now := c.now()
	cases := []struct {
		name string
		key  JWTKey
		alg  jose.SignatureAlgorithm
		priv any
	}{
		{"HS256", JWTKey{Alg: "hs256", Secret: testSecret}, jose.HS256, []byte(testSecret)},
		{"RS256", JWTKey{Alg: "rs256", PEMFile: writePEM(t, &sharedKeys.rsa.PublicKey)}, jose.RS256, sharedKeys.rsa},
		{"PS256", JWTKey{Alg: "ps256", PEMFile: writePEM(t, &sharedKeys.rsa.PublicKey)}, jose.PS256, sharedKeys.rsa},
		{"ES256", JWTKey{Alg: "es256", PEMFile: writePEM(t, &sharedKeys.ec.PublicKey)}, jose.ES256, sharedKeys.ec},
		{"EdDSA", JWTKey{Alg: "eddsa", PEMFile: writePEM(t, sharedKeys.ed.Public())}, jose.EdDSA, sharedKeys.ed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app, up := testApp(t), &userApp{}
			h := sessionHandler(t, app, c, &JWTConfig{Keys: []JWTKey{tc.key}})
			tok := mint(t, tc.alg, tc.priv, "", claimsAt("alice", now))
			for i := 0; i < 2; i++ { // verified, then from the cache
				if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusOK || up.last() != "alice" {
					t.Fatalf("request %d: %d, upstream saw user %q", i, code, up.last())
				}
			}
			if h.sessions.CacheLen() != 1 {
				t.Fatalf("cache holds %d entries", h.sessions.CacheLen())
			}
			// anonymous requests stay anonymous
			if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", nil); code != http.StatusOK || up.last() != "" {
				t.Fatalf("anonymous: %d %q", code, up.last())
			}
		})
	}
}

// TestSessionNeverIdentifiesForgeries: every token below must leave the
// request anonymous (and get 401 with require), never identify "mallory".
func TestSessionNeverIdentifiesForgeries(t *testing.T) {
	c := newClock()
	now := c.now()
	rsaPEM := writePEM(t, &sharedKeys.rsa.PublicKey)
	pemBytes := func() []byte {
		raw, err := readFile(rsaPEM)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}()
	huge := map[string]any{}
	for i := 0; i < 1000; i++ {
		huge["c"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String()] = i
	}
	mergeClaims := func(a, b map[string]any) map[string]any {
		for k, v := range b {
			a[k] = v
		}
		return a
	}
	forged := map[string]string{
		"alg none":                unsignedToken(`{"sub":"mallory","exp":` + itoa(now.Add(time.Hour).Unix()) + `}`),
		"HMAC with the RSA PEM":   mint(t, jose.HS256, pemBytes, "", claimsAt("mallory", now)),
		"wrong RSA key":           mint(t, jose.RS256, mustRSA(t), "", claimsAt("mallory", now)),
		"expired":                 mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory", now, "iat", now.Add(-3*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix())),
		"not yet valid":           mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory", now, "nbf", now.Add(time.Hour).Unix())),
		"issued in the future":    mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory", now, "iat", now.Add(time.Hour).Unix(), "exp", now.Add(2*time.Hour).Unix())),
		"wrong issuer":            mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory", now, "iss", "https://evil.example/")),
		"wrong audience":          mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory", now, "aud", "other")),
		"no exp":                  mint(t, jose.RS256, sharedKeys.rsa, "", map[string]any{"sub": "mallory", "iss": "https://id.test/", "aud": "shop"}),
		"lifetime over max":       mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory", now, "exp", now.Add(48*time.Hour).Unix())),
		"user with control chars": mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory\r\nX-Admin: 1", now)),
		"numeric user":            mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("x", now, "sub", 42)),
		"1000 claims, bad key":    mint(t, jose.RS256, mustRSA(t), "", mergeClaims(claimsAt("mallory", now), huge)),
		"100 KB token":            mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("mallory", now, "pad", strings.Repeat("A", 100<<10))),
		"garbage":                 "not.a.token",
		"two segments":            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0",
		"bad base64":              "eyJhbGciOiJSUzI1NiJ9.!!!.???",
		"non-JSON segments":       "bm90IGpzb24.bm90IGpzb24.c2ln",
		"empty bearer":            " ",
		"HS256 non-JSON claims":   hmacRaw(t, []byte(testSecret), []byte("not json")),
	}
	cfg := func(require bool) *JWTConfig {
		return &JWTConfig{Keys: []JWTKey{{Alg: "rs256", PEMFile: rsaPEM}}, Issuer: "https://id.test/", Audience: []string{"shop"}, Require: require}
	}
	for name, tok := range forged {
		for _, require := range []bool{false, true} {
			app, up := testApp(t), &userApp{}
			h := sessionHandler(t, app, c, cfg(require))
			code, hdr := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok))
			switch {
			case !require && (code != http.StatusOK || up.last() != ""):
				t.Errorf("%s: %d, upstream user %q; want 200 as anonymous", name, code, up.last())
			case require && (code != http.StatusUnauthorized || len(up.users) != 0 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer")):
				t.Errorf("%s with require: %d %q, upstream reached %d times; want 401", name, code, hdr.Get("WWW-Authenticate"), len(up.users))
			}
		}
	}
	// and the genuine token of the same shape passes
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, cfg(true))
	good := mint(t, jose.RS256, sharedKeys.rsa, "", claimsAt("alice", now, "iss", "https://id.test/", "aud", []string{"shop", "x"}))
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(good)); code != http.StatusOK || up.last() != "alice" {
		t.Fatalf("genuine token: %d %q", code, up.last())
	}
	// require spares the login route, or nobody could log in
	if code, _ := call(t, h, up, "POST", "/login", "198.51.100.1", nil); code == http.StatusUnauthorized {
		t.Fatal("require refused the login route")
	}
	if code, hdr := call(t, h, up, "GET", "/x", "198.51.100.1", nil); code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("no token with require: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
}

func TestRevokedSessionAnswers(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid"})
	now := c.now()
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", now))
	cookie := http.Header{"Cookie": {"theme=dark; sid=" + tok}}
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", cookie); code != http.StatusOK || up.last() != "alice" {
		t.Fatalf("before revocation: %d %q", code, up.last())
	}
	c.advance(2 * time.Second)
	if _, err := app.core.Revoke(context.Background(), respond.Revocation{Kind: respond.RevokeUser, Target: "Alice", Reason: "test", Source: "admin"}, c.now()); err != nil {
		t.Fatal(err)
	}
	hits := len(up.users)
	for i := 0; i < 2; i++ {
		code, hdr := call(t, h, up, "GET", "/x", "198.51.100.1", cookie)
		if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Fatalf("revoked: %d %q", code, hdr.Get("WWW-Authenticate"))
		}
		if sc := hdr.Get("Set-Cookie"); !strings.HasPrefix(sc, "sid=;") || !strings.Contains(sc, "Max-Age=0") {
			t.Fatalf("cookie not cleared: %q", sc)
		}
	}
	if len(up.users) != hits {
		t.Fatal("the upstream saw a revoked session")
	}
	evs := eventsOf(t, app, detect.SessionRevoked)
	if len(evs) != 2 || evs[0].User != "alice" || evs[0].Details["refused"] != true {
		t.Fatalf("SESSION_REVOKED events (want the revocation and one refusal): %+v", evs)
	}
	// a session issued after the revocation is fine
	c.advance(2 * time.Second)
	fresh := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + fresh}}); code != http.StatusOK {
		t.Fatalf("new session after revocation: %d", code)
	}
	// revocation by jti ends that one token only
	bob1 := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now(), "jti", "bob-1"))
	bob2 := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now(), "jti", "bob-2"))
	if _, err := app.core.Revoke(context.Background(), respond.Revocation{Kind: respond.RevokeJTI, Target: "bob-1", Reason: "test", Source: "admin"}, c.now()); err != nil {
		t.Fatal(err)
	}
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + bob1}}); code != http.StatusUnauthorized {
		t.Fatalf("revoked jti: %d", code)
	}
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + bob2}}); code != http.StatusOK {
		t.Fatalf("other jti: %d", code)
	}
	// revocations last the longest token lifetime (plus twice the leeway)
	d, ok := app.store().Cache.Get(respond.RevokeJTI, "bob-1", c.now())
	if !ok || d.Until.Sub(d.Created) != session.DefaultMaxLifetime+2*session.DefaultLeeway {
		t.Fatalf("revocation %+v lasts %v", d, d.Until.Sub(d.Created))
	}
}

func TestAccountLockTerminatesSessions(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &fakeApp{}
	h := sessionHandler(t, app, c, &JWTConfig{})
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
	c.advance(time.Second)
	for i := 0; i < 3; i++ {
		login(t, h, up, "alice", "wrong", "203.0.113.50")
	}
	if code, _ := call(t, h, &userApp{}, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusUnauthorized {
		t.Fatalf("alice's session after her account was locked: %d, want 401", code)
	}
	evs := eventsOf(t, app, detect.SessionRevoked)
	if len(evs) == 0 || evs[len(evs)-1].Details["source"] != "auto" {
		t.Fatalf("SESSION_REVOKED: %+v", evs)
	}
	// terminate_sessions_on none keeps sessions alive
	app2 := testApp(t)
	h2 := sessionHandler(t, app2, c, &JWTConfig{}, func(h *Handler) { h.TerminateSessionsOn = []string{"none"} })
	for i := 0; i < 3; i++ {
		login(t, h2, up, "alice", "wrong", "203.0.113.50")
	}
	if code, _ := call(t, h2, &userApp{}, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusOK {
		t.Fatalf("with terminate_sessions_on none: %d", code)
	}
}

func TestVerifyCacheBounds(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{CacheSize: 8})
	now := c.now()
	short := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", now, "exp", now.Add(90*time.Second).Unix()))
	call(t, h, up, "GET", "/x", "198.51.100.1", bearer(short))
	if up.last() != "alice" || h.sessions.CacheLen() != 1 {
		t.Fatalf("the token identified %q; cache holds %d entries", up.last(), h.sessions.CacheLen())
	}
	// past exp (and the leeway) the token no longer identifies anyone
	c.advance(90*time.Second + session.DefaultLeeway + time.Second)
	if call(t, h, up, "GET", "/x", "198.51.100.1", bearer(short)); up.last() != "" {
		t.Fatalf("expired cached token still identified %q", up.last())
	}
	for i := 0; i < 50; i++ {
		tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("u"+itoa(int64(i)), c.now()))
		call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok))
	}
	if n := h.sessions.CacheLen(); n > 8 {
		t.Fatalf("cache grew to %d entries, bound 8", n)
	}
}
