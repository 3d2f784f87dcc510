package integration

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLockoutAtThreshold: three wrong passwords reach the app, the fourth
// attempt is refused with 429 before the app sees it, the right password is
// refused too while the lock lasts, and works once it has expired.
func TestLockoutAtThreshold(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{Global: s.global})

		for i := 1; i <= 3; i++ {
			wantFailedLogin(t, g.login("alice", fmt.Sprintf("wrong-%d", i)))
		}
		if h := g.up.hits(); h != 3 {
			t.Fatalf("the app saw %d login attempts, want 3", h)
		}

		wantRefused(t, g.login("alice", "wrong-4"), http.StatusTooManyRequests, 1, 2)
		wantRefused(t, g.login("alice", "wonderland"), http.StatusTooManyRequests, 1, 2)
		// the lock is on the account, whatever the spelling or the route
		wantRefused(t, g.login("  ALICE ", "wonderland"), http.StatusTooManyRequests, 1, 2)
		wantRefused(t, g.apiLogin("alice", "wonderland"), http.StatusTooManyRequests, 1, 2)
		if h := g.up.hits(); h != 3 {
			t.Fatalf("the app saw %d login attempts, want still 3: a refused login reached it", h)
		}

		// other accounts and other pages are not affected
		wantSuccessLogin(t, g.login("bob", "builder"))
		if r := g.get("/dashboard"); r.Status != http.StatusOK {
			t.Fatalf("GET /dashboard while alice is locked: %s", r)
		}

		d := g.mustDecision("lock", "alice")
		if d.Strike != 1 || d.Source != "auto" {
			t.Fatalf("lock decision: want strike 1 from source auto, got %+v", d)
		}
		if ban := d.Until.Sub(d.Created); ban < 1900*time.Millisecond || ban > 2100*time.Millisecond {
			t.Fatalf("lock decision: want a 2s ban, got %s (%+v)", ban, d)
		}

		waitOut(d.Until)
		wantSuccessLogin(t, g.login("alice", "wonderland"))

		want := []loginAttempt{{"alice", false}, {"alice", false}, {"alice", false}, {"bob", true}, {"alice", true}}
		if got := g.up.attempts(); !reflect.DeepEqual(got, want) {
			t.Fatalf("the app checked %v, want %v", got, want)
		}

		evs := g.waitEvents(q("user", "alice"), "FAILED_LOGIN×3, ACCOUNT_LOCKED, SUCCESSFUL_LOGIN", func(evs []event) bool {
			return countType(evs, "SUCCESSFUL_LOGIN") >= 1 && countType(evs, "ACCOUNT_LOCKED") >= 1 && countType(evs, "FAILED_LOGIN") >= 3
		})
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		wantTypes := []string{"SUCCESSFUL_LOGIN", "ACCOUNT_LOCKED", "FAILED_LOGIN", "FAILED_LOGIN", "FAILED_LOGIN"} // newest first
		if !reflect.DeepEqual(types, wantTypes) {
			t.Fatalf("alice's events (newest first): got %v, want %v\n%s", types, wantTypes, dumpEvents(evs))
		}
		for _, e := range evs {
			if e.User != "alice" || e.IP != "127.0.0.1" || e.ID == "" || e.Time.IsZero() {
				t.Fatalf("event with wrong user/ip/id/time:\n%s", dumpEvents([]event{e}))
			}
		}
		lock := ofType(evs, "ACCOUNT_LOCKED")[0]
		if lock.Severity != "MEDIUM" || lock.Details["strike"] != float64(1) {
			t.Fatalf("ACCOUNT_LOCKED: want severity MEDIUM and strike 1:\n%s", dumpEvents([]event{lock}))
		}
		for _, e := range ofType(evs, "FAILED_LOGIN") {
			if e.Severity != "LOW" {
				t.Fatalf("FAILED_LOGIN: want severity LOW:\n%s", dumpEvents([]event{e}))
			}
		}

		// no password ever lands in an event
		_, raw := g.adminDo(http.MethodGet, "/vigil/events?limit=1000", nil)
		for _, secret := range []string{"wrong-1", "wrong-4", "wonderland", "builder"} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("the event log contains the password %q: %s", secret, raw)
			}
		}
	})
}

