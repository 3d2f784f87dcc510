package integration

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/geotest"
	"github.com/vigilsec/vigil/internal/poll"
)

// Places of internal/geotest's Documentation table, reached through
// X-Forwarded-For from the trusted loopback proxy.
const (
	berlin   = "192.0.2.10"    // DE, AS3320, radius 20 km
	berlin2  = "192.0.2.11"    // the same network
	potsdam  = "192.0.2.200"   // DE, AS3209, radius 50 km: overlaps Berlin
	newYork  = "198.51.100.10" // US, AS7922
	sydney   = "203.0.113.10"  // AU, AS1221
	firefox  = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	scripted = "python-requests/2.31.0"
)

// geoGlobal is the global vigil option with the test GeoIP databases and
// extra lines, and a server that trusts X-Forwarded-For from loopback only.
func geoGlobal(t *testing.T, s storeCase, extra string) string {
	city, asn := geotest.Files(t)
	return fmt.Sprintf("%s\n\t\tgeoip %s asn %s%s\n\t}\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict", s.global, city, asn, extra)
}

const geoLogin = `login POST /login {
			user form:username
			success redirect_not /login
		}`

// loginFrom submits the login form as a client at ip with a User-Agent.
func (g *gateway) loginFrom(user, password, ip, agent string) reply {
	g.t.Helper()
	return g.loginWith(user, password, http.Header{"X-Forwarded-For": {ip}, "User-Agent": {agent}})
}

// TestImpossibleTravel: Berlin, then New York a moment later, is
// IMPOSSIBLE_TRAVEL, located and delivered by signed webhook; Berlin then
// Potsdam, whose accuracy radii overlap, is nothing.
func TestImpossibleTravel(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		h := newHookReceiver(t)
		g := startGateway(t, gatewayConfig{
			Global: geoGlobal(t, s, fmt.Sprintf("\n\t\talert webhook %s/hook {\n\t\t\tsecret %s\n\t\t\tmin_severity HIGH\n\t\t}", h.srv.URL, alertSecret)),
			Policy: geoLogin + "\n\t\tlocation",
		})
		wantSuccessLogin(t, g.loginFrom("carol", "secret123", berlin, firefox))
		wantSuccessLogin(t, g.loginFrom("carol", "secret123", potsdam, firefox))
		wantSuccessLogin(t, g.loginFrom("alice", "wonderland", berlin, firefox))
		wantSuccessLogin(t, g.loginFrom("alice", "wonderland", newYork, firefox))

		var alert map[string]any
		poll.Until(t, 10*time.Second, "signed IMPOSSIBLE_TRAVEL webhook", func() (bool, string) {
			got := h.alerts("IMPOSSIBLE_TRAVEL", "alice")
			if len(got) == 0 {
				return false, h.summary()
			}
			alert = got[0]
			return true, ""
		})
		if alert["severity"] != "HIGH" || alert["country"] != "US" || alert["ip"] != newYork {
			t.Fatalf("IMPOSSIBLE_TRAVEL alert: %v", alert)
		}
		evs := g.waitEvents(q("type", "SUCCESSFUL_LOGIN", "user", "alice"), "alice's logins", func(evs []event) bool { return len(evs) == 2 })
		if evs[0].Country != "US" || evs[0].City != "New York" || evs[0].ASN != 7922 || evs[1].Country != "DE" {
			t.Fatalf("logins are not located: %+v", evs)
		}
		// carol's logins are a few kilometres apart, within the radii
		g.waitEvents(q("type", "SUCCESSFUL_LOGIN", "user", "carol"), "carol's logins", func(evs []event) bool { return len(evs) == 2 })
		if got := g.events(q("type", "IMPOSSIBLE_TRAVEL", "user", "carol")); len(got) != 0 {
			t.Fatalf("overlapping places raised IMPOSSIBLE_TRAVEL: %s", dumpEvents(got))
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.bad != 0 {
			t.Fatalf("%d webhooks failed signature verification", h.bad)
		}
	})
}

