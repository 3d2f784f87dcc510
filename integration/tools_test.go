package integration

// Real attack tools against the built gateway: hydra (online password
// guessing) and ffuf (directory scanning), as an attacker would run them.
//
// Environment:
//
//	VIGIL_REQUIRE_TOOLS=1  fail, rather than skip, these tests when hydra
//	                       or ffuf is not installed (.ci/run sets it)

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect/probes"
	"github.com/vigilsec/vigil/internal/demoapp"
)

// browserAgent is the User-Agent a careful attacker sends instead of the
// tool's own, so that the scanner-agent detector does not see the tool.
const browserAgent = "Mozilla/5.0 (X11; Linux x86_64)"

// toolTimeout bounds every tool run.
const toolTimeout = 20 * time.Second

// needTool returns the path of an attack tool, or skips the test loudly
// (fails it under VIGIL_REQUIRE_TOOLS=1) when it is not installed.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("!!! %s not installed, real-tool test NOT RUN", name)
		if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg + " (VIGIL_REQUIRE_TOOLS=1)")
		}
		t.Skip(msg + " (install it, or set VIGIL_REQUIRE_TOOLS=1 to make this a failure)")
	}
	return path
}

// shellLine renders a command line for the log, quoted for a shell.
func shellLine(path string, args []string) string {
	parts := []string{filepath.Base(path)}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'\\$&;()|<>*?!^:=") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// runTool runs a tool in its own temporary directory under a deadline and
// returns what it printed (stdout and stderr). The command line and its
// duration are logged; the output is shown when the test fails.
func runTool(t *testing.T, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir // hydra writes hydra.restore into its working directory
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.WaitDelay = 2 * time.Second
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	line := shellLine(path, args)
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	t.Logf("ran (%s): %s", took, line)
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s\n--- output ---\n%s", line, toolTimeout, out.String())
	}
	if err != nil {
		t.Fatalf("%s: %v\n--- output ---\n%s", line, err, out.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", line, out.String())
		}
	})
	return out.String()
}

