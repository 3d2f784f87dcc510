package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
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

// revokeUser revokes every session of user issued until now.
func revokeUser(t *testing.T, app *App, user string, now time.Time) {
	t.Helper()
	if _, err := app.core.Revoke(context.Background(), respond.Revocation{Kind: respond.RevokeUser, Target: user, Reason: "test", Source: "admin"}, now); err != nil {
		t.Fatal(err)
	}
}

// TestRevokedTokenParserDifferentials: with alice revoked, every way of
// sending her token that some app stack accepts is refused, not passed on
// as anonymous.
func TestRevokedTokenParserDifferentials(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	cookieH := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid"})
	headerH := sessionHandler(t, app, c, &JWTConfig{})
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
	other := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now()))
	c.advance(2 * time.Second)
	revokeUser(t, app, "alice", c.now())

	// the token with its first payload byte percent-encoded, as PHP and
	// Express decode cookie values
	encoded := "%" + strings.ToUpper(hexByte(tok[0])) + tok[1:]
	parts := strings.Split(tok, ".")
	padded := parts[0] + "=." + parts[1] + "==." + parts[2] + "="
	cookies := map[string]string{
		"duplicate cookie":            "sid=" + tok + "; sid=" + tok,
		"invalid first copy":          `sid=x\y; sid=` + tok,
		"garbage first copy":          "sid=garbage; sid=" + tok,
		"other user's token first":    "sid=" + other + "; sid=" + tok,
		"revoked token first":         "sid=" + tok + "; sid=" + other,
		"space before =":              "sid =" + tok,
		"percent-encoded":             "sid=" + encoded,
		"padded segments":             "sid=" + padded,
		"comma separated":             "theme=dark, sid=" + tok,
		"quoted":                      `sid="` + tok + `"`,
		"five copies (too many)":      "sid=a; sid=b; sid=c; sid=d; sid=" + tok,
		"five copies, revoked first":  "sid=" + tok + "; sid=a; sid=b; sid=c; sid=d",
		"two header lines, 2nd token": "", // below
	}
	for name, v := range cookies {
		hdr := http.Header{"Cookie": {v}}
		if v == "" {
			hdr = http.Header{"Cookie": {"theme=dark", "sid=" + tok}}
		}
		code, h := call(t, cookieH, up, "GET", "/x", "198.51.100.1", hdr)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("Set-Cookie"), "sid=;") {
			t.Errorf("cookie %s: %d (Set-Cookie %q), want 401 with the cookie cleared", name, code, h.Get("Set-Cookie"))
		}
	}
	headers := map[string][]string{
		"tab after Bearer":          {"Bearer\t" + tok},
		"padded signature":          {"Bearer " + tok + "="},
		"standard base64 alphabet":  {"Bearer " + strings.NewReplacer("-", "+", "_", "/").Replace(tok)},
		"Basic first, then Bearer":  {"Basic YWxpY2U6eA==", "Bearer " + tok},
		"joined by a proxy":         {"Basic YWxpY2U6eA==, Bearer " + tok},
		"lower-case scheme":         {"bearer " + tok},
		"two tokens in one header":  {"Bearer " + other + " " + tok},
		"valid token, then revoked": {"Bearer " + other, "Bearer " + tok},
	}
	for name, v := range headers {
		if code, _ := call(t, headerH, up, "GET", "/x", "198.51.100.1", http.Header{"Authorization": v}); code != http.StatusUnauthorized {
			t.Errorf("header %s: %d, want 401", name, code)
		}
	}
	if len(up.users) != 0 {
		t.Fatalf("the upstream saw %v", up.users)
	}
	// and the variants still identify an unrevoked user
	bob := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now()))
	bob2 := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now(), "jti", "bob-second"))
	for name, v := range map[string]string{
		"duplicate":       "sid=" + bob + "; sid=" + bob,
		"garbage first":   `sid=x\y; sid=` + bob,
		"two bob tokens":  "sid=" + bob + "; sid=" + bob2,
		"percent-encoded": "sid=%" + strings.ToUpper(hexByte(bob[0])) + bob[1:],
	} {
		if code, _ := call(t, cookieH, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {v}}); code != http.StatusOK || up.last() != "bob" {
			t.Errorf("bob, %s: %d %q", name, code, up.last())
		}
	}
}

