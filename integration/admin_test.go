package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// cli runs `caddy vigil …` and fails the test if it fails.
func (g *gateway) cli(args ...string) string {
	g.t.Helper()
	out, errOut, err := g.vigilCLI(args...)
	if err != nil {
		g.t.Fatalf("caddy vigil %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// TestAdminAPIAndCLI: manual blocks and locks through `caddy vigil` and the
// admin API are enforced, listed, lifted and audited; bad requests get
// clear 4xx answers.
func TestAdminAPIAndCLI(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory"})

	// block a range
	var d decision
	out := g.cli("block", "203.0.113.0/24", "--duration", "1h", "--reason", "scanner range")
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("caddy vigil block printed no decision JSON: %v\n%s", err, out)
	}
	if d.Kind != "block" || d.Target != "203.0.113.0/24" || d.Source != "admin" || d.Reason != "scanner range" {
		t.Fatalf("caddy vigil block answered %+v", d)
	}
	listed := g.mustDecision("block", "203.0.113.0/24")
	if ban := listed.Until.Sub(listed.Created); ban != time.Hour {
		t.Fatalf("block of 1h lasts %s: %+v", ban, listed)
	}
	if out := g.cli("decisions"); !strings.Contains(out, `"203.0.113.0/24"`) {
		t.Fatalf("caddy vigil decisions does not list the block:\n%s", out)
	}
	g.cli("unblock", "203.0.113.0/24")
	if _, ok := findDecision(g.decisions(), "block", "203.0.113.0/24"); ok {
		t.Fatalf("still listed after unblock: %+v", g.decisions())
	}
	if out, errOut, err := g.vigilCLI("unblock", "203.0.113.0/24"); err == nil || !strings.Contains(out+errOut, "404") {
		t.Fatalf("unblocking what is not blocked should fail with 404; err %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}

	// IPv6: the CLI escapes the range's slash for the DELETE
	g.cli("block", "2001:db8:ab::/48", "--duration", "5m")
	if _, ok := findDecision(g.decisions(), "block", "2001:db8:ab::/48"); !ok {
		t.Fatalf("IPv6 range not listed: %+v", g.decisions())
	}
	g.cli("unblock", "2001:db8:ab::/48")
	g.cli("block", "2001:DB8::7")
	g.cli("unblock", "2001:db8::7") // normalised: the same address
	if ds := g.decisions(); len(ds) != 0 {
		t.Fatalf("IPv6 blocks left after unblock: %+v", ds)
	}

	// lock and unlock an account
	g.cli("lock", "bob")
	wantRefused(t, g.login("bob", "builder"), http.StatusTooManyRequests, 86390, 86400) // default 24h
	if h := g.up.hits(); h != 0 {
		t.Fatalf("a login for a locked account reached the app (%d)", h)
	}
	g.cli("unlock", "bob")
	wantSuccessLogin(t, g.login("bob", "builder"))

	// block and unblock this very client
	g.cli("block", "127.0.0.1", "--duration", "10m")
	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 590, 600)
	g.cli("unblock", "127.0.0.1")
	if r := g.get("/dashboard"); r.Status != http.StatusOK {
		t.Fatalf("after unblock: %s", r)
	}

	// every action is audited
	admin := g.events(q("type", "ADMIN_ACTION"))
	seen := map[string]bool{}
	for _, e := range admin {
		if e.Severity != "LOW" {
			t.Fatalf("ADMIN_ACTION severity:\n%s", dumpEvents([]event{e}))
		}
		seen[e.Details["action"].(string)+" "+e.Details["target"].(string)] = true
	}
	for _, want := range []string{"block 203.0.113.0/24", "unblock 203.0.113.0/24", "lock bob", "unlock bob", "block 127.0.0.1", "unblock 127.0.0.1"} {
		if !seen[want] {
			t.Fatalf("no ADMIN_ACTION for %q:\n%s", want, dumpEvents(admin))
		}
	}
	var page struct {
		Events []event `json:"events"`
		Next   string  `json:"next"`
	}
	out = g.cli("events", "--type", "ADMIN_ACTION", "--limit", "2")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Events) != 2 || page.Next == "" {
		t.Fatalf("caddy vigil events --type ADMIN_ACTION --limit 2: %v\n%s", err, out)
	}

	// bad requests
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/vigil/blocks", `{"ip":`, 400},
		{"POST", "/vigil/blocks", `not json`, 400},
		{"POST", "/vigil/blocks", `{"ip":"192.0.2.1","bogus":true}`, 400},
		{"POST", "/vigil/blocks", `{"ip":"999.0.0.1"}`, 400},
		{"POST", "/vigil/blocks", `{"cidr":"192.0.2.0/33"}`, 400},
		{"POST", "/vigil/blocks", `{"ip":"192.0.2.1","cidr":"192.0.2.0/24"}`, 400},
		{"POST", "/vigil/blocks", `{"ip":"192.0.2.1","duration":"-5m"}`, 400},
		{"POST", "/vigil/blocks", `{"ip":"192.0.2.1","duration":"soon"}`, 400},
		{"POST", "/vigil/locks", `{"user":`, 400},
		{"POST", "/vigil/locks", `{}`, 400},
		{"POST", "/vigil/locks", `{"user":"alice","ip":"192.0.2.1"}`, 400},
		{"DELETE", "/vigil/blocks/198.51.100.9", nil, 404},
		{"DELETE", "/vigil/blocks/198.51.100.0%2F24", nil, 404},
		{"DELETE", "/vigil/blocks/not-an-ip", nil, 400},
		{"DELETE", "/vigil/locks/nobody", nil, 404},
		{"PUT", "/vigil/blocks", nil, 405},
		{"PUT", "/vigil/decisions", nil, 405},
		{"GET", "/vigil/events?type=BOGUS", nil, 400},
		{"GET", "/vigil/events?limit=0", nil, 400},
		{"GET", "/vigil/events?since=yesterday", nil, 400},
		{"GET", "/vigil/events?severity=urgent", nil, 400},
	} {
		status, body := g.adminDo(c.method, c.path, c.body)
		if status != c.want {
			t.Fatalf("%s %s %v: want %d, got %d %s", c.method, c.path, c.body, c.want, status, body)
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Fatalf("%s %s: the %d answer is not a JSON error: %s", c.method, c.path, status, body)
		}
	}
	// nothing above left a decision behind
	if ds := g.decisions(); len(ds) != 0 {
		t.Fatalf("decisions left after rejected requests: %+v", ds)
	}

	// the event query: filters and paging
	for i := 0; i < 3; i++ {
		wantFailedLogin(t, g.login("carol", "x"))
	}
	all := g.events(nil)
	paged := g.events(q("limit", "2"))
	if len(paged) != len(all) {
		t.Fatalf("paging by 2 returned %d events, one page %d", len(paged), len(all))
	}
	for i := range all {
		if paged[i].ID != all[i].ID {
			t.Fatalf("paging by 2 differs at %d: %s vs %s", i, paged[i].ID, all[i].ID)
		}
	}
	if evs := g.events(q("user", "carol", "type", "FAILED_LOGIN")); len(evs) != 3 {
		t.Fatalf("user=carol&type=FAILED_LOGIN: %d events\n%s", len(evs), dumpEvents(evs))
	}
	if evs := g.events(q("severity", "MEDIUM")); len(evs) != 1 || evs[0].Type != "ACCOUNT_LOCKED" {
		t.Fatalf("severity=MEDIUM: want carol's ACCOUNT_LOCKED only\n%s", dumpEvents(evs))
	}
	if evs := g.events(q("ip", "127.0.0.1", "since", "1h")); countType(evs, "FAILED_LOGIN") != 3 {
		t.Fatalf("ip=127.0.0.1&since=1h: \n%s", dumpEvents(evs))
	}
	if evs := g.events(q("since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))); len(evs) != 0 {
		t.Fatalf("since the future: \n%s", dumpEvents(evs))
	}
}