// writeLines writes a wordlist into dir and returns its path.
func writeLines(t *testing.T, dir, name string, lines []string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantMetric asserts the value of one sample of the gateway's /metrics; a
// sample never touched is absent, which counts as 0.
func (g *gateway) wantMetric(name, labels string, want float64) {
	g.t.Helper()
	got, ok := metricValue(g.scrape(), name, labels)
	if got != want || !ok && want != 0 {
		g.t.Fatalf("%s{%s}: want %g, got %g (present: %v)", name, labels, want, got, ok)
	}
}

// ---------------------------------------------------------------------------
// hydra

// hydraForm is hydra's http-post-form target for the demo app's login form.
//
// How hydra 9.4 judges an attempt (hydra-http-form.c): it reads the answer
// line by line, headers included, and looks for the condition string; an
// answer "HTTP/1.x 403" or "404" ends the attempt as not found; a 401 makes
// it give up ("the target is using HTTP auth"); a 3xx whose Location does not
// hold the condition is followed with a GET and that page is searched. With
// "F=<fail marker>" any answer without the marker is a valid password: with
// F=error (the failure redirect is /login?error=1) the gateway's bare 429 is
// reported as a valid password and, with -f, stops the run before the real
// password is ever sent. So the condition is a success marker: S=demo_session
// matches only the Set-Cookie header of the app's successful login (302 to
// /dashboard); the failure redirect, the login page it leads to and the
// gateway's 429 and 403 never carry it. The control run shows that this
// condition finds the password when no gateway is in the way.
//
// hydra 9.4 reads the condition from the last field, after the optional
// ones (H=… here), whatever its usage text says.
func hydraForm(agent string) string {
	spec := "/login:username=^USER^&password=^PASS^"
	if agent != "" {
		spec += `:H=User-Agent\: ` + agent // replaces hydra's "Mozilla/5.0 (Hydra)"
	}
	return spec + ":S=demo_session"
}

// hydraArgs is a hydra command line against 127.0.0.1:port: one task (-t 1,
// attempts strictly one after the other), stop at the first valid pair (-f),
// no wait for an old restore file (-I), one [ATTEMPT] line per guess (-V).
func hydraArgs(port int, creds []string, agent string) []string {
	args := append([]string{}, creds...)
	return append(args, "-s", strconv.Itoa(port), "-t", "1", "-f", "-I", "-V", "127.0.0.1", "http-post-form", hydraForm(agent))
}

var (
	hydraFound    = regexp.MustCompile(`(?m)^\[\d+\]\[http-post-form\] host: \S+\s+login: (\S*)\s+password: (.*)$`)
	hydraSummary  = regexp.MustCompile(`(\d+) valid passwords? found`)
	hydraAttempts = regexp.MustCompile(`(?m)^\[ATTEMPT\] target \S+ - login "([^"]*)" - pass "([^"]*)"`)
)

// hydraResult is what a hydra run reported.
type hydraResult struct {
	out      string
	found    [][2]string // login, password
	valid    int         // from the summary line; -1 when missing
	attempts [][2]string // login, password of each [ATTEMPT] line
}

func parseHydra(out string) hydraResult {
	r := hydraResult{out: out, valid: -1}
	for _, m := range hydraFound.FindAllStringSubmatch(out, -1) {
		r.found = append(r.found, [2]string{m[1], strings.TrimSpace(m[2])})
	}
	if m := hydraSummary.FindStringSubmatch(out); m != nil {
		r.valid, _ = strconv.Atoi(m[1])
	}
	for _, m := range hydraAttempts.FindAllStringSubmatch(out, -1) {
		r.attempts = append(r.attempts, [2]string{m[1], m[2]})
	}
	return r
}

// sent reports whether hydra says it sent this login and password.
func (r hydraResult) sent(login, password string) bool {
	for _, a := range r.attempts {
		if a == [2]string{login, password} {
			return true
		}
	}
	return false
}

// aliceWordlist is 20 wrong passwords, then alice's real one, last.
func aliceWordlist() []string {
	return []string{
		"123456", "password", "qwerty", "letmein", "dragon", "monkey", "football",
		"iloveyou", "admin123", "welcome1", "sunshine", "princess", "abc123",
		"trustno1", "baseball", "master", "shadow", "Summer2024!", "passw0rd", "alice1990",
		"wonderland",
	}
}

// controlRun runs the same hydra attack directly against a demo app, with
// no gateway in front: it must find alice's password, which proves that the
// success condition works and that "0 valid passwords" through the gateway
// means the gateway stopped the attack.
func controlRun(t *testing.T, hydra string, creds []string, agent string) {
	t.Helper()
	up := newUpstream(t)
	port := up.srv.Listener.Addr().(*net.TCPAddr).Port
	r := parseHydra(runTool(t, hydra, hydraArgs(port, creds, agent)...))
	if len(r.found) != 1 || r.found[0] != [2]string{"alice", "wonderland"} || r.valid != 1 {
		t.Fatalf("control run without the gateway: hydra should find exactly alice/wonderland, found %v (summary: %d valid)\n%s", r.found, r.valid, r.out)
	}
	if n := len(up.attempts()); n != len(aliceWordlist()) {
		t.Fatalf("control run without the gateway: the app checked %d passwords, want all %d", n, len(aliceWordlist()))
	}
}

// TestHydraBruteForceIsLockedOut: hydra guesses alice's password from a
// wordlist holding it last. Behind Vigil, three guesses reach the app, the
// account is locked and every later guess, the right one included, is
// refused with 429: hydra finds nothing. With its own User-Agent, hydra is
// recognised and blocked before its first guess.
func TestHydraBruteForceIsLockedOut(t *testing.T) {
	t.Parallel()
	hydra := needTool(t, "hydra")
	policy := `login POST /login {
			user form:username
			success redirect_not /login
		}
		lockout 3 within 1m for 1m
		block_ip 50 within 1m for 1m`

	t.Run("control-without-gateway", func(t *testing.T) {
		t.Parallel()
		words := writeLines(t, t.TempDir(), "passwords.txt", aliceWordlist())
		controlRun(t, hydra, []string{"-l", "alice", "-P", words}, browserAgent)
	})

	t.Run("browser-agent", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, gatewayConfig{Global: "store memory", Policy: policy})
		words := writeLines(t, t.TempDir(), "passwords.txt", aliceWordlist())
		r := parseHydra(runTool(t, hydra, hydraArgs(g.port, []string{"-l", "alice", "-P", words}, browserAgent)...))

		// the app checked alice's password three times, never the right one
		want := []loginAttempt{{"alice", false}, {"alice", false}, {"alice", false}}
		if got := g.up.attempts(); !reflect.DeepEqual(got, want) {
			t.Fatalf("the app checked %v, want %v (three wrong guesses, then nothing)", got, want)
		}
		if h := g.up.hits(); h != 3 {
			t.Fatalf("%d login submissions reached the app, want 3", h)
		}
		// hydra did send every guess, the real password included …
		if len(r.attempts) != len(aliceWordlist()) || !r.sent("alice", "wonderland") {
			t.Fatalf("hydra should have tried all %d passwords, wonderland last; it reported %d attempts: %v", len(aliceWordlist()), len(r.attempts), r.attempts)
		}
		// … and, its success condition being unambiguous (see the control
		// run), it found nothing
		if len(r.found) != 0 || r.valid != 0 {
			t.Fatalf("hydra reports valid passwords through the gateway: %v (summary: %d valid)", r.found, r.valid)
		}

		// the gateway saw all 21: 3 failures, 18 refused before the app
		g.wantMetric("vigil_login_attempts_total", `outcome="failure"`, 3)
		g.wantMetric("vigil_login_attempts_total", `outcome="refused"`, 18)
		g.wantMetric("vigil_login_attempts_total", `outcome="success"`, 0)
		g.wantMetric("vigil_enforced_requests_total", `action="lock"`, 18)

		evs := g.waitEvents(q("user", "alice"), "FAILED_LOGIN×3 and ACCOUNT_LOCKED", func(evs []event) bool {
			return countType(evs, "FAILED_LOGIN") >= 3 && countType(evs, "ACCOUNT_LOCKED") >= 1
		})
		if countType(evs, "FAILED_LOGIN") != 3 || countType(evs, "ACCOUNT_LOCKED") != 1 || len(evs) != 4 {
			t.Fatalf("alice's events: want exactly 3 FAILED_LOGIN and 1 ACCOUNT_LOCKED:\n%s", dumpEvents(evs))
		}
		if evs[0].Type != "ACCOUNT_LOCKED" || evs[0].IP != "127.0.0.1" || evs[0].Details["account_failures"] != float64(3) {
			t.Fatalf("ACCOUNT_LOCKED should come last, for 127.0.0.1 at 3 failures:\n%s", dumpEvents(evs))
		}

		// the account is locked, the address is not blocked (block_ip 50
		// was not reached, and the browser agent is no scanner)
		d := g.mustDecision("lock", "alice")
		if d.Strike != 1 || d.Source != "auto" {
			t.Fatalf("lock decision: %+v", d)
		}
		if _, blocked := findDecision(g.decisions(), "block", "127.0.0.1"); blocked {
			t.Fatalf("127.0.0.1 was blocked: %+v", g.decisions())
		}
		if n := len(g.events(q("type", "SYSTEM_INTRUSION"))); n != 0 {
			t.Fatalf("hydra with a browser agent raised %d SYSTEM_INTRUSION", n)
		}
		wantRefused(t, g.login("alice", "wonderland"), http.StatusTooManyRequests, 50, 60)
		if r := g.get("/dashboard"); r.Status != http.StatusOK {
			t.Fatalf("GET /dashboard from the attacking address: %s", r)
		}

		// no password reached the event log
		_, raw := g.adminDo(http.MethodGet, "/vigil/events?limit=1000", nil)
		for _, p := range []string{"wonderland", "alice1990", "Summer2024!", "trustno1", "iloveyou", "sunshine"} {
			if strings.Contains(string(raw), p) {
				t.Fatalf("the event log contains the guessed password %q: %s", p, raw)
			}
		}
	})

	t.Run("hydra-agent", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, gatewayConfig{Global: "store memory", Policy: policy})
		words := writeLines(t, t.TempDir(), "passwords.txt", aliceWordlist())
		r := parseHydra(runTool(t, hydra, hydraArgs(g.port, []string{"-l", "alice", "-P", words}, "")...))

		if got := g.up.attempts(); len(got) != 0 || g.up.hits() != 0 {
			t.Fatalf("hydra's own User-Agent should be blocked before any guess; the app checked %v (%d submissions)", got, g.up.hits())
		}
		if len(r.attempts) != len(aliceWordlist()) || !r.sent("alice", "wonderland") {
			t.Fatalf("hydra should have tried all %d passwords, wonderland last; it reported %d attempts: %v", len(aliceWordlist()), len(r.attempts), r.attempts)
		}
		if len(r.found) != 0 || r.valid != 0 {
			t.Fatalf("hydra reports valid passwords through the gateway: %v (summary: %d valid)", r.found, r.valid)
		}
		// hydra's first request is the GET of the form (to gather cookies)
		evs := g.waitEvents(q("type", "SYSTEM_INTRUSION"), "SYSTEM_INTRUSION", func(evs []event) bool { return len(evs) >= 1 })
		if len(evs) != 1 || evs[0].Details["kind"] != "scanner_agent" || evs[0].Details["evidence"] != "hydra" || evs[0].IP != "127.0.0.1" ||
			evs[0].Details["method"] != "GET" || evs[0].Details["path"] != "/login" {
			t.Fatalf("want one SYSTEM_INTRUSION kind scanner_agent, evidence hydra, for 127.0.0.1 at GET /login:\n%s", dumpEvents(evs))
		}
		if d := g.mustDecision("block", "127.0.0.1"); d.Reason != "SYSTEM_INTRUSION: scanner_agent" {
			t.Fatalf("block decision: %+v", d)
		}
		wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3590, 3600)
		if n := len(g.events(q("type", "FAILED_LOGIN"))); n != 0 {
			t.Fatalf("%d FAILED_LOGIN recorded although no guess reached the app", n)
		}
	})
}