// TestAmbiguousSessions: tokens of two users identify nobody (401 with
// require); too many tokens are refused.
func TestAmbiguousSessions(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid"})
	req := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid", Require: true})
	alice := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
	bob := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now()))
	two := http.Header{"Cookie": {"sid=" + alice + "; sid=" + bob}}
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", two); code != http.StatusOK || up.last() != "" {
		t.Fatalf("two users: %d %q, want anonymous", code, up.last())
	}
	if code, _ := call(t, req, up, "GET", "/x", "198.51.100.1", two); code != http.StatusUnauthorized {
		t.Fatalf("two users with require: %d", code)
	}
	many := http.Header{"Cookie": {"sid=" + alice + "; sid=a; sid=b; sid=c; sid=d"}}
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", many); code != http.StatusUnauthorized {
		t.Fatalf("five tokens: %d, want 401", code)
	}
	// a login route is not refused for it
	if code, _ := call(t, h, up, "POST", "/login", "198.51.100.1", many); code == http.StatusUnauthorized {
		t.Fatal("five tokens on the login route: 401")
	}
}

// TestSameUserTokensGrantCommonRoles: two verified tokens of one user grant
// only the roles both carry (the app may read either).
func TestSameUserTokensGrantCommonRoles(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid"}, func(h *Handler) {
		h.Restrict = []RestrictRule{{Path: "/admin/*", Roles: []string{"admin"}}}
	})
	admin := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now(), "roles", []string{"admin", "user"}))
	user := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now(), "roles", []string{"user"}, "jti", "2"))
	if code, _ := call(t, h, up, "GET", "/admin/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + admin}}); code != http.StatusOK {
		t.Fatalf("admin token: %d", code)
	}
	if code, _ := call(t, h, up, "GET", "/admin/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + admin + "; sid=" + user}}); code != http.StatusForbidden {
		t.Fatalf("admin and user tokens: %d, want 403", code)
	}
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + user + "; sid=" + admin}}); code != http.StatusOK || up.last() != "alice" {
		t.Fatalf("both tokens elsewhere: %d %q", code, up.last())
	}
}

func hexByte(b byte) string {
	return string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
}

// TestRequireStillDetectsProbes: with require, requests without a valid
// session are still checked for probes (recorded and blocked), not only
// answered 401. The probes that ban on one request are here; the ones that
// need a series of requests are in TestRequireStillScoresProbes.
func TestRequireStillDetectsProbes(t *testing.T) {
	c := newClock()
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
	for name, tc := range map[string]struct {
		target, ua string
		hdr        http.Header
	}{
		"honeypot":                     {"/trap", "", nil},
		"scanner agent":                {"/", "sqlmap/1.7.2#stable", nil},
		"scanner with a revoked token": {"/", "sqlmap/1.7.2#stable", bearer(tok)},
	} {
		app, up := testApp(t), &userApp{}
		h := sessionHandler(t, app, c, &JWTConfig{Require: true}, func(h *Handler) { h.Honeypot = []string{"/trap"} })
		if tc.hdr != nil {
			revokeUser(t, app, "alice", c.now().Add(time.Second))
		}
		hdr := http.Header{"User-Agent": {tc.ua}}
		for k, v := range tc.hdr {
			hdr[k] = v
		}
		code, _ := call(t, h, up, "GET", tc.target, "203.0.113.70", hdr)
		if code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403 (intrusion)", name, code)
		}
		if evs := eventsOf(t, app, detect.SystemIntrusion); len(evs) != 1 {
			t.Errorf("%s: %d SYSTEM_INTRUSION events", name, len(evs))
		}
		if code, _ := call(t, h, up, "GET", "/", "203.0.113.70", bearer(mint(t, jose.HS256, []byte(testSecret), "", claimsAt("carol", c.now())))); code != http.StatusForbidden {
			t.Errorf("%s: the address is not blocked (%d)", name, code)
		}
	}
	// and without a probe, require still answers 401
	app := testApp(t)
	h := sessionHandler(t, app, c, &JWTConfig{Require: true})
	if code, hdr := call(t, h, &userApp{}, "GET", "/x", "198.51.100.1", nil); code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("no token: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
}

