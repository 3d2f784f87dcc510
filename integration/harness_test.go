package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/internal/demoapp"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
)

// caddyBin is the Caddy binary built from ./cmd/caddy by TestMain.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vigil-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	args := []string{"build", "-o", caddyBin}
	if os.Getenv("VIGIL_CADDY_RACE") == "1" {
		// the gateway under test runs with the race detector, which sees
		// the real concurrency of requests, reloads and background work
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/caddy")...)
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: building the Caddy binary failed: %v\n%s\n", err, out)
		return 1
	}
	defer stopLocalRedis()
	return m.Run()
}

// ---------------------------------------------------------------------------
// Redis

var (
	redisOnce   sync.Once
	redisAddr   string
	redisReason string // why there is no Redis, when redisAddr is empty
	redisProc   *exec.Cmd
	redisDir    string
)

func redisPing(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// findRedis connects to VIGIL_REDIS_ADDR (default 127.0.0.1:6379) or starts
// a throwaway redis-server on a free port.
func findRedis() {
	addr := os.Getenv("VIGIL_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	firstErr := redisPing(addr)
	if firstErr == nil {
		redisAddr = addr
		return
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		redisReason = fmt.Sprintf("Redis at %s does not answer (%v) and redis-server is not on PATH", addr, firstErr)
		return
	}
	port := freePortOrZero()
	if port == 0 {
		redisReason = "no free port for redis-server"
		return
	}
	redisDir, _ = os.MkdirTemp("", "vigil-redis-")
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		redisReason = fmt.Sprintf("Redis at %s does not answer (%v) and starting redis-server failed: %v", addr, firstErr, err)
		return
	}
	redisProc = cmd
	local := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if redisPing(local) == nil {
			redisAddr = local
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	redisReason = fmt.Sprintf("redis-server started on %s but never answered: %s", local, out.String())
	stopLocalRedis()
}

func stopLocalRedis() {
	if redisProc != nil && redisProc.Process != nil {
		_ = redisProc.Process.Kill()
		_ = redisProc.Wait()
		redisProc = nil
	}
	if redisDir != "" {
		_ = os.RemoveAll(redisDir)
		redisDir = ""
	}
}

// needRedis returns the address of a usable Redis or skips the test (fails
// it under VIGIL_REQUIRE_REDIS=1).
func needRedis(t *testing.T) string {
	t.Helper()
	redisOnce.Do(findRedis)
	if redisAddr == "" {
		msg := "NO REDIS: " + redisReason + " — the Redis tests did NOT run"
		if os.Getenv("VIGIL_REQUIRE_REDIS") == "1" {
			t.Fatal(msg + " (VIGIL_REQUIRE_REDIS=1)")
		}
		t.Skip(msg + " (set VIGIL_REQUIRE_REDIS=1 to make this a failure)")
	}
	return redisAddr
}

// redisPrefix returns a fresh key prefix "vigiltest:<random>:" and deletes
// every key under it when the test ends. Call it before starting the
// gateways that use it, so that they are stopped (and have flushed their
// events) before the keys are deleted.
func redisPrefix(t *testing.T, addr string) string {
	t.Helper()
	prefix := "vigiltest:" + randomHex(6) + ":"
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, prefix+"*", 500).Result()
			if err != nil {
				t.Logf("cleaning Redis keys %s*: %v", prefix, err)
				return
			}
			if len(keys) > 0 {
				if err := c.Del(ctx, keys...).Err(); err != nil {
					t.Logf("deleting Redis keys %s*: %v", prefix, err)
				}
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	})
	return prefix
}

// redisKeys lists the keys under prefix.
func redisKeys(t *testing.T, addr, prefix string) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	var all []string
	var cursor uint64
	for {
		keys, next, err := c.Scan(context.Background(), cursor, prefix+"*", 500).Result()
		if err != nil {
			t.Fatalf("SCAN %s*: %v", prefix, err)
		}
		all = append(all, keys...)
		if cursor = next; cursor == 0 {
			return all
		}
	}
}

// ---------------------------------------------------------------------------
// Stores

// storeCase is one store a scenario runs against.
type storeCase struct {
	name   string
	global string // the `store …` line(s) of the global vigil option
	redis  string // Redis address, for the redis case
	prefix string
}