// TestHydraPasswordSprayIsBlocked: hydra sprays one common password over
// twenty accounts. After five distinct accounts have failed from the
// address, Vigil calls it credential stuffing and blocks the address: the
// app sees exactly five guesses, hydra's remaining fifteen get 403.
func TestHydraPasswordSprayIsBlocked(t *testing.T) {
	t.Parallel()
	hydra := needTool(t, "hydra")
	g := startGateway(t, gatewayConfig{Global: "store memory", Policy: `login POST /login {
			user form:username
			success redirect_not /login
		}
		stuffing 5 within 1m`})

	users := []string{
		"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
		"mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe",
	}
	const spray = "Winter2026!"
	list := writeLines(t, t.TempDir(), "users.txt", users)
	r := parseHydra(runTool(t, hydra, hydraArgs(g.port, []string{"-L", list, "-p", spray}, browserAgent)...))

	var want []loginAttempt
	for _, u := range users[:5] {
		want = append(want, loginAttempt{u, false})
	}
	if got := g.up.attempts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the app checked %v, want the first five accounts only: %v", got, want)
	}
	if len(r.attempts) != len(users) {
		t.Fatalf("hydra should have tried all %d accounts, it reported %d attempts: %v", len(users), len(r.attempts), r.attempts)
	}
	if len(r.found) != 0 || r.valid != 0 {
		t.Fatalf("hydra reports valid passwords: %v (summary: %d valid)", r.found, r.valid)
	}

	d := g.mustDecision("block", "127.0.0.1")
	if d.Reason != "credential_stuffing" || d.Strike != 1 {
		t.Fatalf("block decision: want credential_stuffing, strike 1: %+v", d)
	}
	// without block_ip, a stuffing block lasts 1 h
	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3590, 3600)

	evs := g.waitEvents(q("ip", "127.0.0.1"), "CREDENTIAL_STUFFING and IP_BLOCKED", func(evs []event) bool {
		return countType(evs, "CREDENTIAL_STUFFING") >= 1 && countType(evs, "IP_BLOCKED") >= 1
	})
	cs := ofType(evs, "CREDENTIAL_STUFFING")
	if len(cs) != 1 || cs[0].Severity != "HIGH" || cs[0].Details["accounts_from_ip"] != float64(5) {
		t.Fatalf("want one HIGH CREDENTIAL_STUFFING at 5 accounts:\n%s", dumpEvents(evs))
	}
	ib := ofType(evs, "IP_BLOCKED")
	if len(ib) != 1 || ib[0].Details["reason"] != "credential_stuffing" {
		t.Fatalf("want one IP_BLOCKED with reason credential_stuffing:\n%s", dumpEvents(evs))
	}
	if n := countType(evs, "FAILED_LOGIN"); n != 5 {
		t.Fatalf("want 5 FAILED_LOGIN, got %d:\n%s", n, dumpEvents(evs))
	}
	// hydra's fifteen later guesses (each a GET of the form and the POST)
	// were refused at the gateway
	exp := g.scrape()
	if v, _ := metricValue(exp, "vigil_enforced_requests_total", `action="block"`); v < 15 {
		t.Fatalf("vigil_enforced_requests_total{action=\"block\"} = %g, want at least 15 (one per later guess)", v)
	}
	g.wantMetric("vigil_login_attempts_total", `outcome="failure"`, 5)
}