// TestProvisionChecksSessionConfig: Caddy provisions before it validates;
// a bad session config is an error there, never a panic, and algorithm
// names are case-insensitive.
func TestProvisionChecksSessionConfig(t *testing.T) {
	rsaPEM := writePEM(t, &sharedKeys.rsa.PublicKey)
	provision := func(js string) error {
		var h Handler
		if err := json.Unmarshal([]byte(js), &h); err != nil {
			t.Fatal(err)
		}
		err := h.setup(testApp(t))
		if err == nil {
			_ = h.Cleanup()
		}
		return err
	}
	pemJSON, _ := json.Marshal(rsaPEM)
	for _, alg := range []string{"RS256", "rs256", "Rs256"} {
		if err := provision(`{"session":{"jwt":{"keys":[{"alg":"` + alg + `","pem_file":` + string(pemJSON) + `}]}}}`); err != nil {
			t.Errorf("alg %s: %v", alg, err)
		}
	}
	for name, js := range map[string]string{
		"unknown alg":      `{"session":{"jwt":{"keys":[{"alg":"RS999","pem_file":` + string(pemJSON) + `}]}}}`,
		"empty alg":        `{"session":{"jwt":{"keys":[{"pem_file":` + string(pemJSON) + `}]}}}`,
		"no keys":          `{"session":{"jwt":{}}}`,
		"hmac for a jwks":  `{"session":{"jwt":{"jwks":[{"url":"https://id.test/jwks","algs":["HS256"]}]}}}`,
		"header + cookie":  `{"session":{"jwt":{"header":"X-T","cookie":"sid","keys":[{"alg":"HS256","secret":"` + testSecret + `"}]}}}`,
		"negative leeway":  `{"session":{"jwt":{"leeway":-1,"keys":[{"alg":"HS256","secret":"` + testSecret + `"}]}}}`,
		"secret for RS256": `{"session":{"jwt":{"keys":[{"alg":"RS256","secret":"` + testSecret + `"}]}}}`,
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: provisioning panicked: %v", name, p)
				}
			}()
			if err := provision(js); err == nil {
				t.Errorf("%s: provisioned", name)
			}
		}()
	}
}

// TestRestrictPathParameters: ";" path parameters (stripped by Java
// servers before routing) and the bare prefix do not slip past a rule.
func TestRestrictPathParameters(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{}, func(h *Handler) {
		h.Restrict = []RestrictRule{{Path: "/admin/*", Roles: []string{"admin"}}}
		h.Probes = &ProbesConfig{Off: true}
	})
	admin := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now(), "roles", []string{"admin"}))
	for path, want := range map[string]int{
		"/admin":                   403,
		"/admin/":                  403,
		"/ADMIN":                   403,
		"/admin;jsessionid=1/x":    403,
		"/admin;/x":                403,
		"/ADMIN;x=1":               403,
		"/x/..;/admin/y":           403,
		"/;x/admin/y":              403,
		"/admin/..;/x":             403, // Go's ServeMux routes it to /admin/
		"/admin/../x":              403, // Express routes the raw path
		"/administrator":           200,
		"/public;jsessionid=1/x":   200,
		"/public/admin;jsessionid": 200,
	} {
		if code, _ := call(t, h, up, "GET", path, "198.51.100.7", nil); code != want {
			t.Errorf("anonymous GET %s: %d, want %d", path, code, want)
		}
		if code, _ := call(t, h, up, "GET", path, "198.51.100.7", bearer(admin)); code != http.StatusOK {
			t.Errorf("admin GET %s: %d, want 200", path, code)
		}
	}
}

// TestRestrictClaimIsRolesClaim: a rule naming the session's roles claim
// reads the roles, not an empty extra claim.
func TestRestrictClaimIsRolesClaim(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{RolesClaim: "groups"}, func(h *Handler) {
		h.Restrict = []RestrictRule{{Path: "/admin/*", Roles: []string{"admin"}, Claim: "groups"}, {Path: "/ops/*", Roles: []string{"ops"}, Claim: "roles"}}
	})
	admin := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now(), "groups", []string{"admin"}, "roles", []string{"ops"}))
	user := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now(), "groups", []string{"user"}))
	for _, tc := range []struct {
		path, tok string
		want      int
	}{
		{"/admin/x", admin, 200}, {"/admin/x", user, 403}, {"/ops/x", admin, 200}, {"/ops/x", user, 403},
	} {
		if code, _ := call(t, h, up, "GET", tc.path, "198.51.100.7", bearer(tc.tok)); code != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, code, tc.want)
		}
	}
	if h.Restrict[0].Claim != "groups" {
		t.Error("provisioning changed the configuration")
	}
}

