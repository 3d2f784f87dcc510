package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/demoapp"
	"github.com/vigilsec/vigil/internal/poll"
)

// jwtSecret is the demo app's HS256 secret, which the gateways verify with.
const jwtSecret = "integration-test-secret-0123456789abcdef"

// jwtUpstream is the demo app issuing HS256 session cookies and API tokens.
func jwtUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{app: demoapp.New(demoapp.Options{JWTSecret: []byte(jwtSecret)})}
	u.srv = httptest.NewServer(u.app)
	t.Cleanup(u.srv.Close)
	return u
}

const sessionPolicy = `login POST /login {
			user form:username
			success redirect_not /login
		}
		session jwt {
			cookie demo_session
			key hs256 ` + jwtSecret + `
		}
		restrict /echo role admin`

// sessionCookie logs in through g and returns the session cookie header.
func sessionCookie(t *testing.T, g *gateway, user, password string) http.Header {
	t.Helper()
	r := g.login(user, password)
	wantSuccessLogin(t, r)
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == demoapp.SessionCookie {
			return http.Header{"Cookie": {c.Name + "=" + c.Value}}
		}
	}
	t.Fatalf("no %s cookie in %s", demoapp.SessionCookie, r)
	return nil
}

// me is the user the app was told about (X-Vigil-User from
// {http.vigil.user}), or the refusal.
func me(t *testing.T, g *gateway, cookie http.Header) (string, reply) {
	t.Helper()
	r := g.do(http.MethodGet, "/api/me", nil, cookie)
	var v demoapp.Me
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("/api/me: %v in %s", err, r)
		}
	}
	return v.User, r
}

// TestRevocationAcrossInstances: a user's sessions revoked through one
// gateway's admin API are refused by a second gateway sharing Redis, with
// the 401 of the design and the cookie cleared.
func TestRevocationAcrossInstances(t *testing.T) {
	t.Parallel()
	s := redisStore(t)
	up := jwtUpstream(t)
	a := startNamedGateway(t, "gateway A", gatewayConfig{Global: s.global, Policy: sessionPolicy, Upstream: up})
	b := startNamedGateway(t, "gateway B", gatewayConfig{Global: s.global, Policy: sessionPolicy, Upstream: up})

	alice := sessionCookie(t, a, "alice", "wonderland")
	bob := sessionCookie(t, a, "bob", "builder")
	if u, r := me(t, b, alice); u != "alice" {
		t.Fatalf("B should identify alice's session: %q %s", u, r)
	}
	// roles: alice is an admin, bob is not
	if r := b.do(http.MethodGet, "/echo", nil, alice); r.Status != http.StatusOK {
		t.Fatalf("alice on a restricted route: %s", r)
	}
	if r := b.do(http.MethodGet, "/echo", nil, bob); r.Status != http.StatusForbidden {
		t.Fatalf("bob on a restricted route: %s", r)
	}
	if r := b.get("/echo"); r.Status != http.StatusForbidden {
		t.Fatalf("anonymous on a restricted route: %s", r)
	}

	status, body := a.adminDo(http.MethodPost, "/vigil/revocations", map[string]string{"user": "alice", "reason": "laptop stolen"})
	if status != http.StatusCreated {
		t.Fatalf("POST /vigil/revocations on A: %d %s", status, body)
	}
	b.waitMetric(propagation, "vigil_active_decisions", `kind="revoke_user"`, 1)
	_, r := me(t, b, alice)
	if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("B with alice's revoked session: %s (WWW-Authenticate %q)", r, r.Header.Get("WWW-Authenticate"))
	}
	if sc := r.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, demoapp.SessionCookie+"=;") || !strings.Contains(sc, "Max-Age=0") {
		t.Fatalf("the revoked session's cookie is not cleared: %q", sc)
	}
	if _, r := me(t, a, alice); r.Status != http.StatusUnauthorized {
		t.Fatalf("A with alice's revoked session: %s", r)
	}
	if u, r := me(t, b, bob); u != "bob" {
		t.Fatalf("bob's session must survive alice's revocation: %q %s", u, r)
	}
	if d, ok := findDecision(b.decisions(), "revoke_user", "alice"); !ok || d.Source != "admin" || d.Reason != "laptop stolen" || d.Until.Sub(d.Created) < 24*time.Hour {
		t.Fatalf("B's /vigil/decisions should list the revocation for the longest token lifetime: %+v", b.decisions())
	}
	b.waitEvents(q("type", "SESSION_REVOKED", "user", "alice"), "the revocation and B's refusal", func(evs []event) bool {
		return len(evs) >= 2
	})
	a.waitEvents(q("type", "ADMIN_ACTION"), "the admin action", func(evs []event) bool {
		return len(evs) == 1 && evs[0].Details["action"] == "revoke"
	})

	// alice logs in again: her new session (issued after the revocation,
	// at whole-second resolution) works
	poll.Until(t, 3*time.Second, "a session issued after the revocation is accepted", func() (bool, string) {
		u, r := me(t, b, sessionCookie(t, a, "alice", "wonderland"))
		return u == "alice", r.String()
	})

	// the CLI revokes one token by jti and lifts a user revocation
	out, errOut, err := b.vigilCLI("revoke", "--jti", "some-token-id", "--reason", "leaked")
	if err != nil || !strings.Contains(out, `"revoke_jti"`) {
		t.Fatalf("caddy vigil revoke --jti: %v\n%s\n%s", err, out, errOut)
	}
	if out, errOut, err := b.vigilCLI("unrevoke", "alice"); err != nil || !strings.Contains(out, `"lifted": true`) {
		t.Fatalf("caddy vigil unrevoke alice: %v\n%s\n%s", err, out, errOut)
	}
	if status, body := b.adminDo(http.MethodPost, "/vigil/revocations", map[string]string{"user": "x", "jti": "y"}); status != http.StatusBadRequest {
		t.Fatalf("user and jti together: %d %s", status, body)
	}
}

