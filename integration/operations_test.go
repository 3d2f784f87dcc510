package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/respond"
)

// Operating Vigil: the health endpoint and `caddy vigil status`, the log
// lines of a store outage, the policy line at start, `caddy validate`
// against the store, `caddy vigil why`, and what the CLI prints.

// The log messages operators grep for (caddymodule/store_watch.go).
const (
	logStoreDown = `"msg":"vigil store unreachable: failing open (logins counted locally, decisions enforced from the local cache)"`
	logStoreUp   = `"msg":"vigil store reachable again`
	logPolicy    = `"msg":"vigil policy"`
)

func (g *gateway) health() (int, respond.HealthReport) {
	g.t.Helper()
	status, body := g.adminDo(http.MethodGet, "/vigil/health", nil)
	var h respond.HealthReport
	if err := json.Unmarshal(body, &h); err != nil {
		g.t.Fatalf("GET /vigil/health: %d %v in %s", status, err, body)
	}
	return status, h
}

// redisAt is the global store option for a Redis at addr, under a fresh
// prefix.
func redisAt(addr string) string {
	return fmt.Sprintf("store redis {\n\t\t\taddrs %s\n\t\t\tprefix vigiltest:%s:\n\t\t}", addr, redistest.RandomHex(6))
}

// countOnlyPolicy watches logins without ever refusing one.
const countOnlyPolicy = "login POST /login {\n\t\t\tuser form:username\n\t\t\tsuccess redirect_not /login\n\t\t}"

// TestOperationsHealthMemory: the memory store is always healthy; status
// and the other commands print JSON through a pipe (and with --json); the
// site's policy is logged at start.
func TestOperationsHealthMemory(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory"})
	status, h := g.health()
	if status != http.StatusOK || h.Status != "ok" || h.Store.Type != "memory" || !h.Store.Reachable || h.Store.FallbackActive || h.Store.FailMode != "open" {
		t.Fatalf("GET /vigil/health: %d %+v", status, h)
	}
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"health"}} {
		var got respond.HealthReport
		if out := g.cli(args...); json.Unmarshal([]byte(out), &got) != nil || got.Status != "ok" {
			t.Fatalf("caddy vigil %s: not the health JSON:\n%s", strings.Join(args, " "), out)
		}
	}
	g.cli("block", "203.0.113.9", "--reason", "test")
	for _, args := range [][]string{{"decisions"}, {"decisions", "--json"}} {
		var v struct {
			Decisions []decision `json:"decisions"`
		}
		if out := g.cli(args...); json.Unmarshal([]byte(out), &v) != nil || len(v.Decisions) != 1 {
			t.Fatalf("caddy vigil %s through a pipe: not JSON:\n%s", strings.Join(args, " "), out)
		}
	}
	if out := g.cli("events", "--type", "ADMIN_ACTION"); !strings.HasPrefix(out, "{") || !strings.Contains(out, `"events": [`) {
		t.Fatalf("caddy vigil events through a pipe: not JSON:\n%s", out)
	}
	line := logLine(g.output(), logPolicy)
	for _, want := range []string{`"logins":["POST /login","POST /api/login"]`, `"lockout":"3 within 1m for 2s max 8s"`, `"stuffing":"4 accounts within 1m"`, `"monitor_only":false`, `"store":"memory"`} {
		if !strings.Contains(line, want) {
			t.Fatalf("the policy line lacks %s:\n%s", want, line)
		}
	}
}