// TestBanDoubling: a second lock of the same account lasts twice as long and
// is reported as strike 2; the failure count restarts after each lock.
func TestBanDoubling(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{Global: s.global})

		for i := 0; i < 3; i++ {
			wantFailedLogin(t, g.login("alice", "nope"))
		}
		wantRefused(t, g.login("alice", "nope"), http.StatusTooManyRequests, 1, 2)
		first := g.mustDecision("lock", "alice")
		if first.Strike != 1 {
			t.Fatalf("first lock: want strike 1, got %+v", first)
		}
		waitOut(first.Until)

		// three fresh failures are needed: the first two must reach the app
		for i := 0; i < 3; i++ {
			wantFailedLogin(t, g.login("alice", "nope"))
		}
		wantRefused(t, g.login("alice", "nope"), http.StatusTooManyRequests, 3, 4)
		second := g.mustDecision("lock", "alice")
		if second.Strike != 2 {
			t.Fatalf("second lock: want strike 2, got %+v", second)
		}
		if ban := second.Until.Sub(second.Created); ban < 3900*time.Millisecond || ban > 4100*time.Millisecond {
			t.Fatalf("second lock: want a 4s ban (2s doubled), got %s (%+v)", ban, second)
		}
		if h := g.up.hits(); h != 6 {
			t.Fatalf("the app saw %d attempts, want 6", h)
		}

		locks := g.waitEvents(q("type", "ACCOUNT_LOCKED", "user", "alice"), "two ACCOUNT_LOCKED", func(evs []event) bool {
			return len(evs) >= 2
		})
		if len(locks) != 2 {
			t.Fatalf("want exactly 2 ACCOUNT_LOCKED events:\n%s", dumpEvents(locks))
		}
		if locks[0].Details["strike"] != float64(2) || locks[0].Details["duration"] != "4s" {
			t.Fatalf("second ACCOUNT_LOCKED: want strike 2 and duration 4s:\n%s", dumpEvents(locks[:1]))
		}
		if locks[0].Severity != "HIGH" {
			t.Fatalf("a repeat lock should be raised to HIGH:\n%s", dumpEvents(locks[:1]))
		}
	})
}

// TestLockThenIPBlock: a locked account answers 429; more failures from the
// same address on other accounts then block the address, and every request
// to any path answers 403 until the block expires.
func TestLockThenIPBlock(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{Global: s.global, Policy: `login POST /login {
			user form:username
			success redirect_not /login
		}
		login POST /api/login {
			user json:user.name
			success status 200
		}
		lockout 3 within 1m for 30s
		block_ip 5 within 1m for 2s max 1m`})

		for i := 0; i < 3; i++ {
			wantFailedLogin(t, g.login("alice", "x"))
		}
		wantRefused(t, g.login("alice", "x"), http.StatusTooManyRequests, 29, 30)
		wantFailedLogin(t, g.login("bob", "x")) // 4 failures from the address
		if r := g.get("/dashboard"); r.Status != http.StatusOK {
			t.Fatalf("below block_ip (4 of 5 failures) GET /dashboard: %s", r)
		}
		wantFailedLogin(t, g.login("bob", "x")) // the 5th: the address is blocked after the answer
		hits := g.up.hits()

		wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 1, 2)
		wantRefused(t, g.get("/healthz"), http.StatusForbidden, 1, 2)
		wantRefused(t, g.get("/"), http.StatusForbidden, 1, 2)
		wantRefused(t, g.login("bob", "builder"), http.StatusForbidden, 1, 2)
		wantRefused(t, g.login("alice", "wonderland"), http.StatusForbidden, 1, 2) // the block comes before the lock
		wantRefused(t, g.apiLogin("carol", "secret123"), http.StatusForbidden, 1, 2)
		if h := g.up.hits(); h != hits {
			t.Fatalf("requests from a blocked address reached the app (%d → %d logins)", hits, h)
		}

		d := g.mustDecision("block", "127.0.0.1")
		if d.Reason != "failed_logins" || d.Strike != 1 {
			t.Fatalf("block decision: %+v", d)
		}
		blocked := g.waitEvents(q("type", "IP_BLOCKED"), "IP_BLOCKED", func(evs []event) bool { return len(evs) >= 1 })
		if len(blocked) != 1 || blocked[0].IP != "127.0.0.1" || blocked[0].Details["ip_failures"] != float64(5) {
			t.Fatalf("want one IP_BLOCKED for 127.0.0.1 at 5 failures:\n%s", dumpEvents(blocked))
		}

		// the block expires; the address's failure count restarted with it
		waitOut(d.Until)
		if r := g.get("/dashboard"); r.Status != http.StatusOK {
			t.Fatalf("after the block expired GET /dashboard: %s", r)
		}
		wantFailedLogin(t, g.login("carol", "x"))
		if r := g.get("/dashboard"); r.Status != http.StatusOK {
			t.Fatalf("one failure after the block expired re-blocked the address: %s", r)
		}
	})
}