// TestHoneypotBlocksTheAddress: one request to a honeypot blocks the client.
func TestHoneypotBlocksTheAddress(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: "honeypot /wp-admin* /.trap\n\t\tintrusion_ban 1h max 24h"})
	if r := g.get("/dashboard"); r.Status != http.StatusOK {
		t.Fatalf("before: %s", r)
	}
	wantRefused(t, g.get("/wp-admin/install.php"), http.StatusForbidden, 3599, 3600)
	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3599, 3600)
	if d := g.mustDecision("block", "127.0.0.1"); d.Reason != "SYSTEM_INTRUSION: honeypot" {
		t.Fatalf("block: %+v", d)
	}
	evs := g.waitEvents(q("type", "SYSTEM_INTRUSION"), "the honeypot hit", func(evs []event) bool { return len(evs) == 1 })
	if evs[0].Severity != "CRITICAL" || evs[0].Details["kind"] != "honeypot" || evs[0].IP != "127.0.0.1" {
		t.Fatalf("event: %+v", evs[0])
	}
}

// TestDirectoryScanBlocked: a normal visit with a few 404s is not blocked;
// a scan of many missing paths is, once it passes the threshold.
func TestDirectoryScanBlocked(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{Global: s.global, Policy: "probes {\n\t\t\tscan 6 within 1m\n\t\t}"})
		// a visitor: pages, a couple of broken links, missing assets
		for _, p := range []string{"/", "/dashboard", "/old-link", "/favicon.ico", "/img/logo.png", "/js/app.js", "/login", "/old-link", "/another-old-link", "/dashboard"} {
			if r := g.get(p); r.Status != http.StatusOK && r.Status != http.StatusNotFound {
				t.Fatalf("visitor GET %s: %s", p, r)
			}
		}
		if r := g.get("/dashboard"); r.Status != http.StatusOK {
			t.Fatalf("a visitor with a few 404s was blocked: %s", r)
		}
		// a scanner walks a word list
		blockedAfter := 0
		for i, word := range strings.Fields("admin backup old test dev api2 private config uploads tmp cgi-bin console portal internal staging beta") {
			r := g.get("/" + word + "/")
			if r.Status == http.StatusForbidden {
				blockedAfter = i
				break
			}
			if r.Status != http.StatusNotFound {
				t.Fatalf("scan GET /%s/: %s", word, r)
			}
		}
		if blockedAfter == 0 {
			poll.Until(t, 3*time.Second, "the scanner is blocked", func() (bool, string) {
				r := g.get("/")
				return r.Status == http.StatusForbidden, r.String()
			})
		}
		evs := g.waitEvents(q("type", "SYSTEM_INTRUSION"), "the scan finding", func(evs []event) bool { return len(evs) == 1 })
		if evs[0].Details["kind"] != "scan" || evs[0].Severity != "HIGH" {
			t.Fatalf("event: %+v", evs[0])
		}
		if d := g.mustDecision("block", "127.0.0.1"); !strings.HasPrefix(d.Reason, "SYSTEM_INTRUSION") {
			t.Fatalf("block: %+v", d)
		}
	})
}