// memoryStore is the default single-instance store.
func memoryStore() storeCase { return storeCase{name: "memory", global: "store memory"} }

// redisStore returns a Redis store with a fresh prefix (cleaned at the end).
func redisStore(t *testing.T) storeCase {
	t.Helper()
	addr := needRedis(t)
	prefix := redisPrefix(t, addr)
	return storeCase{
		name:   "redis",
		global: fmt.Sprintf("store redis {\n\t\t\taddrs %s\n\t\t\tprefix %s\n\t\t}", addr, prefix),
		redis:  addr, prefix: prefix,
	}
}

// eachStore runs fn as parallel subtests "memory" and "redis".
func eachStore(t *testing.T, fn func(t *testing.T, s storeCase)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		fn(t, memoryStore())
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		fn(t, redisStore(t))
	})
}

// ---------------------------------------------------------------------------
// Upstream: the demo app

type loginAttempt struct {
	user string
	ok   bool
}

// upstream is the demo app (or another app) served on loopback by the
// test process.
type upstream struct {
	app    *demoapp.App
	srv    *httptest.Server
	hitsFn func() int64 // an app other than the demo's counts its own logins

	mu   sync.Mutex
	seen []loginAttempt
	// risk is the X-Vigil-Risk header of each login form that reached the
	// app ("" when absent), in order.
	risk []string
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{}
	u.app = demoapp.New(demoapp.Options{LoginHook: func(user string, ok bool) {
		u.mu.Lock()
		u.seen = append(u.seen, loginAttempt{user, ok})
		u.mu.Unlock()
	}})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/login" {
			u.mu.Lock()
			u.risk = append(u.risk, r.Header.Get("X-Vigil-Risk"))
			u.mu.Unlock()
		}
		u.app.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// lastRisk is the X-Vigil-Risk header the last login form reached the app
// with, and whether any login reached it.
func (u *upstream) lastRisk() (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.risk) == 0 {
		return "", false
	}
	return u.risk[len(u.risk)-1], true
}

// addr is host:port for reverse_proxy.
func (u *upstream) addr() string { return u.srv.Listener.Addr().String() }

// hits is how many login submissions reached the app.
func (u *upstream) hits() int64 {
	if u.hitsFn != nil {
		return u.hitsFn()
	}
	return u.app.Hits()
}

// attempts returns the credential checks the app made, in order.
func (u *upstream) attempts() []loginAttempt {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]loginAttempt(nil), u.seen...)
}

// ---------------------------------------------------------------------------
// Gateway: the real Caddy binary

// policy is the site's vigil block used by most tests.
const defaultPolicy = `login POST /login {
			user form:username
			success redirect_not /login
		}
		login POST /api/login {
			user json:user.name
			success status 200
		}
		lockout 3 within 1m for 2s max 8s
		block_ip 10 within 1m for 2s max 1m
		stuffing 4 within 1m`

// gatewayConfig is what a test chooses of the Caddyfile; the harness fills
// in the ports and the upstream.
type gatewayConfig struct {
	Global string // lines inside the global `vigil { }` option (store, allow, fail_mode)
	Policy string // lines inside the site's `vigil { }` handler; default defaultPolicy
	// Upstream is the reverse_proxy target; default: a new demo app.
	Upstream *upstream
	// Site is extra lines of the site block, before vigil (e.g. encode).
	Site string
}

type gateway struct {
	t        testing.TB
	name     string
	cfg      gatewayConfig
	up       *upstream
	dir      string
	file     string
	port     int
	adminPrt int
	base     string // http://127.0.0.1:port
	admin    string // 127.0.0.1:adminport
	client   *http.Client
	cmd      *exec.Cmd
	out      *syncBuffer
	done     chan struct{} // closed when the process has exited
	env      []string
}

// syncBuffer collects a process's output from two pipes at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePortOrZero() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freePortPair returns two different free ports. Two listens on port 0 in a
// row can be handed the same port once the first is closed, and Caddy then
// binds its admin endpoint and the site to one address (SO_REUSEPORT), so
// requests for the site reach the admin API.
func freePortPair(t testing.TB) (int, int) {
	t.Helper()
	for {
		a, b := redistest.FreePort(t), redistest.FreePort(t)
		if a != b {
			return a, b
		}
	}
}

