package integration

// The live dashboard (vigil_dashboard) in real headless Chromium, driven
// with chromedp, and the investigation API around it.
//
// Environment:
//
//	VIGIL_REQUIRE_TOOLS=1   fail, rather than skip, when Chromium is missing
//	VIGIL_CHROMIUM=<path>   the browser (default: chromium on PATH, /usr/bin/chromium)
//	VIGIL_SCREENSHOTS=<dir> where the screenshots go (default: a new temporary
//	                        directory, kept and logged; never the repository)

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vigilsec/vigil/internal/poll"
)

const (
	dashUser = "ops"
	dashPass = "correct horse battery staple"
)

// needChromium returns the browser's path, or skips loudly (fails under
// VIGIL_REQUIRE_TOOLS=1).
func needChromium(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("VIGIL_CHROMIUM"), "chromium", "/usr/bin/chromium", "chromium-browser"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "!!! chromium not installed (apt-get install -y chromium): dashboard browser test NOT RUN"
	if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (VIGIL_REQUIRE_TOOLS=1)")
	}
	t.Skip(msg + " (set VIGIL_REQUIRE_TOOLS=1 to make this a failure)")
	return ""
}

// dashboardSite mounts the dashboard behind basic_auth on /security/, and
// once more without any authentication on /open/ (which must refuse).
func dashboardSite(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(caddyBin, "hash-password", "--plaintext", dashPass).Output()
	if err != nil {
		t.Fatalf("caddy hash-password: %v", err)
	}
	return fmt.Sprintf(`handle /security/* {
		basic_auth {
			%s %s
		}
		vigil_dashboard
	}
	handle /open/* {
		vigil_dashboard
	}`, dashUser, strings.TrimSpace(string(out)))
}

func basicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(dashUser+":"+dashPass))
}

// screenshotDir is where this run's screenshots go.
var screenshotDir = sync.OnceValue(func() string {
	if d := os.Getenv("VIGIL_SCREENSHOTS"); d != "" {
		_ = os.MkdirAll(d, 0o755)
		return d
	}
	d, err := os.MkdirTemp("", "vigil-dashboard-screenshots-")
	if err != nil {
		return os.TempDir()
	}
	return d
})

// screenshot saves the page as a PNG and logs where.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(screenshotDir(), strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// browser records what the page does: every request's URL and every
// console error or uncaught exception.
type browser struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, e.Request.URL)
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		b.errors = append(b.errors, "exception: "+msg)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.errors = append(b.errors, "console.error: "+strings.Join(parts, " "))
		}
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError {
			b.errors = append(b.errors, "log: "+e.Entry.Text+" "+e.Entry.URL)
		}
	}
}

func (b *browser) snapshot() (requests, errors []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...), append([]string(nil), b.errors...)
}

func newBrowser(t *testing.T, path string) (context.Context, *browser) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-extensions", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{}
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// the first call starts the browser: no timeout on it (it would stop the browser)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enabling the log domain: %v", err)
	}
	return ctx, b
}