// TestRevokedSessionVariants: once alice is revoked, no way of sending her
// cookie that an app stack reads (a duplicate, a malformed first copy, a
// space before '=', percent-encoding) reaches the app as anonymous; and her
// stale cookie does not stop her logging in again.
func TestRevokedSessionVariants(t *testing.T) {
	t.Parallel()
	up := jwtUpstream(t)
	g := startGateway(t, gatewayConfig{Global: "store memory", Upstream: up, Policy: sessionPolicy})
	cookie := sessionCookie(t, g, "alice", "wonderland").Get("Cookie")
	tok := strings.TrimPrefix(cookie, demoapp.SessionCookie+"=")
	if u, r := me(t, g, http.Header{"Cookie": {cookie}}); u != "alice" {
		t.Fatalf("before the revocation: %q %s", u, r)
	}
	if status, body := g.adminDo(http.MethodPost, "/vigil/revocations", map[string]string{"user": "alice"}); status != http.StatusCreated {
		t.Fatalf("revoking alice: %d %s", status, body)
	}
	name := demoapp.SessionCookie
	for what, v := range map[string]string{
		"duplicate":          name + "=" + tok + "; " + name + "=" + tok,
		"invalid first copy": name + `=x\y; ` + name + "=" + tok,
		"space before =":     name + " =" + tok,
		"percent-encoded":    name + "=%" + strings.ToUpper(strconv.FormatInt(int64(tok[0]), 16)) + tok[1:],
		"padded":             name + "=" + tok + "=",
		"PHP-mangled name":   strings.Replace(name, "_", ".", 1) + "=" + tok,
	} {
		if _, r := me(t, g, http.Header{"Cookie": {v}}); r.Status != http.StatusUnauthorized {
			t.Errorf("alice's revoked cookie, %s: %s", what, r)
		}
	}
	// logging in again with the stale cookie works, and clears it first
	// (a session issued in the revocation's second is revoked too: polled
	// until the new session is a usable one)
	var r reply
	poll.Until(t, 3*time.Second, "a usable login after the revocation", func() (bool, string) {
		r = g.loginWith("alice", "wonderland", http.Header{"Cookie": {cookie}})
		if r.Status != http.StatusFound || r.Header.Get("Location") != "/dashboard" {
			return false, r.String()
		}
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == name && c.Value != "" {
				u, _ := me(t, g, http.Header{"Cookie": {name + "=" + c.Value}})
				return u == "alice", "new session identifies " + u
			}
		}
		return false, "no new session cookie"
	})
	if sc := r.Header.Values("Set-Cookie"); len(sc) < 2 || !strings.HasPrefix(sc[0], name+"=;") {
		t.Fatalf("login with a stale cookie: Set-Cookie %q, want the clearing first, then the new session", sc)
	}
}