// startGateway writes a Caddyfile and runs the real Caddy binary with it,
// returning once both the admin endpoint and the site answer. The process
// is stopped when the test ends; its output is logged if the test failed.
func startGateway(t testing.TB, cfg gatewayConfig) *gateway {
	t.Helper()
	return startNamedGateway(t, "gateway", cfg)
}

func startNamedGateway(t testing.TB, name string, cfg gatewayConfig) *gateway {
	t.Helper()
	if cfg.Upstream == nil {
		cfg.Upstream = newUpstream(t)
	}
	if cfg.Policy == "" {
		cfg.Policy = defaultPolicy
	}
	dir := t.TempDir()
	g := &gateway{
		t: t, name: name, cfg: cfg, up: cfg.Upstream, dir: dir,
		file: filepath.Join(dir, "Caddyfile"),
		client: &http.Client{
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 5 * time.Second},
		},
		env: append(os.Environ(),
			"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"XDG_DATA_HOME="+filepath.Join(dir, "data"),
			"HOME="+dir,
		),
	}
	// A port picked here may be taken by someone else before Caddy binds
	// it; then try again with new ones.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		g.port, g.adminPrt = freePortPair(t)
		g.base = fmt.Sprintf("http://127.0.0.1:%d", g.port)
		g.admin = fmt.Sprintf("127.0.0.1:%d", g.adminPrt)
		g.writeConfig(cfg)
		if lastErr = g.launch(); lastErr == nil {
			return g
		}
		if !strings.Contains(g.out.String(), "address already in use") {
			break
		}
	}
	t.Fatalf("%s did not start: %v\n--- caddy output ---\n%s", name, lastErr, g.output())
	return nil
}