// logLine is the first line of out that contains s.
func logLine(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestOperationsHealthRedisOutage: with Redis up the health check answers
// 200 and follows the resyncs; when Redis goes away it answers 503, `caddy
// vigil status` exits non-zero, logins still work (fail open) and the log
// says so once; when Redis is back, one INFO line and 200 again.
func TestOperationsHealthRedisOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t, 0)
	g := startGateway(t, gatewayConfig{Global: redisAt(srv.Addr), Policy: countOnlyPolicy})

	status, h := g.health()
	if status != http.StatusOK || h.Status != "ok" || h.Store.Type != "redis" || h.Store.Address != srv.Addr || !h.Store.Reachable {
		t.Fatalf("Redis up: %d %+v", status, h)
	}
	poll.Until(t, 15*time.Second, "a resync reported", func() (bool, string) {
		_, h := g.health()
		return h.Store.LastResync != nil, fmt.Sprintf("%+v", h.Store)
	})

	srv.Stop()
	status, h = g.health()
	if status != http.StatusServiceUnavailable || h.Store.Reachable || h.Status != "failing_open" || !strings.Contains(h.Message, "failing open") || h.Store.Error == "" {
		t.Fatalf("Redis down: %d %+v", status, h)
	}
	out, _, err := g.vigilCLI("status")
	if err == nil || !strings.Contains(out, `"failing_open"`) {
		t.Fatalf("caddy vigil status with the store down: err %v\n%s", err, out)
	}
	wantFailedLogin(t, g.login("alice", "x")) // fail open: the app still answers
	poll.True(t, 15*time.Second, "the store-down WARN line", func() bool { return strings.Contains(g.output(), logStoreDown) })
	for i := 0; i < 5; i++ { // every one fails over: still one line
		wantFailedLogin(t, g.login(fmt.Sprintf("user%d", i), "x"))
	}
	// long enough for another resync to fail
	time.Sleep(6 * time.Second)
	if n := strings.Count(g.output(), logStoreDown); n != 1 {
		t.Fatalf("%d store-down lines for one outage:\n%s", n, g.output())
	}
	if line := logLine(g.output(), logStoreDown); !strings.Contains(line, `"level":"warn"`) || !strings.Contains(line, srv.Addr) {
		t.Fatalf("store-down line: %s", line)
	}
	_, h = g.health()
	if !h.Store.FallbackActive || h.Store.DownSince == nil {
		t.Fatalf("fallback not reported: %+v", h.Store)
	}

	redistest.StartServer(t, srv.Port)
	poll.True(t, 20*time.Second, "the store-up INFO line", func() bool { return strings.Contains(g.output(), logStoreUp) })
	if n := strings.Count(g.output(), logStoreUp); n != 1 {
		t.Fatalf("%d store-up lines:\n%s", n, g.output())
	}
	status, h = g.health()
	if status != http.StatusOK || h.Status != "ok" || h.Store.FallbackActive {
		t.Fatalf("Redis back: %d %+v", status, h)
	}
	g.cli("status")
}

// TestOperationsDeadStoreAtStart: a Redis that does not answer never stops
// Caddy from starting: the gateway serves, fails open, and says so at once.
func TestOperationsDeadStoreAtStart(t *testing.T) {
	t.Parallel()
	dead := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	g := startGateway(t, gatewayConfig{Global: redisAt(dead)})
	wantFailedLogin(t, g.login("alice", "x"))
	status, h := g.health()
	if status != http.StatusServiceUnavailable || h.Status != "failing_open" || !h.Store.FallbackActive {
		t.Fatalf("dead store: %d %+v", status, h)
	}
	poll.True(t, 5*time.Second, "the store-down WARN line", func() bool { return strings.Contains(g.output(), logStoreDown) })
	if n := strings.Count(g.output(), logStoreDown); n != 1 {
		t.Fatalf("%d store-down lines:\n%s", n, g.output())
	}
}