// TestUnusualLocation: nothing while a user's places are being learned;
// afterwards a new country is UNUSUAL_LOCATION naming what was new and
// what was known, and a known country is nothing. Travel is judged on
// another test: its minimum distance is set beyond any journey here.
func TestUnusualLocation(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{
		Global: geoGlobal(t, memoryStore(), ""),
		Policy: geoLogin + "\n\t\tlocation {\n\t\t\tlearn 2\n\t\t\ttravel 1000 min 50000\n\t\t}",
	})
	wantSuccessLogin(t, g.loginFrom("bob", "builder", berlin, firefox))
	wantSuccessLogin(t, g.loginFrom("bob", "builder", newYork, firefox)) // new, but still learning
	g.waitEvents(q("type", "SUCCESSFUL_LOGIN", "user", "bob"), "the learning logins", func(evs []event) bool { return len(evs) == 2 })
	wantSuccessLogin(t, g.loginFrom("bob", "builder", berlin2, firefox)) // known
	wantSuccessLogin(t, g.loginFrom("bob", "builder", sydney, firefox))  // new
	g.waitEvents(q("type", "UNUSUAL_LOCATION", "user", "bob"), "UNUSUAL_LOCATION", func(evs []event) bool { return len(evs) >= 1 })
	wantSuccessLogin(t, g.loginFrom("bob", "builder", newYork, firefox)) // known since learning
	// addresses without a place are never new: private, IPv4-mapped
	// private, and a documentation address the database does not know
	for _, ip := range []string{"10.1.2.3", "::ffff:10.1.2.3", "2001:db8:ffff::10"} {
		wantSuccessLogin(t, g.loginFrom("bob", "builder", ip, firefox))
	}
	g.waitEvents(q("type", "SUCCESSFUL_LOGIN", "user", "bob"), "all logins", func(evs []event) bool { return len(evs) == 8 })
	evs := g.events(q("type", "UNUSUAL_LOCATION", "user", "bob"))
	if len(evs) != 1 || evs[0].IP != sydney || evs[0].Country != "AU" || evs[0].Severity != "MEDIUM" {
		t.Fatalf("want one UNUSUAL_LOCATION for Sydney:\n%s", dumpEvents(evs))
	}
	if d := fmt.Sprint(evs[0].Details); !containsAll(d, "country", "DE", "US") {
		t.Fatalf("the event does not say what was new and what was known: %s", d)
	}
}

// TestLoginRisk: a habitual login reaches the app without a risk header,
// even when the client sends one; the same user from a new country and
// network with a scripted client is challenged (X-Vigil-Risk at or above
// the threshold) and reported as SUSPICIOUS_LOGIN.
func TestLoginRisk(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{
			Global: geoGlobal(t, s, ""),
			Policy: geoLogin + "\n\t\trisk {\n\t\t\talert 16\n\t\t\tchallenge 16\n\t\t}",
		})
		// more habitual logins than the 5 the model learns from: the last
		// is learned off the request path while the next request runs
		for i := 0; i < 8; i++ {
			wantSuccessLogin(t, g.loginFrom("alice", "wonderland", berlin, firefox))
			// the model learns off the request path: wait for each login
			// to be learned before the next is scored
			g.waitEvents(q("type", "SUCCESSFUL_LOGIN", "user", "alice"), "alice's logins", func(evs []event) bool { return len(evs) == i+1 })
		}
		forged := http.Header{"X-Forwarded-For": {berlin}, "User-Agent": {firefox}, "X-Vigil-Risk": {"99"}}
		wantSuccessLogin(t, g.loginWith("alice", "wonderland", forged))
		if got, ok := g.up.lastRisk(); !ok || got != "" {
			t.Fatalf("a habitual login reached the app with X-Vigil-Risk %q (the client sent 99)", got)
		}
		wantSuccessLogin(t, g.loginFrom("alice", "wonderland", sydney, scripted))
		got, _ := g.up.lastRisk()
		score, err := strconv.Atoi(got)
		if err != nil || score < 16 || score > 100 {
			t.Fatalf("a login from a new country, network and client reached the app with X-Vigil-Risk %q, want 16–100", got)
		}
		evs := g.waitEvents(q("type", "SUSPICIOUS_LOGIN", "user", "alice"), "SUSPICIOUS_LOGIN", func(evs []event) bool { return len(evs) == 1 })
		if evs[0].IP != sydney || evs[0].Details["risk_score"] != float64(score) || evs[0].Details["features"] == nil {
			t.Fatalf("SUSPICIOUS_LOGIN does not carry the score %d and its drivers:\n%s", score, dumpEvents(evs))
		}
	})
}

