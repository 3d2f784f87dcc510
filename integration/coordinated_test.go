package integration

import (
	"fmt"
	"net/http"
	"testing"
)

// Coordinated attacks, each from many addresses (X-Forwarded-For from the
// trusted loopback proxy), on the real gateway with either store.

// coordinatedGlobal trusts X-Forwarded-For from loopback; no GeoIP.
func coordinatedGlobal(s storeCase) string {
	return s.global + "\n\t}\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict"
}

// fromAddr is a request header set for a client at ip.
func fromAddr(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }

// TestPasswordSpray: one wrong password per account, each from another
// network, is PASSWORD_SPRAY once; while it is on the lockout tightens to
// 2 failures.
func TestPasswordSpray(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{
			Global: coordinatedGlobal(s),
			Policy: geoLogin + `
		site shop
		lockout 5 within 1m for 1m
		spray 5 ips 8 accounts within 1m tighten 2`,
		})
		for i := 0; i < 10; i++ {
			wantFailedLogin(t, g.loginWith(fmt.Sprintf("user%d", i), "Winter2026!", fromAddr(fmt.Sprintf("198.51.%d.7", 100+i))))
		}
		evs := g.waitEvents(q("type", "PASSWORD_SPRAY"), "PASSWORD_SPRAY", func(evs []event) bool { return len(evs) >= 1 })
		if len(evs) != 1 || evs[0].Severity != "HIGH" || evs[0].Site != "shop" {
			t.Fatalf("want one HIGH PASSWORD_SPRAY for the site:\n%s", dumpEvents(evs))
		}
		// tightened: the second failure locks (the policy says 5)
		wantFailedLogin(t, g.loginWith("alice", "x", fromAddr("192.0.2.1")))
		wantFailedLogin(t, g.loginWith("alice", "y", fromAddr("192.0.2.2")))
		g.waitEvents(q("type", "ACCOUNT_LOCKED", "user", "alice"), "alice's tightened lock", func(evs []event) bool { return len(evs) == 1 })
		wantRefused(t, g.loginWith("alice", "wonderland", fromAddr("192.0.2.3")), http.StatusTooManyRequests, 1, 60)
	})
}

// TestDistributedBruteForce: one account tried from many addresses, each
// under every per-address limit, is DISTRIBUTED_BRUTE_FORCE and locks it.
func TestDistributedBruteForce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{
			Global: coordinatedGlobal(s),
			Policy: geoLogin + `
		lockout 50 within 1m for 1m
		block_ip 5 within 1m for 1m
		distributed 6 ips 6 attempts within 1m`,
		})
		for i := 0; i < 6; i++ {
			wantFailedLogin(t, g.loginWith("carol", fmt.Sprintf("guess-%d", i), fromAddr(fmt.Sprintf("203.0.%d.9", 100+i))))
		}
		g.waitEvents(q("type", "DISTRIBUTED_BRUTE_FORCE", "user", "carol"), "DISTRIBUTED_BRUTE_FORCE", func(evs []event) bool { return len(evs) == 1 })
		g.waitEvents(q("type", "ACCOUNT_LOCKED", "user", "carol"), "carol's lock", func(evs []event) bool { return len(evs) == 1 })
		wantRefused(t, g.loginWith("carol", "secret123", fromAddr("192.0.2.77")), http.StatusTooManyRequests, 1, 60)
	})
}

// TestNetworkBlock: a botnet rotating addresses inside one /24, each
// failing once, gets the /24 blocked: a fresh address in it is refused,
// the neighbouring network is not.
func TestNetworkBlock(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		g := startGateway(t, gatewayConfig{
			Global: coordinatedGlobal(s),
			Policy: geoLogin + `
		block_ip 5 within 1m for 1m
		block_network 6 within 1m for 1m`,
		})
		for i := 1; i <= 6; i++ {
			wantFailedLogin(t, g.loginWith(fmt.Sprintf("victim%d", i), "x", fromAddr(fmt.Sprintf("203.0.113.%d", i))))
		}
		evs := g.waitEvents(q("type", "IP_BLOCKED"), "the network block", func(evs []event) bool { return len(evs) == 1 })
		if evs[0].Details["network"] != "203.0.113.0/24" {
			t.Fatalf("want the /24 blocked:\n%s", dumpEvents(evs))
		}
		if r := g.do(http.MethodGet, "/", nil, fromAddr("203.0.113.200")); r.Status != http.StatusForbidden {
			t.Fatalf("an address of the blocked /24 that never failed: %s", r)
		}
		if r := g.do(http.MethodGet, "/", nil, fromAddr("203.0.114.1")); r.Status != http.StatusOK {
			t.Fatalf("the neighbouring /24: %s", r)
		}
	})
}
