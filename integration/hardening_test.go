package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
)

// signed is an HS256 token for user, issued at iat, living for life.
func signed(t *testing.T, user string, iat time.Time, life time.Duration) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": iat.Unix(), "exp": iat.Add(life).Unix(), "jti": randomHex(8),
	}).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRevokedTokenRefusedWhereverTheAppReadsIt: a site whose sessions are a
// cookie, in front of an app that takes a token from anywhere (and does
// not check exp): alice's revoked token is refused in the Authorization
// header, another cookie, the query, a form body, beside a valid cookie of
// bob's, and when it lives longer than max_lifetime.
func TestRevokedTokenRefusedWhereverTheAppReadsIt(t *testing.T) {
	t.Parallel()
	up, app := newLenientUpstream(t)
	g := startGateway(t, gatewayConfig{Global: "store memory", Upstream: up, Policy: `session jwt {
			cookie sid
			key hs256 ` + jwtSecret + `
			max_lifetime 1h
		}`})
	now := time.Now()
	alice, bob := signed(t, "alice", now.Add(-time.Minute), 30*time.Minute), signed(t, "bob", now, 30*time.Minute)
	longLived := signed(t, "alice", now.Add(-time.Minute), 48*time.Hour)
	if r := g.do("GET", "/whoami", nil, http.Header{"Authorization": {"Bearer " + alice}}); string(r.Body) != "alice" {
		t.Fatalf("before the revocation: %s", r)
	}
	if code, body := g.adminDo("POST", "/vigil/revocations", map[string]string{"user": "alice"}); code != http.StatusCreated {
		t.Fatalf("revoke: %d %s", code, body)
	}
	served := app.servedAs.Load()
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {"sid=" + bob}}
	for _, c := range []struct {
		name, path, body string
		hdr              http.Header
	}{
		{"bearer", "/whoami", "", http.Header{"Authorization": {"Bearer " + alice}}},
		{"bearer beside bob's cookie", "/whoami", "", http.Header{"Authorization": {"Bearer " + alice}, "Cookie": {"sid=" + bob}}},
		{"another cookie", "/whoami", "", http.Header{"Cookie": {"sid=" + bob + "; legacy=" + alice}}},
		{"query", "/whoami?access_token=" + alice, "", nil},
		{"form body", "/whoami", "access_token=" + alice, form},
		{"beyond max_lifetime", "/whoami", "", http.Header{"Authorization": {"Bearer " + longLived}}},
	} {
		var r reply
		if c.body != "" {
			r = g.do("POST", c.path, strings.NewReader(c.body), c.hdr)
		} else {
			r = g.do("GET", c.path, nil, c.hdr)
		}
		if r.Status != http.StatusUnauthorized || app.servedAs.Load() != served {
			t.Errorf("%s: %s (the app served someone %d times)", c.name, r, app.servedAs.Load()-served)
		}
	}
	if r := g.do("GET", "/whoami", nil, http.Header{"Cookie": {"sid=" + bob}}); string(r.Body) != "bob" {
		t.Fatalf("bob's own cookie: %s", r)
	}
}

// TestRestrictCannotBeDodgedByPathForms: "/admin/..;/x" (Go's ServeMux
// routes it under /admin/) and "/admin/../x" (Express routes the raw path)
// are refused to a session without the admin role.
func TestRestrictCannotBeDodgedByPathForms(t *testing.T) {
	t.Parallel()
	up, _ := newLenientUpstream(t)
	g := startGateway(t, gatewayConfig{Global: "store memory", Upstream: up, Policy: `session jwt {
			key hs256 ` + jwtSecret + `
		}
		restrict /admin/* role admin
		probes off`})
	user := http.Header{"Authorization": {"Bearer " + signed(t, "carol", time.Now(), time.Hour)}}
	for _, p := range []string{"/admin/x", "/admin/..;/x", "/admin;a=1/x", "/ADMIN/x"} {
		if r := g.do("GET", p, nil, user); r.Status != http.StatusForbidden {
			t.Errorf("GET %s without the role: %s", p, r)
		}
	}
	// Go's client cleans "/admin/../x" before sending it: send it raw
	host := strings.TrimPrefix(g.base, "http://")
	raw := g.rawRequest(t, "GET /admin/../x HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: "+user.Get("Authorization")+"\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(raw, "HTTP/1.1 403") {
		t.Errorf("raw GET /admin/../x: %q", firstLine(raw))
	}
}

// TestFailClosedRefusesTheFirstLoginAfterRedisDies: with fail_mode closed,
// the very first login after Redis goes away is refused (503), and a
// password in the query of a probe never reaches an event.
func TestFailClosedRefusesTheFirstLoginAfterRedisDies(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t, 0)
	g := startGateway(t, gatewayConfig{Global: "store redis redis://" + srv.Addr + "\n\t\tfail_mode closed", Policy: hardenedPolicy})
	wantFailedLogin(t, g.login("alice", "x"))
	srv.Stop()
	if r := g.login("alice", "wonderland"); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("the first login after Redis died: %s, want 503", r)
	}
	if r := g.get("/"); r.Status != http.StatusOK {
		t.Fatalf("non-login requests keep flowing: %s", r)
	}
	redistest.StartServer(t, srv.Port)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	poll.True(t, 15*time.Second, "logins accepted again once Redis is back", func() bool {
		return c.Ping(context.Background()).Err() == nil && g.login("bob", "x").Status == http.StatusFound
	})
}

// TestSecretsNeverReachEvents: a password in the query of a request that
// trips a probe is redacted in the event and the log.
func TestSecretsNeverReachEvents(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: defaultPolicy + "\n\t\thoneypot /wp-admin/*"})
	g.get("/wp-admin/?user=admin&password=hunter2secret&api_key=k3y")
	evs := g.waitEvents(q("type", "SYSTEM_INTRUSION"), "the intrusion", func(evs []event) bool { return len(evs) > 0 })
	if q, _ := evs[0].Details["query"].(string); strings.Contains(q, "hunter2secret") || strings.Contains(q, "k3y") || !strings.Contains(q, "user=admin") {
		t.Fatalf("event query %q", q)
	}
	poll.True(t, 5*time.Second, "the event logged", func() bool { return strings.Contains(g.output(), "SYSTEM_INTRUSION") })
	if strings.Contains(g.output(), "hunter2secret") {
		t.Fatal("the password is in Caddy's log")
	}
}

// TestLenientTrustedProxiesWarned: trusted_proxies without
// trusted_proxies_strict is warned about at start.
func TestLenientTrustedProxiesWarned(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory\n\t}\n\tservers {\n\t\ttrusted_proxies static 10.0.0.0/8"})
	poll.True(t, 5*time.Second, "the warning", func() bool { return strings.Contains(g.output(), "trusted_proxies_strict") })
}

// rawRequest sends bytes as they are (no client cleans the path) and
// returns the raw answer.
func (g *gateway) rawRequest(t *testing.T, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(g.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