// TestDashboardInBrowser: the page loads cleanly and offline, shows a new
// event within 2 s, unblocks from its button, refuses a POST without the
// CSRF token, and is refused without the operator's auth.
func TestDashboardInBrowser(t *testing.T) {
	chromium := needChromium(t)
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory", Site: dashboardSite(t)})
	ctx, br := newBrowser(t, chromium)
	page := g.base + "/security/"
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": basicAuth()}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(timeout(t, ctx, 30*time.Second),
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS("#status.live")),
		chromedp.WaitVisible(chromedp.CSS("#decisions tbody tr")),
		chromedp.WaitVisible(chromedp.CSS("#chart-failed .uplot")),
	); err != nil {
		t.Fatalf("loading the dashboard: %v\n--- caddy ---\n%s", err, g.output())
	}

	t.Run("loads clean and local", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond) // late console errors
		reqs, errs := br.snapshot()
		if len(errs) > 0 {
			t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
		}
		for _, r := range reqs {
			u, err := url.Parse(r)
			if err != nil || (u.Scheme != "data" && u.Hostname() != "127.0.0.1") {
				t.Errorf("a request left the machine: %s", r)
			}
		}
		if len(reqs) < 5 {
			t.Errorf("only %d requests seen: %v", len(reqs), reqs)
		}
		screenshot(t, ctx, "loaded")
	})

	t.Run("new event live within 2s", func(t *testing.T) {
		start := time.Now()
		wantFailedLogin(t, g.login("mallory", "guess"))
		ok, err := chromedp.Run(ctx, chromedp.Poll[bool](
			`[...document.querySelectorAll('#feed tbody tr')].some(tr => tr.textContent.includes('mallory') && tr.textContent.includes('FAILED_LOGIN'))`,
			chromedp.WithPollingTimeout(2*time.Second), chromedp.WithPollingInterval(20*time.Millisecond)))
		screenshot(t, ctx, "live-event")
		if err != nil || !ok {
			t.Fatalf("the failed login did not appear within 2s: %v", err)
		}
		t.Logf("the event appeared after %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("unblock button", func(t *testing.T) {
		if status, body := g.adminDo(http.MethodPost, "/vigil/blocks", map[string]string{"ip": "203.0.113.9", "reason": "dashboard test"}); status != http.StatusCreated {
			t.Fatalf("POST /vigil/blocks: %d %s", status, body)
		}
		sel := `#decisions tbody tr[data-kind="block"][data-target="203.0.113.9"] button[data-action="unblock"]`
		if err := chromedp.Do(timeout(t, ctx, 10*time.Second), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("the block did not show: %v", err)
		}
		screenshot(t, ctx, "block-listed")
		if err := chromedp.Do(timeout(t, ctx, 10*time.Second), chromedp.Focus(chromedp.CSS(sel)), chromedp.KeyEvent("\r")); err != nil {
			t.Fatalf("pressing Unblock: %v", err)
		}
		poll.Until(t, 5*time.Second, "the block is lifted", func() (bool, string) {
			_, body := g.adminDo(http.MethodGet, "/vigil/blocks", nil)
			note, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('action-result').textContent`))
			return !strings.Contains(string(body), "203.0.113.9"), strings.TrimSpace(string(body)) + "; the page says: " + note
		})
		g.waitEvents(q("type", "ADMIN_ACTION"), "the unblock by ops", func(evs []event) bool {
			for _, e := range evs {
				if e.Details["action"] == "unblock" && e.User == dashUser {
					return true
				}
			}
			return false
		})
		_ = chromedp.Do(timeout(t, ctx, 5*time.Second), chromedp.WaitNotPresent(chromedp.CSS(sel)))
		screenshot(t, ctx, "unblocked")
	})

	t.Run("POST without CSRF token refused", func(t *testing.T) {
		if status, body := g.adminDo(http.MethodPost, "/vigil/blocks", map[string]string{"ip": "203.0.113.10"}); status != http.StatusCreated {
			t.Fatalf("POST /vigil/blocks: %d %s", status, body)
		}
		js := `fetch('api/action', {method: 'POST', headers: {'Content-Type': 'application/json'},
			body: JSON.stringify({action: 'unblock', target: '203.0.113.10'})}).then(r => r.status)`
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusForbidden {
			t.Fatalf("in-page POST without the token: %d, want 403", status)
		}
		// from another client: the right credentials, but no token, or a
		// token with a foreign Origin
		h := http.Header{"Authorization": {basicAuth()}, "Content-Type": {"application/json"}, "Origin": {g.base}}
		r := g.do(http.MethodPost, "/security/api/action", strings.NewReader(`{"action":"unblock","target":"203.0.113.10"}`), h)
		if r.Status != http.StatusForbidden {
			t.Fatalf("POST without token: %s", r)
		}
		h.Set("Origin", "http://evil.example")
		h.Set("X-CSRF-Token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		h.Set("Cookie", "vigil_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		if r := g.do(http.MethodPost, "/security/api/action", strings.NewReader(`{"action":"unblock","target":"203.0.113.10"}`), h); r.Status != http.StatusForbidden {
			t.Fatalf("cross-origin POST: %s", r)
		}
		if _, body := g.adminDo(http.MethodGet, "/vigil/blocks", nil); !strings.Contains(string(body), "203.0.113.10") {
			t.Fatalf("a refused POST lifted the block: %s", body)
		}
		screenshot(t, ctx, "csrf-refused")
	})

	t.Run("without auth 401", func(t *testing.T) {
		for _, p := range []string{"/security/", "/security/api/overview", "/security/stream", "/open/"} {
			if r := g.get(p); r.Status != http.StatusUnauthorized {
				t.Errorf("GET %s without credentials: %s, want 401", p, r)
			}
		}
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{}}); err != nil {
			t.Fatal(err)
		}
		// from the page itself, with the browser's auth header gone: the
		// mount without authentication in front refuses too
		for _, p := range []string{"/open/", "/security/api/overview"} {
			status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('`+p+`', {credentials: 'omit'}).then(r => r.status)`, chromedp.EvalAwaitPromise))
			if err != nil || status != http.StatusUnauthorized {
				t.Errorf("browser fetch %s without auth: %d %v, want 401", p, status, err)
			}
		}
		screenshot(t, ctx, "unauthorized")
	})
}