// TestSessionAnomaly: a session token used from Germany, then replayed
// from the United States, is SESSION_ANOMALY; with on_travel revoke the
// token is revoked and refused from then on.
func TestSessionAnomaly(t *testing.T) {
	t.Parallel()
	up := jwtUpstream(t)
	g := startGateway(t, gatewayConfig{
		Global:   geoGlobal(t, memoryStore(), ""),
		Upstream: up,
		Policy: geoLogin + `
		session jwt {
			cookie demo_session
			key hs256 ` + jwtSecret + `
		}
		location {
			on_travel revoke
		}`,
	})
	cookie := sessionCookie(t, g, "alice", "wonderland")
	at := func(ip string) reply {
		h := http.Header{"X-Forwarded-For": {ip}}
		for k, v := range cookie {
			h[k] = v
		}
		return g.do(http.MethodGet, "/api/me", nil, h)
	}
	for i := 0; i < 3; i++ {
		if r := at(berlin); r.Status != http.StatusOK {
			t.Fatalf("the session from Berlin: %s", r)
		}
	}
	if r := at(newYork); r.Status != http.StatusOK {
		t.Fatalf("the replay is judged off the request path; its first request passes: %s", r)
	}
	evs := g.waitEvents(q("type", "SESSION_ANOMALY", "user", "alice"), "SESSION_ANOMALY", func(evs []event) bool { return len(evs) >= 1 })
	if len(evs) != 1 || evs[0].IP != newYork || evs[0].Severity != "HIGH" || evs[0].Country != "US" {
		t.Fatalf("want one SESSION_ANOMALY from New York:\n%s", dumpEvents(evs))
	}
	poll.Until(t, 5*time.Second, "the replayed token refused", func() (bool, string) {
		r := at(newYork)
		return r.Status == http.StatusUnauthorized, r.String()
	})
	if r := at(berlin); r.Status != http.StatusUnauthorized {
		t.Fatalf("the revoked token still works from Berlin: %s", r)
	}
}

// containsAll reports whether s contains every one of parts.
func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestGeoIPReloadedWhileServing: a new database renamed over the old one
// (as geoipupdate does) is loaded without a restart while logins keep
// flowing; none of them fails, and events use the new data once loaded.
func TestGeoIPReloadedWhileServing(t *testing.T) {
	t.Parallel()
	city, asn := geotest.Files(t)
	g := startGateway(t, gatewayConfig{
		Global: fmt.Sprintf("store memory\n\t\tgeoip %s asn %s {\n\t\t\tpoll 200ms\n\t\t}\n\t}\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict", city, asn),
		Policy: geoLogin + "\n\t\tlocation",
	})
	wantSuccessLogin(t, g.loginFrom("alice", "wonderland", berlin, firefox))
	moved := append([]geotest.Entry(nil), geotest.Documentation...)
	for i := range moved {
		if moved[i].Network == "192.0.2.0/25" {
			moved[i].Country, moved[i].City, moved[i].Lat, moved[i].Lon = "AT", "Vienna", 48.2082, 16.3738
		}
	}
	if err := geotest.WriteCity(city, moved); err != nil {
		t.Fatal(err)
	}
	// logins keep working through the swap
	poll.Until(t, 10*time.Second, "a login located in Vienna", func() (bool, string) {
		wantSuccessLogin(t, g.loginFrom("carol", "secret123", berlin, firefox))
		evs := g.events(q("type", "SUCCESSFUL_LOGIN", "user", "carol"))
		if len(evs) == 0 {
			return false, "no login event yet"
		}
		return evs[0].Country == "AT", fmt.Sprintf("%d logins, last from %q", len(evs), evs[0].Country)
	})
	g.waitMetric(5*time.Second, "vigil_geoip_reloads_total", `result="ok"`, 1)
}