// TestNoTokenOutlivesItsRevocation: the longest-lived token a site accepts,
// revoked the second it was issued, is refused until it expires for good.
func TestNoTokenOutlivesItsRevocation(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	leeway, maxLife := caddy.Duration(30*time.Second), time.Hour
	h := sessionHandler(t, app, c, &JWTConfig{Leeway: &leeway, MaxLifetime: caddy.Duration(maxLife)})
	iat := c.now()
	// the longest lifetime accepted (exp − iat up to max_lifetime + leeway)
	exp := iat.Add(maxLife + time.Duration(leeway))
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", iat, "exp", exp.Unix()))
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusOK || up.last() != "alice" {
		t.Fatalf("the token is not accepted: %d", code)
	}
	c.advance(900 * time.Millisecond) // revoked in the second it was issued
	d, err := app.core.Revoke(context.Background(), respond.Revocation{Kind: respond.RevokeUser, Target: "alice", Reason: "test", Source: "admin"}, c.now())
	if err != nil {
		t.Fatal(err)
	}
	// accepted while now < exp + leeway: the revocation must last that long
	lastAccepted := exp.Add(time.Duration(leeway) - time.Nanosecond)
	if d.Until.Before(lastAccepted) {
		t.Fatalf("the revocation ends at %s, the token is accepted until %s", d.Until, lastAccepted)
	}
	c.t.Store(lastAccepted.UnixNano())
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusUnauthorized {
		t.Fatalf("just before exp + leeway: %d, want 401", code)
	}
	// expired now, but still genuine and still revoked: a lenient app
	// might accept it, so it stays refused while the revocation lasts
	c.advance(time.Nanosecond)
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusUnauthorized {
		t.Fatalf("at exp + leeway, still revoked: %d, want 401", code)
	}
	c.t.Store(d.Until.UnixNano())
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusOK || up.last() != "" {
		t.Fatalf("once the revocation ended: %d %q, want anonymous", code, up.last())
	}
}

// TestLoginIgnoresRevokedSession: the stale cookie of a revoked session
// does not stop the user logging in again; it is still cleared.
func TestLoginIgnoresRevokedSession(t *testing.T) {
	c := newClock()
	app := testApp(t)
	h := sessionHandler(t, app, c, &JWTConfig{Cookie: "sid"})
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
	c.advance(time.Second)
	revokeUser(t, app, "alice", c.now())
	up := &fakeApp{}
	r := newRequest("POST", "/login", "username=alice&password=secret", "198.51.100.1")
	r.Header.Set("Cookie", "sid="+tok)
	code, hdr := serve(t, h, up, r)
	if code == http.StatusUnauthorized || up.hits != 1 {
		t.Fatalf("login with a revoked session's cookie: %d, upstream hits %d", code, up.hits)
	}
	if sc := hdr.Get("Set-Cookie"); !strings.HasPrefix(sc, "sid=;") || !strings.Contains(sc, "Max-Age=0") {
		t.Fatalf("the stale cookie is not cleared: %q", sc)
	}
	// elsewhere it is still refused
	if code, _ := call(t, h, &userApp{}, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {"sid=" + tok}}); code != http.StatusUnauthorized {
		t.Fatalf("revoked session off the login route: %d", code)
	}
}

// TestClearedPrefixedCookiesAreSecure: behind a TLS-terminating proxy
// (r.TLS nil) a __Host- or __Secure- cookie is still cleared with Secure,
// or browsers would ignore the clearing.
func TestClearedPrefixedCookiesAreSecure(t *testing.T) {
	c := newClock()
	for _, name := range []string{"__Host-sid", "__Secure-sid", "sid"} {
		app := testApp(t)
		h := sessionHandler(t, app, c, &JWTConfig{Cookie: name})
		tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now()))
		revokeUser(t, app, "alice", c.now().Add(time.Second))
		code, hdr := call(t, h, &userApp{}, "GET", "/x", "198.51.100.1", http.Header{"Cookie": {name + "=" + tok}})
		sc := hdr.Get("Set-Cookie")
		secure := strings.Contains(sc, "; Secure")
		if code != http.StatusUnauthorized || !strings.HasPrefix(sc, name+"=;") || secure != strings.HasPrefix(name, "__") {
			t.Errorf("%s: %d %q", name, code, sc)
		}
	}
}

// TestLongJTIRevocations: every jti the admin API accepts can match a token.
func TestLongJTIRevocations(t *testing.T) {
	c := newClock()
	c.t.Store(time.Now().UnixNano()) // the admin API revokes at time.Now
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{})
	api := &adminAPI{}
	post := func(jti string) int {
		body, _ := json.Marshal(map[string]string{"jti": jti})
		w := httptest.NewRecorder()
		err := api.revoke(w, httptest.NewRequest("POST", "/vigil/revocations", bytes.NewReader(body)), app)
		var ae caddy.APIError
		if errors.As(err, &ae) {
			return ae.HTTPStatus
		}
		if err != nil {
			t.Fatal(err)
		}
		return w.Code
	}
	long := strings.Repeat("j", session.MaxJTIBytes)
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", c.now(), "jti", long))
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusOK {
		t.Fatalf("before: %d", code)
	}
	if code := post(long); code != http.StatusCreated {
		t.Fatalf("revoking a %d-byte jti: %d", len(long), code)
	}
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); code != http.StatusUnauthorized {
		t.Fatalf("a token whose %d-byte jti is revoked: %d, want 401", len(long), code)
	}
	if code := post(long + "j"); code != http.StatusBadRequest {
		t.Fatalf("a jti longer than any kept: %d, want 400", code)
	}
}

var _ caddyhttp.Handler = (*userApp)(nil)