// TestSuccessClearsFailures: a successful login forgets the account's
// earlier failures, so two failures, a success and two more do not lock.
func TestSuccessClearsFailures(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{Global: s.global})

		wantFailedLogin(t, g.login("alice", "x"))
		wantFailedLogin(t, g.login("alice", "x"))
		wantSuccessLogin(t, g.login("alice", "wonderland"))
		wantFailedLogin(t, g.login("alice", "x"))
		wantFailedLogin(t, g.login("alice", "x"))
		wantSuccessLogin(t, g.login("alice", "wonderland"))

		// the same through the JSON route (success = status 200)
		for _, step := range []struct {
			pass string
			want int
		}{{"x", 401}, {"x", 401}, {"builder", 200}, {"x", 401}, {"x", 401}, {"builder", 200}} {
			if r := g.apiLogin("bob", step.pass); r.Status != step.want {
				t.Fatalf("bob's API login with %q: want %d, got %s", step.pass, step.want, r)
			}
		}
		if _, locked := findDecision(g.decisions(), "lock", "alice"); locked {
			t.Fatal("alice is locked although a success came between her failures")
		}
		if _, locked := findDecision(g.decisions(), "lock", "bob"); locked {
			t.Fatal("bob is locked although a success came between his failures")
		}
		evs := g.waitEvents(q("type", "SUCCESSFUL_LOGIN"), "4 SUCCESSFUL_LOGIN", func(evs []event) bool { return len(evs) >= 4 })
		if len(evs) != 4 {
			t.Fatalf("want 4 SUCCESSFUL_LOGIN:\n%s", dumpEvents(evs))
		}
	})
}

// TestAllowlistedIPNeverBlocked: an allowlisted address is never blocked,
// not by failures, not by stuffing, not even by hand, while its failures are
// still recorded and account lockout still applies.
func TestAllowlistedIPNeverBlocked(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{
		Global: "store memory\n\t\tallow 127.0.0.1/32",
		Policy: `login POST /login {
			user form:username
			success redirect_not /login
		}
		lockout 3 within 1m for 30s
		block_ip 5 within 1m for 1m
		stuffing 4 within 1m`,
	})

	for i := 1; i <= 12; i++ {
		r := g.login(fmt.Sprintf("nobody%02d", i), "x")
		wantFailedLogin(t, r)
	}
	if r := g.get("/dashboard"); r.Status != http.StatusOK {
		t.Fatalf("allowlisted address after 12 failures: GET /dashboard: %s", r)
	}
	for _, d := range g.decisions() {
		if d.Kind == "block" {
			t.Fatalf("an allowlisted address got a block decision: %+v", d)
		}
	}
	fails := g.events(q("type", "FAILED_LOGIN", "ip", "127.0.0.1"))
	if len(fails) != 12 {
		t.Fatalf("want 12 FAILED_LOGIN events for 127.0.0.1, got %d:\n%s", len(fails), dumpEvents(fails))
	}
	// findings may be recorded, but only as what they are: not enforced
	for _, e := range g.events(q("type", "IP_BLOCKED")) {
		if e.Details["allowlisted"] != true {
			t.Fatalf("IP_BLOCKED for an allowlisted address without allowlisted=true:\n%s", dumpEvents([]event{e}))
		}
	}

	// lockout is per account and still applies
	for i := 0; i < 3; i++ {
		wantFailedLogin(t, g.login("alice", "x"))
	}
	wantRefused(t, g.login("alice", "wonderland"), http.StatusTooManyRequests, 29, 30)
	wantSuccessLogin(t, g.login("bob", "builder"))

	// even a manual block does not shut an allowlisted address out
	if status, body := g.adminDo(http.MethodPost, "/vigil/blocks", map[string]string{"ip": "127.0.0.1", "duration": "1m"}); status != http.StatusCreated {
		t.Fatalf("POST /vigil/blocks: %d %s", status, body)
	}
	if r := g.get("/dashboard"); r.Status != http.StatusOK {
		t.Fatalf("allowlisted address after a manual block: GET /dashboard: %s", r)
	}
}