// ---------------------------------------------------------------------------
// ffuf

// scanWords are 60 paths a directory scanner tries that the demo app does
// not have: no sensitive-file names, no attack signatures, no static assets,
// so that only the scan detector can see them.
var scanWords = []string{
	"admin", "administrator", "backup2", "old-site", "staging", "dev", "test", "beta",
	"portal", "panel", "cpanel", "manager", "console", "control", "webadmin", "siteadmin",
	"adminpanel", "moderator", "private", "secret-area", "internal", "intranet", "members",
	"member", "accounts", "account-old", "billing", "invoices", "reports", "uploads",
	"files", "downloads", "docs-old", "archive", "archives", "legacy", "v1", "v2", "old",
	"new", "temp", "tmp", "cgi-bin", "scripts", "includes", "lib", "vendor-old",
	"assets-old", "setup", "install", "installer", "config-panel", "status-page",
	"monitor", "metrics-old", "debug", "phpmyadmin", "pma", "mysql-admin", "wp-admin",
}

// pathRecorder is a demo app that also notes every path it is asked for.
type pathRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) add(path string) {
	p.mu.Lock()
	p.paths = append(p.paths, path)
	p.mu.Unlock()
}

// seen returns, in order, the paths among want that reached the app.
func (p *pathRecorder) seen(want map[string]bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range p.paths {
		if want[s] {
			out = append(out, s)
		}
	}
	return out
}