// TestOperationsValidate: `caddy validate` fails on a Redis that does not
// answer, naming it and the way out, and passes with the check skipped or
// the store up.
func TestOperationsValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	validate := func(storeAddr string, env ...string) (string, error) {
		file := filepath.Join(dir, "Caddyfile")
		cfg := fmt.Sprintf("{\n\tadmin off\n\tvigil {\n\t\t%s\n\t}\n}\n\nhttp://127.0.0.1:1 {\n\tvigil {\n\t\t%s\n\t}\n\trespond ok\n}\n", redisAt(storeAddr), defaultPolicy)
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(caddyBin, "validate", "--config", file, "--adapter", "caddyfile")
		cmd.Env = append(append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dead := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	out, err := validate(dead)
	if err == nil || strings.Contains(out, "Valid configuration") {
		t.Fatalf("caddy validate passed with a dead store:\n%s", out)
	}
	for _, want := range []string{"vigil store redis " + dead + ": not reachable", "VIGIL_VALIDATE_SKIP_STORE=1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("caddy validate does not say %q:\n%s", want, out)
		}
	}
	if out, err := validate(dead, "VIGIL_VALIDATE_SKIP_STORE=1"); err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("caddy validate with VIGIL_VALIDATE_SKIP_STORE=1: %v\n%s", err, out)
	}
	srv := redistest.StartServer(t, 0)
	if out, err := validate(srv.Addr); err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("caddy validate with Redis up: %v\n%s", err, out)
	}
}

// whyJSON is what `caddy vigil why --json` prints.
type whyJSON struct {
	Subject   string `json:"subject"`
	As        string `json:"as"`
	Decisions []struct {
		decision
		Trigger *event  `json:"trigger"`
		Window  string  `json:"window"`
		Events  []event `json:"events"`
	} `json:"decisions"`
}

// TestOperationsWhy: after a block earned by failed logins, `caddy vigil
// why` names the block, its reason and the events behind it; a manual lock
// is explained by the operator's action.
func TestOperationsWhy(t *testing.T) {
	t.Parallel()
	// Caddy takes the client's address from X-Forwarded-For sent by this
	// (trusted) test client, so the test can be 203.0.113.7
	g := startGateway(t, gatewayConfig{
		Global: "store memory\n\t}\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict",
		Policy: "login POST /login {\n\t\t\tuser form:username\n\t\t\tsuccess redirect_not /login\n\t\t}\n\t\tblock_ip 3 within 1m for 1h",
	})
	from := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	for _, user := range []string{"alice", "bob", "carol"} {
		wantFailedLogin(t, g.loginWith(user, "x", from))
	}
	g.mustDecision("block", "203.0.113.7")

	out := g.cli("why", "203.0.113.7")
	t.Logf("caddy vigil why 203.0.113.7:\n%s", out)
	for _, want := range []string{"203.0.113.7: 1 active decision.", "BLOCK 203.0.113.7", "reason   failed_logins", "IP_BLOCKED", "FAILED_LOGIN", "in the 1m before it"} {
		if !strings.Contains(out, want) {
			t.Fatalf("caddy vigil why 203.0.113.7 does not say %q:\n%s", want, out)
		}
	}
	var rep whyJSON
	out = g.cli("why", "203.0.113.7", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Decisions) != 1 {
		t.Fatalf("caddy vigil why --json: %v\n%s", err, out)
	}
	d := rep.Decisions[0]
	if d.Reason != "failed_logins" || d.Trigger == nil || d.Trigger.Type != "IP_BLOCKED" || d.Window != "1m" || countType(d.Events, "FAILED_LOGIN") != 3 {
		t.Fatalf("caddy vigil why --json: %+v\n%s", d, out)
	}
	for i := 1; i < len(d.Events); i++ {
		if d.Events[i].Time.Before(d.Events[i-1].Time) {
			t.Fatalf("events not oldest first:\n%s", dumpEvents(d.Events))
		}
	}

	if out := g.cli("why", "198.51.100.1"); !strings.Contains(out, "No active decision on 198.51.100.1.") {
		t.Fatalf("why on a clean address:\n%s", out)
	}
	g.cli("lock", "Dave", "--reason", "support ticket 42")
	out = g.cli("why", "dave")
	for _, want := range []string{"LOCK dave", "support ticket 42", "source   admin", "made by", "ADMIN_ACTION", "action=lock"} {
		if !strings.Contains(out, want) {
			t.Fatalf("caddy vigil why dave does not say %q:\n%s", want, out)
		}
	}
}