// TestCredentialStuffing: four distinct accounts failing from one address
// are credential stuffing: a CREDENTIAL_STUFFING event and a block.
func TestCredentialStuffing(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{Global: s.global})

		for _, u := range []string{"alice", "bob", "carol"} {
			wantFailedLogin(t, g.login(u, "Summer2024!"))
		}
		if r := g.get("/dashboard"); r.Status != http.StatusOK {
			t.Fatalf("after 3 accounts (below stuffing 4) GET /dashboard: %s", r)
		}
		wantFailedLogin(t, g.login("mallory", "Summer2024!"))
		wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 1, 2)
		wantRefused(t, g.login("alice", "wonderland"), http.StatusForbidden, 1, 2)

		d := g.mustDecision("block", "127.0.0.1")
		if d.Reason != "credential_stuffing" {
			t.Fatalf("block decision: want reason credential_stuffing, got %+v", d)
		}
		evs := g.waitEvents(q("ip", "127.0.0.1"), "CREDENTIAL_STUFFING and IP_BLOCKED", func(evs []event) bool {
			return countType(evs, "CREDENTIAL_STUFFING") >= 1 && countType(evs, "IP_BLOCKED") >= 1
		})
		cs := ofType(evs, "CREDENTIAL_STUFFING")
		if len(cs) != 1 || cs[0].Severity != "HIGH" || cs[0].Details["accounts_from_ip"] != float64(4) {
			t.Fatalf("want one HIGH CREDENTIAL_STUFFING with accounts_from_ip 4:\n%s", dumpEvents(cs))
		}
		ib := ofType(evs, "IP_BLOCKED")
		if len(ib) != 1 || ib[0].Details["reason"] != "credential_stuffing" {
			t.Fatalf("want one IP_BLOCKED with reason credential_stuffing:\n%s", dumpEvents(ib))
		}
	})
}

// TestSpoofedForwardedForIgnored: without trusted_proxies, client-supplied
// forwarding headers do not change who the client is.
func TestSpoofedForwardedForIgnored(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: `login POST /login {
			user form:username
			success redirect_not /login
		}
		block_ip 4 within 1m for 30s`})

	spoofs := []http.Header{
		{"X-Forwarded-For": {"203.0.113.1"}},
		{"X-Forwarded-For": {"203.0.113.2, 198.51.100.7"}},
		{"X-Real-Ip": {"203.0.113.3"}, "X-Forwarded-For": {"203.0.113.3"}},
		{"Forwarded": {"for=192.0.2.60;proto=https"}, "Client-Ip": {"192.0.2.61"}},
	}
	for i, h := range spoofs {
		if i == 3 {
			if r := g.do(http.MethodGet, "/dashboard", nil, http.Header{"X-Forwarded-For": {"192.0.2.1"}}); r.Status != http.StatusOK {
				t.Fatalf("after 3 failures (below block_ip 4): %s", r)
			}
		}
		wantFailedLogin(t, g.loginWith([]string{"alice", "bob", "carol", "dave"}[i], "x", h))
	}
	for _, h := range []http.Header{
		{"X-Forwarded-For": {"192.0.2.99"}},
		{"X-Real-Ip": {"192.0.2.100"}},
		{"Forwarded": {"for=192.0.2.101"}},
		nil,
	} {
		wantRefused(t, g.do(http.MethodGet, "/dashboard", nil, h), http.StatusForbidden, 29, 30)
	}

	ds := g.decisions()
	if _, ok := findDecision(ds, "block", "127.0.0.1"); !ok || len(ds) != 1 {
		t.Fatalf("want exactly one block, of 127.0.0.1; got %+v", ds)
	}
	evs := g.events(nil)
	if countType(evs, "FAILED_LOGIN") != 4 || countType(evs, "IP_BLOCKED") != 1 {
		t.Fatalf("want 4 FAILED_LOGIN and 1 IP_BLOCKED:\n%s", dumpEvents(evs))
	}
	for _, e := range evs {
		if e.IP != "127.0.0.1" {
			t.Fatalf("event attributed to a spoofed address:\n%s", dumpEvents([]event{e}))
		}
	}
}