// newRecordingUpstream is newUpstream with a recorder of request paths.
func newRecordingUpstream(t *testing.T) (*upstream, *pathRecorder) {
	t.Helper()
	u, rec := &upstream{}, &pathRecorder{}
	u.app = demoapp.New(demoapp.Options{LoginHook: func(user string, ok bool) {
		u.mu.Lock()
		u.seen = append(u.seen, loginAttempt{user, ok})
		u.mu.Unlock()
	}})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r.URL.Path)
		u.app.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u, rec
}

// ffufResult is one entry of ffuf's JSON output.
type ffufResult struct {
	Input    map[string]string `json:"input"`
	Position int               `json:"position"`
	Status   int               `json:"status"`
}

// runFfuf scans the gateway with scanWords, one request at a time in
// wordlist order, and returns ffuf's results by position.
func runFfuf(t *testing.T, ffuf string, g *gateway, agent string) []ffufResult {
	t.Helper()
	dir := t.TempDir()
	words := writeLines(t, dir, "words.txt", scanWords)
	outFile := filepath.Join(dir, "ffuf.json")
	args := []string{"-u", g.base + "/FUZZ", "-w", words}
	if agent != "" {
		args = append(args, "-H", "User-Agent: "+agent)
	}
	args = append(args, "-t", "1", "-mc", "all", "-s", "-o", outFile, "-of", "json")
	runTool(t, ffuf, args...)
	raw, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatalf("ffuf wrote no results: %v", err)
	}
	var v struct {
		Results []ffufResult `json:"results"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("ffuf results: %v in %s", err, raw)
	}
	byPos := make([]ffufResult, len(scanWords))
	for _, r := range v.Results {
		if r.Position < 1 || r.Position > len(scanWords) || byPos[r.Position-1].Position != 0 {
			t.Fatalf("ffuf result with a bad or repeated position: %+v", r)
		}
		if r.Input["FUZZ"] != scanWords[r.Position-1] {
			t.Fatalf("ffuf result %d is for %q, want %q", r.Position, r.Input["FUZZ"], scanWords[r.Position-1])
		}
		byPos[r.Position-1] = r
	}
	for i, r := range byPos {
		if r.Position == 0 {
			t.Fatalf("ffuf reported no answer for /%s (position %d); results: %s", scanWords[i], i+1, raw)
		}
	}
	return byPos
}

// scanTolerance is how many scan requests beyond the threshold may reach
// the app. A 4xx is counted off the request path (observe → background →
// countProbe) once the upstream has answered, and the block is imposed by
// that background task; with one request at a time (-t 1), the next request
// can only slip through if it arrives before the task has finished, i.e.
// while the memory store's window update and decision are still pending
// after the answer went out. Two is generous for that race.
const scanTolerance = 2

// TestFfufDirectoryScanIsBlocked: ffuf scans 60 paths that do not exist.
// With a browser User-Agent, only the scan detector can see it: after 10
// distinct 404s the address is blocked, SYSTEM_INTRUSION (scan) recorded,
// and the rest of the scan answered 403 by the gateway. With ffuf's own
// User-Agent, the first request is refused.
func TestFfufDirectoryScanIsBlocked(t *testing.T) {
	t.Parallel()
	ffuf := needTool(t, "ffuf")

	// the wordlist must be invisible to every detector but the scan one
	wordSet := map[string]bool{}
	for _, w := range scanWords {
		p := "/" + w
		if ev, ok := probes.SensitiveFile(p); ok {
			t.Fatalf("scan word %q is a sensitive file (%s)", w, ev)
		}
		if ev, ok := probes.ProbeSignature(p, ""); ok {
			t.Fatalf("scan word %q carries a probe signature (%s)", w, ev)
		}
		if probes.StaticAsset(p) {
			t.Fatalf("scan word %q is a static asset", w)
		}
		wordSet[p] = true
	}
	if _, ok := probes.ScannerAgent(browserAgent); ok {
		t.Fatalf("browserAgent %q is flagged as a scanner", browserAgent)
	}
	if len(wordSet) != 60 {
		t.Fatalf("want 60 distinct scan words, have %d", len(wordSet))
	}
	const threshold = 10 // the default: probes { scan 10 within 1m }

	t.Run("browser-agent", func(t *testing.T) {
		t.Parallel()
		up, rec := newRecordingUpstream(t)
		g := startGateway(t, gatewayConfig{Global: "store memory", Policy: "site shop", Upstream: up})
		res := runFfuf(t, ffuf, g, browserAgent)

		// the app answered the first n scan requests (404), the gateway
		// all the others (403): n is at least the threshold and at most a
		// little more, and ffuf saw exactly that
		seen := rec.seen(wordSet)
		n := len(seen)
		if n < threshold || n > threshold+scanTolerance {
			t.Fatalf("%d scan requests reached the app, want %d to %d: %v", n, threshold, threshold+scanTolerance, seen)
		}
		for i, p := range seen {
			if p != "/"+scanWords[i] {
				t.Fatalf("the app saw the scan out of order: %v", seen)
			}
		}
		for i, r := range res {
			want := http.StatusNotFound
			if i >= n {
				want = http.StatusForbidden
			}
			if r.Status != want {
				t.Fatalf("ffuf got %d for /%s (request %d), want %d: the app answered the first %d", r.Status, scanWords[i], i+1, want, n)
			}
		}

		evs := g.waitEvents(q("type", "SYSTEM_INTRUSION"), "SYSTEM_INTRUSION", func(evs []event) bool { return len(evs) >= 1 })
		if len(evs) != 1 {
			t.Fatalf("want exactly one SYSTEM_INTRUSION:\n%s", dumpEvents(evs))
		}
		e := evs[0]
		if e.Details["kind"] != "scan" || e.Severity != "HIGH" || e.IP != "127.0.0.1" || e.Site != "shop" || e.Details["strike"] != float64(1) {
			t.Fatalf("want a HIGH SYSTEM_INTRUSION kind scan, strike 1, for 127.0.0.1 on shop:\n%s", dumpEvents(evs))
		}
		// the finding is made by the count of the threshold-th path; when
		// a later request slipped through (n > threshold), the counts of
		// the last requests run concurrently and whichever imposes the
		// block first makes the event, with its own count and path
		var k int
		ev, _ := e.Details["evidence"].(string)
		if _, err := fmt.Sscanf(ev, "%d distinct paths answered 4xx within", &k); err != nil || k < threshold || k > n {
			t.Fatalf("SYSTEM_INTRUSION evidence: want %d to %d distinct paths, got %q", threshold, n, ev)
		}
		if p, _ := e.Details["path"].(string); !slices.Contains(seen[threshold-1:], p) {
			t.Fatalf("SYSTEM_INTRUSION path: want one of the scan requests %d to %d %v, got %q", threshold, n, seen[threshold-1:], p)
		}
		if d := g.mustDecision("block", "127.0.0.1"); d.Reason != "SYSTEM_INTRUSION: scan" || d.Strike != 1 {
			t.Fatalf("block decision: %+v", d)
		}
		wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3590, 3600)
		if v, ok := metricValue(g.scrape(), "vigil_intrusions_total", `kind="scan"`); !ok || v < 1 {
			t.Fatalf("vigil_intrusions_total{kind=\"scan\"} = %g (present: %v), want at least 1", v, ok)
		}
		t.Logf("the app saw %d of the %d scan requests (threshold %d)", n, len(scanWords), threshold)
	})

	t.Run("ffuf-agent", func(t *testing.T) {
		t.Parallel()
		up, rec := newRecordingUpstream(t)
		g := startGateway(t, gatewayConfig{Global: "store memory", Policy: "site shop", Upstream: up})
		res := runFfuf(t, ffuf, g, "")

		if seen := rec.seen(wordSet); len(seen) != 0 {
			t.Fatalf("ffuf's own User-Agent should be refused at the first request; the app saw %v", seen)
		}
		for i, r := range res {
			if r.Status != http.StatusForbidden {
				t.Fatalf("ffuf got %d for /%s (request %d), want 403", r.Status, scanWords[i], i+1)
			}
		}
		evs := g.waitEvents(q("type", "SYSTEM_INTRUSION"), "SYSTEM_INTRUSION", func(evs []event) bool { return len(evs) >= 1 })
		if len(evs) != 1 || evs[0].Details["kind"] != "scanner_agent" || evs[0].Details["evidence"] != "fuzz faster u fool" || evs[0].Details["path"] != "/"+scanWords[0] {
			t.Fatalf("want one SYSTEM_INTRUSION kind scanner_agent (fuzz faster u fool) at /%s:\n%s", scanWords[0], dumpEvents(evs))
		}
		if d := g.mustDecision("block", "127.0.0.1"); d.Reason != "SYSTEM_INTRUSION: scanner_agent" {
			t.Fatalf("block decision: %+v", d)
		}
		wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 3590, 3600)
	})
}