// TestEventStreamAcrossInstances: with two gateways on one Redis, an event
// made on A appears on B's /vigil/events/stream.
func TestEventStreamAcrossInstances(t *testing.T) {
	t.Parallel()
	s := redisStore(t)
	a := startNamedGateway(t, "gateway A", gatewayConfig{Global: s.global})
	b := startNamedGateway(t, "gateway B", gatewayConfig{Global: s.global})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.admin+"/vigil/events/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitLine(t, lines, "event: ready", 5*time.Second)
	start := time.Now()
	wantFailedLogin(t, a.login("zed-on-a", "x"))
	waitLine(t, lines, `"zed-on-a"`, 5*time.Second)
	t.Logf("A's event reached B's stream after %s", time.Since(start).Round(time.Millisecond))
}

func waitLine(t *testing.T, lines <-chan string, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("%q not on the stream within %s", want, within)
		}
	}
}

// timeout bounds a browser step (never the first call, which starts the browser).
func timeout(t *testing.T, ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	t.Cleanup(cancel)
	return ctx
}

// TestInvestigationAPIAndCLI: /vigil/users/{user}, /vigil/ips/{ip},
// /vigil/stats, the NDJSON/CSV export and `caddy vigil user|ip`.
func TestInvestigationAPIAndCLI(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory"})
	wantFailedLogin(t, g.login("alice", "nope"))
	wantSuccessLogin(t, g.login("alice", "wonderland"))
	wantFailedLogin(t, g.login("=cmd|' /C calc'!A0", "x"))
	g.waitEvents(q("user", "alice"), "alice's two logins", func(evs []event) bool { return len(evs) >= 2 })
	want := map[string][]string{
		"/vigil/users/alice":                            {`"user":"alice"`, `"SUCCESSFUL_LOGIN"`, `"FAILED_LOGIN"`, `"places"`, `"127.0.0.1"`},
		"/vigil/ips/127.0.0.1":                          {`"ip":"127.0.0.1"`, `"network":"127.0.0.0/24"`, `"key":"alice"`},
		"/vigil/stats?from=10m&step=1m":                 {`"failed_logins"`, `"step":"1m0s"`, `"key":"127.0.0.1"`},
		"/vigil/events?format=ndjson&type=FAILED_LOGIN": {`"type":"FAILED_LOGIN"`},
		"/vigil/events?format=csv":                      {"id,time,type,severity,site,user,ip", `'=cmd|`},
	}
	for path, parts := range want {
		status, body := g.adminDo(http.MethodGet, path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		for _, p := range parts {
			if !strings.Contains(string(body), p) {
				t.Errorf("GET %s: %q missing in %s", path, p, body)
			}
		}
	}
	if status, body := g.adminDo(http.MethodGet, "/vigil/events?format=ndjson&type=FAILED_LOGIN", nil); status == http.StatusOK && strings.Count(string(body), "\n") != 2 {
		t.Errorf("NDJSON export: want 2 lines, got %s", body)
	}
	if status, _ := g.adminDo(http.MethodGet, "/vigil/ips/not-an-ip", nil); status != http.StatusBadRequest {
		t.Errorf("GET /vigil/ips/not-an-ip: %d, want 400", status)
	}
	if status, _ := g.adminDo(http.MethodGet, "/vigil/stats?from=720h&step=1s", nil); status != http.StatusBadRequest {
		t.Errorf("unbounded stats: %d, want 400", status)
	}
	for _, args := range [][]string{{"user", "alice"}, {"ip", "127.0.0.1"}} {
		out, stderr, err := g.vigilCLI(args...)
		if err != nil || !strings.Contains(out, `"events"`) || !strings.Contains(out, "alice") {
			t.Errorf("caddy vigil %s: %v %s\n%s", strings.Join(args, " "), err, stderr, out)
		}
	}
}
