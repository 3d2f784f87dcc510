package integration

import (
	"net/http"
	"strings"
	"testing"
)

// TestReloadKeepsState: `caddy reload` with a changed Caddyfile keeps the
// failure counters, the decisions, the events and the metrics.
func TestReloadKeepsState(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		policy := `login POST /login {
			user form:username
			success redirect_not /login
		}
		lockout 3 within 1m for 30s
		block_ip 10 within 1m for 30s`
		cfg := gatewayConfig{Global: s.global, Policy: policy}
		g := startGateway(t, cfg)

		wantFailedLogin(t, g.login("alice", "x"))
		wantFailedLogin(t, g.login("alice", "x"))
		// a lock that must survive the reload too
		for i := 0; i < 3; i++ {
			wantFailedLogin(t, g.login("carol", "x"))
		}
		wantRefused(t, g.login("carol", "secret123"), http.StatusTooManyRequests, 29, 30)
		before := g.scrape()
		failuresBefore, ok := metricValue(before, "vigil_login_attempts_total", `outcome="failure"`)
		if !ok || failuresBefore != 5 {
			t.Fatalf("before the reload: vigil_login_attempts_total{outcome=\"failure\"} = %v (present %v), want 5", failuresBefore, ok)
		}

		cfg.Policy = "site reloaded-site\n\t\t" + policy
		g.reload(cfg)

		// the new config is live: its events carry the new site name
		wantFailedLogin(t, g.login("alice", "x")) // the 3rd failure: locked
		wantRefused(t, g.login("alice", "wonderland"), http.StatusTooManyRequests, 29, 30)
		wantRefused(t, g.login("carol", "secret123"), http.StatusTooManyRequests, 15, 30) // locked before the reload
		if h := g.up.hits(); h != 6 {
			t.Fatalf("the app saw %d logins, want 6", h)
		}

		locked := g.waitEvents(q("type", "ACCOUNT_LOCKED", "user", "alice"), "alice's ACCOUNT_LOCKED", func(evs []event) bool { return len(evs) >= 1 })
		if locked[0].Site != "reloaded-site" || locked[0].Details["account_failures"] != float64(3) {
			t.Fatalf("alice's lock should be made by the reloaded config at 3 failures:\n%s", dumpEvents(locked))
		}
		// events from before the reload are still there
		if n := len(g.events(q("type", "FAILED_LOGIN"))); n != 6 {
			t.Fatalf("want 6 FAILED_LOGIN across the reload, got %d", n)
		}
		// metrics kept counting (caddy-ratelimit #100: zeroed after reload)
		after := g.scrape()
		if v, _ := metricValue(after, "vigil_login_attempts_total", `outcome="failure"`); v != 6 {
			t.Fatalf("after the reload: vigil_login_attempts_total{outcome=\"failure\"} = %v, want 6\n%s", v, vigilLines(after))
		}
		if v, _ := metricValue(after, "vigil_active_decisions", `kind="lock"`); v != 2 {
			t.Fatalf("after the reload: vigil_active_decisions{kind=\"lock\"} = %v, want 2\n%s", v, vigilLines(after))
		}
	})
}

// TestReloadOfGlobalOptionsKeepsMemoryState: a reload that changes a global
// vigil option which does not concern the memory store (events_retention
// applies to the Redis stream only, allow and fail_mode to enforcement) must
// not throw away the memory store's locks, counters and events.
func TestReloadOfGlobalOptionsKeepsMemoryState(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, global string }{
		{"allow", "store memory\n\t\tallow 192.0.2.0/24"},
		{"events_retention", "store memory\n\t\tevents_retention 1h"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := gatewayConfig{Global: "store memory"}
			g := startGateway(t, cfg)
			g.cli("lock", "bob", "--duration", "1h")
			wantRefused(t, g.login("bob", "builder"), http.StatusTooManyRequests, 3590, 3600)
			wantFailedLogin(t, g.login("alice", "x"))
			wantFailedLogin(t, g.login("alice", "x"))

			cfg.Global = c.global
			g.reload(cfg)

			r := g.login("bob", "builder")
			if r.Status != http.StatusTooManyRequests {
				t.Fatalf("a reload that only adds `%s` lost the memory store: bob's 1h lock is gone (login → %s), decisions now %+v, %d events left",
					strings.TrimSpace(strings.TrimPrefix(c.global, "store memory")), r, g.decisions(), len(g.events(nil)))
			}
			wantFailedLogin(t, g.login("alice", "x"))
			wantRefused(t, g.login("alice", "x"), http.StatusTooManyRequests, 1, 2)
		})
	}
}
