package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// linkedDecision is an entry of GET /vigil/decisions with its link.
type linkedDecision struct {
	decision
	Linked struct {
		Kind   string `json:"kind"`
		Target string `json:"target"`
	} `json:"linked"`
}

// listDecisions GETs a decisions listing (path with its query) and fails
// the test unless it answers 200.
func (g *gateway) listDecisions(path string) []linkedDecision {
	g.t.Helper()
	status, body := g.adminDo(http.MethodGet, path, nil)
	if status != http.StatusOK {
		g.t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var v struct {
		Decisions []linkedDecision `json:"decisions"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		g.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return v.Decisions
}

func summary(ds []linkedDecision) string {
	var out []string
	for _, d := range ds {
		s := d.Kind + " " + d.Target
		if d.Linked.Kind != "" {
			s += " (linked " + d.Linked.Kind + " " + d.Linked.Target + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// vigilCLIWith runs `caddy vigil <args> --address <admin>` with stdin.
func (g *gateway) vigilCLIWith(stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, append(append([]string{"vigil"}, args...), "--address", g.admin)...)
	cmd.Dir, cmd.Env, cmd.Stdin = g.dir, g.env, strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// redisDecisions reads the decisions hash of a Redis store.
func redisDecisions(t *testing.T, s storeCase) map[string]bool {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.redis})
	defer c.Close()
	all, err := c.HGetAll(context.Background(), s.prefix+"decisions").Result()
	if err != nil {
		t.Fatalf("HGETALL %sdecisions: %v", s.prefix, err)
	}
	out := map[string]bool{}
	for _, v := range all {
		var d decision
		if json.Unmarshal([]byte(v), &d) == nil {
			out[d.Kind+" "+d.Target] = true
		}
	}
	return out
}

// TestDecisionsCarriedToANewStore: a reload that moves the store from
// memory to Redis keeps the block and the lock in force, in Redis.
func TestDecisionsCarriedToANewStore(t *testing.T) {
	t.Parallel()
	red := redisStore(t)
	g := startGateway(t, gatewayConfig{Global: "store memory"})
	g.cli("block", "127.0.0.1", "--duration", "1h", "--reason", "carried")
	g.cli("lock", "Bob ", "--duration", "1h")
	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3590, 3600)
	if d := g.mustDecision("lock", "bob"); d.Reason != "manual" {
		t.Fatalf("lock of \"Bob \": %+v", d)
	}

	g.reload(gatewayConfig{Global: red.global})

	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3580, 3600)
	g.cli("unblock", "127.0.0.1")
	wantRefused(t, g.login("bob", "builder"), http.StatusTooManyRequests, 3580, 3600)
	if h := g.up.hits(); h != 0 {
		t.Fatalf("a login for the carried lock reached the app (%d)", h)
	}
	in := redisDecisions(t, red)
	if !in["lock bob"] {
		t.Fatalf("the carried lock is not in Redis: %v", in)
	}
	if d := g.mustDecision("lock", "bob"); d.Until.Sub(d.Created) != time.Hour {
		t.Fatalf("the carried lock changed: %+v", d)
	}
}

// TestDecisionListsFilters: the kind and target filters, the lists per
// kind, canonical targets, and clear errors.
func TestDecisionListsFilters(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory"})
	g.cli("block", "2001:DB8::/48")
	g.cli("lock", "Bob ")
	g.cli("revoke", "BOB")
	g.cli("revoke", "--jti", "Tok-1")
	if ds := g.listDecisions("/vigil/decisions?kind=lock,revoke_user&target=" + url.QueryEscape(" BOB")); summary(ds) != "lock bob, revoke_user bob" &&
		summary(ds) != "revoke_user bob, lock bob" {
		t.Fatalf("locks and revocations of BOB: %s", summary(ds))
	}
	for path, want := range map[string]string{
		"/vigil/decisions?target=2001:db8:0::/48": "block 2001:db8::/48",
		"/vigil/blocks":                      "block 2001:db8::/48",
		"/vigil/locks?target=bob":            "lock bob",
		"/vigil/revocations?kind=revoke_jti": "revoke_jti Tok-1",
		"/vigil/decisions?target=tok-1":      "",
	} {
		if got := summary(g.listDecisions(path)); got != want {
			t.Errorf("GET %s: %q, want %q", path, got, want)
		}
	}
	if n := len(g.listDecisions("/vigil/revocations")); n != 2 {
		t.Errorf("GET /vigil/revocations lists %d", n)
	}
	for _, path := range []string{"/vigil/decisions?kind=ban", "/vigil/decisions?kind=block&target=bob", "/vigil/locks?kind=block",
		"/vigil/decisions/export?format=xml"} {
		if status, body := g.adminDo(http.MethodGet, path, nil); status != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET %s: %d %s, want a 400 error", path, status, body)
		}
	}
	if out := g.cli("decisions", "--kind", "lock", "--target", "BOB"); !strings.Contains(out, `"bob"`) || strings.Contains(out, "2001:db8") {
		t.Fatalf("caddy vigil decisions --kind lock --target BOB:\n%s", out)
	}
	g.cli("unlock", "BOB")
	if ds := g.listDecisions("/vigil/locks"); len(ds) != 0 {
		t.Fatalf("unlock BOB left %s", summary(ds))
	}
}

// TestDecisionsImportExportRoundTrip: CrowdSec CSV in through the CLI (a
// captcha row skipped, one ADMIN_ACTION), exported in each format, and a
// Vigil export imported into a second gateway on Redis; a bad file is
// refused whole.
func TestDecisionsImportExportRoundTrip(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory"})
	dir := t.TempDir()
	csvFile := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(csvFile, []byte("value,duration,type,scope,reason\n"+
		"127.0.0.1,1h,ban,Ip,crowdsec\n198.51.100.0/24,2h,ban,Range,crowdsec\n192.0.2.9,1h,captcha,Ip,crowdsec\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := g.cli("decisions", "import", csvFile)
	var res struct {
		Imported int            `json:"imported"`
		Skipped  map[string]int `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Imported != 2 || res.Skipped["type captcha"] != 1 {
		t.Fatalf("caddy vigil decisions import: %v\n%s", err, out)
	}
	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3590, 3600)
	g.cli("unblock", "127.0.0.1")
	imports := 0
	for _, e := range g.events(q("type", "ADMIN_ACTION")) {
		if e.Details["action"] == "import" {
			imports++
		}
	}
	if imports != 1 {
		t.Fatalf("%d import events, want 1", imports)
	}

	// a bad row: nothing of the file is imported
	bad := "value,duration\n203.0.113.1,1h\nnot-an-ip,1h\n"
	if out, errOut, err := g.vigilCLIWith(bad, "decisions", "import", "-", "--format", "crowdsec-csv"); err == nil || !strings.Contains(out+errOut, "line 3") {
		t.Fatalf("a bad file: %v\n%s\n%s", err, out, errOut)
	}
	if _, ok := findDecision(g.decisions(), "block", "203.0.113.1"); ok {
		t.Fatal("a refused import left a block behind")
	}

	g.cli("lock", "alice", "--duration", "30m")
	exported := filepath.Join(dir, "export.csv")
	g.cli("decisions", "export", "--format", "crowdsec-csv", "--out", exported)
	if b, _ := os.ReadFile(exported); !strings.HasPrefix(string(b), "value,duration,type,scope,reason,origin\n198.51.100.0/24,") {
		t.Fatalf("CSV export:\n%s", b)
	}
	if out := g.cli("decisions", "export", "--format", "crowdsec-json", "--kind", "block"); !strings.Contains(out, `"scope":"Range"`) {
		t.Fatalf("JSON export:\n%s", out)
	}
	vigilFile := filepath.Join(dir, "vigil.json")
	g.cli("decisions", "export", "--out", vigilFile)

	red := redisStore(t)
	h := startNamedGateway(t, "gateway B", gatewayConfig{Global: red.global})
	h.cli("decisions", "import", vigilFile)
	for _, want := range []string{"block 198.51.100.0/24", "lock alice"} {
		kind, target, _ := strings.Cut(want, " ")
		d := h.mustDecision(kind, target)
		orig := g.mustDecision(kind, target)
		if !d.Until.Equal(orig.Until) || d.Reason != orig.Reason {
			t.Errorf("%s imported as %+v, exported %+v", want, d, orig)
		}
	}
	if in := redisDecisions(t, red); !in["lock alice"] || !in["block 198.51.100.0/24"] {
		t.Fatalf("the import is not in Redis: %v", in)
	}
}

// TestDecisionUnlockLiftsItsRevocation: a lock that ended the account's
// sessions shows its revocation, and unlocking (by any form of the name)
// lifts both, so the session works again.
func TestDecisionUnlockLiftsItsRevocation(t *testing.T) {
	t.Parallel()
	up := jwtUpstream(t)
	g := startGateway(t, gatewayConfig{Global: "store memory", Upstream: up,
		Policy: sessionPolicy + "\n\t\tlockout 3 within 1m for 1m"})
	alice := sessionCookie(t, g, "alice", "wonderland")
	time.Sleep(1100 * time.Millisecond) // the revocation covers tokens issued up to its second
	for i := 0; i < 3; i++ {
		wantFailedLogin(t, g.login("alice", "x"))
	}
	if _, r := me(t, g, alice); r.Status != http.StatusUnauthorized {
		t.Fatalf("alice's session after her account was locked: %s", r)
	}
	ds := g.listDecisions("/vigil/decisions")
	if got := summary(ds); !strings.Contains(got, "lock alice (linked revoke_user alice)") || !strings.Contains(got, "revoke_user alice (linked lock alice)") {
		t.Fatalf("decisions: %s", got)
	}
	locked := g.waitEvents(q("type", "ACCOUNT_LOCKED"), "the lock", func(evs []event) bool { return len(evs) == 1 })
	if rv, _ := locked[0].Details["revocation"].(map[string]any); rv["kind"] != "revoke_user" || rv["target"] != "alice" {
		t.Fatalf("ACCOUNT_LOCKED details: %v", locked[0].Details)
	}
	g.cli("unlock", "ALICE")
	if ds := g.listDecisions("/vigil/decisions"); len(ds) != 0 {
		t.Fatalf("left after the unlock: %s", summary(ds))
	}
	if u, r := me(t, g, alice); u != "alice" {
		t.Fatalf("alice's session after the unlock: %q %s", u, r)
	}
	unlock := g.waitEvents(q("type", "ADMIN_ACTION"), "the unlock", func(evs []event) bool { return len(evs) >= 1 })
	if lifted, _ := unlock[0].Details["linked_lifted"].(map[string]any); lifted["target"] != "alice" {
		t.Fatalf("unlock details: %v", unlock[0].Details)
	}
}