// caddyfile renders the configuration for the gateway's ports.
func (g *gateway) caddyfile(cfg gatewayConfig) string {
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	vigil {
		%s
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	%s
	vigil {
		%s
	}
	reverse_proxy %s {
		header_up X-Vigil-User {http.vigil.user}
	}
}
`, g.admin, cfg.Global, g.port, cfg.Site, cfg.Policy, cfg.Upstream.addr())
}

func (g *gateway) writeConfig(cfg gatewayConfig) {
	g.t.Helper()
	if err := os.WriteFile(g.file, []byte(g.caddyfile(cfg)), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateway) output() string {
	if g.out == nil {
		return ""
	}
	return g.out.String()
}

func (g *gateway) launch() error {
	t := g.t
	g.out = &syncBuffer{}
	cmd := exec.Command(caddyBin, "run", "--config", g.file, "--adapter", "caddyfile")
	cmd.Dir = g.dir
	cmd.Env = g.env
	cmd.Stdout, cmd.Stderr = g.out, g.out
	if err := cmd.Start(); err != nil {
		return err
	}
	g.cmd = cmd
	g.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(g.done)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		select {
		case <-g.done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			t.Logf("%s: no exit 10s after SIGTERM, killing it", g.name)
			_ = cmd.Process.Kill()
			<-g.done
		}
	}
	t.Cleanup(func() {
		stop()
		g.client.CloseIdleConnections()
		if strings.Contains(g.output(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race in the gateway", g.name)
		}
		if t.Failed() {
			t.Logf("--- %s (admin %s, site %s) output ---\n%s", g.name, g.admin, g.base, g.output())
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	probe := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-g.done:
			return fmt.Errorf("caddy exited early (%v)", cmd.ProcessState)
		default:
		}
		if ok := probeOK(probe, "http://"+g.admin+"/config/") && probeOK(probe, g.base+"/healthz"); ok {
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return errors.New("admin endpoint and site not answering after 20s")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func probeOK(c *http.Client, u string) bool {
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// reload writes a new Caddyfile for the same ports and runs `caddy reload`.
func (g *gateway) reload(cfg gatewayConfig) {
	g.t.Helper()
	if cfg.Upstream == nil {
		cfg.Upstream = g.up
	}
	if cfg.Policy == "" {
		cfg.Policy = defaultPolicy
	}
	g.writeConfig(cfg)
	g.cfg = cfg
	stdout, stderr, err := g.caddy("reload", "--config", g.file, "--adapter", "caddyfile", "--address", g.admin)
	if err != nil {
		g.t.Fatalf("caddy reload: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	// the old server closes its idle keep-alive connections as it shuts
	// down; a POST on one of them would fail with EOF (clients do not
	// retry non-idempotent requests), so start afresh
	g.client.CloseIdleConnections()
}

// caddy runs a Caddy subcommand (with the gateway's environment).
func (g *gateway) caddy(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, args...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// vigilCLI runs `caddy vigil <args> --address <admin>`.
func (g *gateway) vigilCLI(args ...string) (stdout, stderr string, err error) {
	return g.caddy(append(append([]string{"vigil"}, args...), "--address", g.admin)...)
}

// ---------------------------------------------------------------------------
// HTTP helpers

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) String() string {
	b := r.Body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d (Retry-After %q, Location %q) %q", r.Status, r.Header.Get("Retry-After"), r.Header.Get("Location"), b)
}

// retryAfter parses Retry-After as seconds; -1 when absent or malformed.
func (r reply) retryAfter() int {
	v := r.Header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

func (g *gateway) do(method, path string, body io.Reader, header http.Header) reply {
	g.t.Helper()
	req, err := http.NewRequest(method, g.base+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (g *gateway) get(path string) reply {
	g.t.Helper()
	return g.do(http.MethodGet, path, nil, nil)
}

func formHeader() http.Header {
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
}

// login submits the HTML login form.
func (g *gateway) login(user, password string) reply {
	g.t.Helper()
	return g.loginWith(user, password, nil)
}

// loginWith submits the login form with extra request headers.
func (g *gateway) loginWith(user, password string, extra http.Header) reply {
	g.t.Helper()
	h := formHeader()
	for k, vs := range extra {
		h[k] = vs
	}
	body := url.Values{"username": {user}, "password": {password}}.Encode()
	return g.do(http.MethodPost, "/login", strings.NewReader(body), h)
}

// apiLogin submits the JSON login.
func (g *gateway) apiLogin(user, password string) reply {
	g.t.Helper()
	b, _ := json.Marshal(map[string]any{"user": map[string]any{"name": user}, "password": password})
	return g.do(http.MethodPost, "/api/login", bytes.NewReader(b), http.Header{"Content-Type": {"application/json"}})
}

// wantFailedLogin asserts the form login reached the app and failed there.
func wantFailedLogin(t *testing.T, r reply) {
	t.Helper()
	if r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Fatalf("want 302 to /login?error=1 (a failure the app answered), got %s", r)
	}
}

// wantSuccessLogin asserts the form login reached the app and succeeded.
func wantSuccessLogin(t *testing.T, r reply) {
	t.Helper()
	if r.Status != http.StatusFound || r.Header.Get("Location") != "/dashboard" {
		t.Fatalf("want 302 to /dashboard (a successful login), got %s", r)
	}
}

// wantRefused asserts a refusal with a Retry-After within [lo, hi] seconds.
func wantRefused(t *testing.T, r reply, status, lo, hi int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("want %d, got %s", status, r)
	}
	if ra := r.retryAfter(); ra < lo || ra > hi {
		t.Fatalf("want Retry-After in [%d, %d] seconds, got %q (%s)", lo, hi, r.Header.Get("Retry-After"), r)
	}
}

// ---------------------------------------------------------------------------
// Admin API helpers

// adminDo calls the admin endpoint.
func (g *gateway) adminDo(method, path string, body any) (int, []byte) {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+g.admin+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// decision is an entry of GET /vigil/decisions.
type decision struct {
	Kind    string    `json:"kind"`
	Target  string    `json:"target"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source"`
	Site    string    `json:"site"`
	Strike  int       `json:"strike"`
	Created time.Time `json:"created"`
	Until   time.Time `json:"until"`
}

