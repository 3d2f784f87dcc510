package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/poll"
)

// propagation bounds how long a decision made on one instance may take to
// be enforced by another (the design's budget is 100 ms p99; the deadline
// is generous so a loaded machine does not fail the suite).
const propagation = 3 * time.Second

// TestTwoInstancesShareRedis: two gateways on one Redis (one prefix) share
// their locks, blocks and events.
func TestTwoInstancesShareRedis(t *testing.T) {
	t.Parallel()
	s := redisStore(t)
	policy := `login POST /login {
			user form:username
			success redirect_not /login
		}
		lockout 3 within 1m for 1m
		block_ip 7 within 1m for 1m`
	a := startNamedGateway(t, "gateway A", gatewayConfig{Global: s.global, Policy: policy})
	b := startNamedGateway(t, "gateway B", gatewayConfig{Global: s.global, Policy: policy})

	// a lock earned on A is enforced by B
	for i := 0; i < 3; i++ {
		wantFailedLogin(t, a.login("alice", "x"))
	}
	// (B's decision-cache gauge tells when the lock has arrived; a login
	// sent before that would be a real attempt, not a probe)
	b.waitMetric(propagation, "vigil_active_decisions", `kind="lock"`, 1)
	wantRefused(t, b.login("alice", "wonderland"), http.StatusTooManyRequests, 59, 60)
	if h := b.up.hits(); h != 0 {
		t.Fatalf("B's app saw %d logins: the lock made on A did not stop them", h)
	}
	if d, ok := findDecision(b.decisions(), "lock", "alice"); !ok || d.Source != "auto" || d.Site != strings.TrimPrefix(a.base, "http://") {
		t.Fatalf("B's /vigil/decisions should list A's lock on alice: %+v", b.decisions())
	}

	// failures counted on both instances add up: 2 on B + 3 on A ≥ lockout
	wantFailedLogin(t, b.login("bob", "x"))
	wantFailedLogin(t, b.login("bob", "x"))
	wantFailedLogin(t, a.login("bob", "x"))
	b.waitMetric(propagation, "vigil_active_decisions", `kind="lock"`, 2)
	wantRefused(t, b.login("bob", "builder"), http.StatusTooManyRequests, 59, 60)

	// a manual block made through A's admin API is listed by B
	if status, body := a.adminDo(http.MethodPost, "/vigil/blocks", map[string]string{"cidr": "203.0.113.0/24", "duration": "1h", "reason": "test"}); status != http.StatusCreated {
		t.Fatalf("POST /vigil/blocks on A: %d %s", status, body)
	}
	if d, ok := findDecision(b.decisions(), "block", "203.0.113.0/24"); !ok || d.Source != "admin" || d.Reason != "test" {
		t.Fatalf("B's /vigil/decisions should list the block made on A: %+v", b.decisions())
	}

	// the address's failures are shared too: 3 for alice and 3 for bob so
	// far, so the 7th (made on A) blocks it everywhere
	wantFailedLogin(t, a.login("carol", "x"))
	blockedAt := time.Now()
	poll.Until(t, propagation, "B answers 403 after A blocked the address", func() (bool, string) {
		r := b.get("/dashboard")
		return r.Status == http.StatusForbidden && r.retryAfter() > 0, r.String()
	})
	t.Logf("the block made on A was enforced by B after %s (design budget: 100 ms p99)", time.Since(blockedAt).Round(time.Millisecond))
	wantRefused(t, a.get("/dashboard"), http.StatusForbidden, 59, 60)
	if _, ok := findDecision(b.decisions(), "block", "127.0.0.1"); !ok {
		t.Fatalf("B's /vigil/decisions should list the block of 127.0.0.1: %+v", b.decisions())
	}

	// lifting it on B reopens A
	if status, body := b.adminDo(http.MethodDelete, "/vigil/blocks/127.0.0.1", nil); status != http.StatusOK {
		t.Fatalf("DELETE /vigil/blocks/127.0.0.1 on B: %d %s", status, body)
	}
	poll.Until(t, propagation, "A serves again after B lifted the block", func() (bool, string) {
		r := a.get("/dashboard")
		return r.Status == http.StatusOK, r.String()
	})
	// and a lock lifted on A frees alice on B
	if status, body := a.adminDo(http.MethodDelete, "/vigil/locks/alice", nil); status != http.StatusOK {
		t.Fatalf("DELETE /vigil/locks/alice on A: %d %s", status, body)
	}
	poll.Until(t, propagation, "B lets alice log in after A unlocked her", func() (bool, string) {
		r := b.login("alice", "wonderland")
		return r.Status == http.StatusFound && r.Header.Get("Location") == "/dashboard", r.String()
	})

	// B's event log holds what happened on both instances
	siteA, siteB := strings.TrimPrefix(a.base, "http://"), strings.TrimPrefix(b.base, "http://")
	evs := b.waitEvents(nil, "events from both instances", func(evs []event) bool {
		sites := map[string]int{}
		for _, e := range evs {
			sites[e.Site]++
		}
		return sites[siteA] >= 5 && sites[siteB] >= 3 && countType(evs, "ADMIN_ACTION") >= 3
	})
	for _, want := range []struct{ site, typ, user string }{
		{siteA, "ACCOUNT_LOCKED", "alice"},
		{siteA, "FAILED_LOGIN", "carol"},
		{siteA, "IP_BLOCKED", ""},
		{siteB, "FAILED_LOGIN", "bob"},
		{siteB, "SUCCESSFUL_LOGIN", "alice"},
	} {
		found := false
		for _, e := range evs {
			found = found || (e.Site == want.site && e.Type == want.typ && (want.user == "" || e.User == want.user))
		}
		if !found {
			t.Fatalf("B's /vigil/events lacks %s %s %s:\n%s", want.site, want.typ, want.user, dumpEvents(evs))
		}
	}
	// a lock or block is announced once, by the instance that made it
	if n := countType(evs, "IP_BLOCKED"); n != 1 {
		t.Fatalf("want 1 IP_BLOCKED, got %d:\n%s", n, dumpEvents(evs))
	}

	// every key lives under the prefix and none holds a username or address
	for _, k := range redisKeys(t, s.redis, s.prefix) {
		for _, bad := range []string{"alice", "bob", "carol", "127.0.0.1"} {
			if strings.Contains(k, bad) {
				t.Fatalf("Redis key %q contains the raw identifier %q", k, bad)
			}
		}
	}
}