func (g *gateway) decisions() []decision {
	g.t.Helper()
	status, body := g.adminDo(http.MethodGet, "/vigil/decisions", nil)
	if status != http.StatusOK {
		g.t.Fatalf("GET /vigil/decisions: %d %s", status, body)
	}
	var v struct {
		Decisions []decision `json:"decisions"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		g.t.Fatalf("GET /vigil/decisions: %v in %s", err, body)
	}
	return v.Decisions
}

// findDecision returns the active decision of a kind for a target.
func findDecision(ds []decision, kind, target string) (decision, bool) {
	for _, d := range ds {
		if d.Kind == kind && d.Target == target {
			return d, true
		}
	}
	return decision{}, false
}

// mustDecision fetches the active decision of a kind for a target.
func (g *gateway) mustDecision(kind, target string) decision {
	g.t.Helper()
	ds := g.decisions()
	d, ok := findDecision(ds, kind, target)
	if !ok {
		g.t.Fatalf("no active %s for %q in /vigil/decisions: %+v", kind, target, ds)
	}
	return d
}

// event is an entry of GET /vigil/events.
type event struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`
	Severity string         `json:"severity"`
	Site     string         `json:"site"`
	User     string         `json:"user"`
	IP       string         `json:"ip"`
	Country  string         `json:"country"`
	City     string         `json:"city"`
	ASN      uint           `json:"asn"`
	Details  map[string]any `json:"details"`
}

// events returns every event matching q, newest first, following cursors.
func (g *gateway) events(q url.Values) []event {
	g.t.Helper()
	var all []event
	cursor := ""
	for page := 0; page < 50; page++ {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		if cursor != "" {
			qq.Set("cursor", cursor)
		}
		status, body := g.adminDo(http.MethodGet, "/vigil/events?"+qq.Encode(), nil)
		if status != http.StatusOK {
			g.t.Fatalf("GET /vigil/events?%s: %d %s", qq.Encode(), status, body)
		}
		var v struct {
			Events []event `json:"events"`
			Next   string  `json:"next"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			g.t.Fatalf("GET /vigil/events: %v in %s", err, body)
		}
		all = append(all, v.Events...)
		if v.Next == "" {
			return all
		}
		cursor = v.Next
	}
	g.t.Fatal("GET /vigil/events: more than 50 pages")
	return nil
}

// waitEvents polls the events matching q until ok accepts them (the Redis
// event log is written asynchronously).
func (g *gateway) waitEvents(q url.Values, what string, ok func([]event) bool) []event {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := g.events(q)
		if ok(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("events %s: %s not seen within 5s; got:\n%s", q.Encode(), what, dumpEvents(evs))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func countType(evs []event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func ofType(evs []event, typ string) []event {
	var out []event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func dumpEvents(evs []event) string {
	var b strings.Builder
	for _, e := range evs {
		d, _ := json.Marshal(e.Details)
		fmt.Fprintf(&b, "  %s %-19s %-8s site=%s user=%q ip=%s %s\n", e.Time.Format("15:04:05.000"), e.Type, e.Severity, e.Site, e.User, e.IP, d)
	}
	return b.String()
}

// waitOut sleeps until a ban has expired. This is the one kind of fixed
// wait the suite allows: there is nothing to poll that would end it sooner.
func waitOut(until time.Time) {
	time.Sleep(time.Until(until) + 100*time.Millisecond)
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// ---------------------------------------------------------------------------
// Metrics

// scrape returns the text exposition of the admin endpoint's /metrics.
func (g *gateway) scrape() string {
	g.t.Helper()
	status, body := g.adminDo(http.MethodGet, "/metrics", nil)
	if status != http.StatusOK {
		g.t.Fatalf("GET /metrics: %d %s", status, body)
	}
	return string(body)
}

// metricValue finds the sample `name{labels}` (labels as Prometheus prints
// them, sorted by name, e.g. `kind="lock"`) in an exposition.
func metricValue(exposition, name, labels string) (float64, bool) {
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, want+" ") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, want)), 64)
		return v, err == nil
	}
	return 0, false
}

// waitMetric polls /metrics until the sample reaches at least min.
func (g *gateway) waitMetric(within time.Duration, name, labels string, min float64) {
	g.t.Helper()
	poll.Until(g.t, within, fmt.Sprintf("%s: %s{%s} >= %g", g.name, name, labels, min), func() (bool, string) {
		v, ok := metricValue(g.scrape(), name, labels)
		return ok && v >= min, fmt.Sprintf("%v (present: %v)", v, ok)
	})
}
