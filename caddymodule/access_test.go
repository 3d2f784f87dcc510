package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigilsec/vigil/detect"
)

// jwksServer serves a JWK Set on loopback whose keys the test rotates.
type jwksServer struct {
	mu   sync.Mutex
	keys []jose.JSONWebKey
	hits int
	srv  *httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.hits++
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) publish(keys ...jose.JSONWebKey) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

func TestJWKSRotation(t *testing.T) {
	c := newClock()
	c.t.Store(time.Now().UnixNano()) // the JWKS library keeps real time
	j := newJWKSServer(t)
	k1, k2 := mustRSA(t), sharedKeys.ec
	j.publish(jose.JSONWebKey{Key: &k1.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"})
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{JWKS: []JWKSSource{{URL: j.srv.URL}}})
	t1 := mint(t, jose.RS256, k1, "k1", claimsAt("alice", c.now()))
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(t1)); code != http.StatusOK || up.last() != "alice" {
		t.Fatalf("key 1: %d %q", code, up.last())
	}
	// the issuer rotates to an ECDSA key: a token naming the new kid makes
	// Vigil refetch the set
	j.publish(jose.JSONWebKey{Key: &k2.PublicKey, KeyID: "k2", Algorithm: "ES256", Use: "sig"})
	t2 := mint(t, jose.ES256, k2, "k2", claimsAt("bob", c.now()))
	if code, _ := call(t, h, up, "GET", "/x", "198.51.100.1", bearer(t2)); code != http.StatusOK || up.last() != "bob" {
		t.Fatalf("rotated key: %d %q", code, up.last())
	}
	// HS256 "signed" with the published public key, and an unknown kid,
	// identify nobody
	forged := mint(t, jose.HS256, []byte("k2-public-key-material-as-hmac-secret"), "k2", claimsAt("mallory", c.now()))
	unknown := mint(t, jose.RS256, mustRSA(t), "k9", claimsAt("mallory", c.now()))
	for _, tok := range []string{forged, unknown} {
		if call(t, h, up, "GET", "/x", "198.51.100.1", bearer(tok)); up.last() != "" {
			t.Fatalf("forged token identified %q", up.last())
		}
	}
	// an unknown kid refetches at most once a minute
	j.mu.Lock()
	hits := j.hits
	j.mu.Unlock()
	for i := 0; i < 5; i++ {
		call(t, h, up, "GET", "/x", "198.51.100.1", bearer(mint(t, jose.RS256, mustRSA(t), "k"+strconv.Itoa(10+i), claimsAt("m", c.now()))))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.hits > hits+1 {
		t.Fatalf("unknown kids fetched the JWKS %d times", j.hits-hits)
	}
}

func TestRestrict(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{}
	h := sessionHandler(t, app, c, &JWTConfig{}, func(h *Handler) {
		h.Restrict = []RestrictRule{{Path: "/admin/*", Roles: []string{"admin"}}, {Path: "/billing*", Roles: []string{"finance"}, Claim: "realm.groups"}}
		h.Violations = &WindowPolicy{Count: 3, Within: caddy.Duration(time.Minute)}
	})
	now := c.now()
	admin := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("alice", now, "roles", []string{"user", "admin"}))
	user := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", now, "roles", "user reader"))
	finance := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("carol", now, "realm", map[string]any{"groups": []string{"finance"}}))
	cases := []struct {
		path string
		hdr  http.Header
		want int
	}{
		{"/admin/users", bearer(admin), 200},
		{"/admin/users", bearer(user), 403},
		{"/admin/users", nil, 403},
		{"/ADMIN/users", bearer(user), 403},
		{"//admin/./users", bearer(user), 403},
		{"/public", bearer(user), 200},
		{"/billing/invoices", bearer(finance), 200},
		{"/billing/invoices", bearer(admin), 403},
	}
	for _, tc := range cases {
		if code, _ := call(t, h, up, "GET", tc.path, "198.51.100.7", tc.hdr); code != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, code, tc.want)
		}
	}
	h.pool.Wait()
	evs := eventsOf(t, app, detect.PermissionViolation)
	if len(evs) != 5 {
		t.Fatalf("%d PERMISSION_VIOLATION events, want 5", len(evs))
	}
	// violations are counted off the request path, in any order: the
	// address's third and later ones are HIGH
	sev := map[detect.Severity]int{}
	users := map[string]int{}
	for _, e := range evs {
		sev[e.Severity]++
		users[e.User]++
		if e.Details["source"] != "gateway" || e.Details["status"] != 403 {
			t.Fatalf("violation details: %+v", e.Details)
		}
	}
	if sev[detect.Medium] != 2 || sev[detect.High] != 3 || users["bob"] != 3 || users["alice"] != 1 || users[""] != 1 {
		t.Fatalf("severities %v, users %v", sev, users)
	}
}

func TestUpstreamRefusalsAreViolations(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &userApp{status: http.StatusForbidden}
	h := sessionHandler(t, app, c, &JWTConfig{}, func(h *Handler) { h.Probes = &ProbesConfig{Off: true} })
	tok := mint(t, jose.HS256, []byte(testSecret), "", claimsAt("bob", c.now()))
	for i := 0; i < 5; i++ {
		call(t, h, up, "GET", "/reports/"+strconv.Itoa(i), "198.51.100.8", bearer(tok))
		// one at a time, as spaced requests are: counted concurrently, the
		// user's and the address's counts could reach 5 in two events
		h.pool.Wait()
	}
	call(t, h, up, "GET", "/reports/x", "198.51.100.8", nil) // anonymous 403s are the app's business
	h.pool.Wait()
	evs := eventsOf(t, app, detect.PermissionViolation)
	high := 0
	for _, e := range evs {
		if e.User != "bob" || e.Details["source"] != "upstream" {
			t.Fatalf("violation %+v", e)
		}
		if e.Severity == detect.High {
			high++
		}
	}
	if len(evs) != 5 || high != 1 {
		t.Fatalf("%d violations, %d HIGH; want 5 and the 5th HIGH", len(evs), high)
	}
}

func TestHoneypotBlocksAtOnce(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &fakeApp{}
	h := testHandler(t, app, c)
	h.Honeypot = []string{"/wp-admin*", "/.hidden-trap"}
	h.IntrusionBan = &BanLength{For: caddy.Duration(time.Minute), Max: caddy.Duration(time.Hour)}
	if err := h.setup(app); err != nil {
		t.Fatal(err)
	}
	// a third-party page embedding the honeypot makes its visitors' browsers
	// load it: recorded, never blocked
	img := newRequest("GET", "/wp-admin/x.png", "", "203.0.113.66")
	img.Header.Set("Sec-Fetch-Site", "cross-site")
	img.Header.Set("Sec-Fetch-Mode", "no-cors")
	img.Header.Set("Sec-Fetch-Dest", "image")
	if code, _ := serve(t, h, up, img); code != http.StatusOK {
		t.Fatalf("cross-site image of the honeypot: %d, want it through", code)
	}
	evs := eventsOf(t, app, detect.SystemIntrusion)
	if len(evs) != 1 || evs[0].Severity != detect.Low || evs[0].Details["cross_site"] != true || evs[0].Details["kind"] != "honeypot" {
		t.Fatalf("cross-site honeypot hit: %+v", evs)
	}
	code, hdr := serve(t, h, up, newRequest("GET", "/WP-ADMIN/install.php", "", "203.0.113.66"))
	if code != http.StatusForbidden || hdr.Get("Retry-After") != "60" {
		t.Fatalf("honeypot hit: %d Retry-After %q", code, hdr.Get("Retry-After"))
	}
	if code, _ := serve(t, h, up, newRequest("GET", "/", "", "203.0.113.66")); code != http.StatusForbidden {
		t.Fatalf("after the hit: %d, want the address blocked", code)
	}
	if up.hits != 1 {
		t.Fatalf("the upstream saw %d requests, want only the cross-site image", up.hits)
	}
	evs = eventsOf(t, app, detect.SystemIntrusion)
	var hit *detect.Event
	for i := range evs {
		if evs[i].Details["cross_site"] == nil {
			hit = &evs[i]
		}
	}
	if len(evs) != 2 || hit == nil || hit.Severity != detect.Critical || hit.Details["kind"] != "honeypot" {
		t.Fatalf("SYSTEM_INTRUSION: %+v", evs)
	}
	// allowlisted addresses are recorded, not blocked
	app2 := testApp(t, "10.0.0.0/8")
	h2 := testHandler(t, app2, c)
	h2.Honeypot = []string{"/wp-admin*"}
	_ = h2.setup(app2)
	if code, _ := serve(t, h2, up, newRequest("GET", "/wp-admin", "", "10.1.2.3")); code != http.StatusOK {
		t.Fatalf("allowlisted honeypot hit: %d", code)
	}
}

// TestProbeDetectors: probes score, they do not trip. One ambiguous request
// (a search about SQL, a sensitive-looking download that exists, one .env)
// passes; a scanner's series of them is refused before the upstream and
// recorded as one HIGH SYSTEM_INTRUSION saying which bucket overflowed. A
// scanner's own User-Agent is refused at once. Each can be turned off.
func TestProbeDetectors(t *testing.T) {
	c := newClock()
	for name, tc := range map[string]struct {
		targets        []string
		ua             string
		kind, evidence string
	}{
		"sensitive file": {[]string{"/.git/config", "/.env", "/.aws/credentials"}, "", "sensitive_file", "aws"},
		"signature": {[]string{"/item?id=1+UNION+SELECT+password+FROM+users", "/item?id=1+AND+SLEEP(5)", "/item?id=1;WAITFOR+DELAY+'0:0:5'",
			"/item?id=extractvalue(1,concat(0x7e,version()))", "/item?id=-1+UNION+ALL+SELECT+@@version"}, "", "signature", "sqli"},
		"scanner agent": {[]string{"/"}, "sqlmap/1.7.2#stable", "scanner_agent", "sqlmap"},
	} {
		app, up := testApp(t), &fakeApp{}
		h := testHandler(t, app, c)
		last := len(tc.targets) - 1
		for i, target := range tc.targets {
			code, _ := serve(t, h, up, withUA(newRequest("GET", target, "", "203.0.113.70"), tc.ua))
			if i < last && code != http.StatusOK {
				t.Errorf("%s: request %d answered %d; one piece of evidence must not ban", name, i+1, code)
			}
			if i == last && (code != http.StatusForbidden || up.hits != last) {
				t.Errorf("%s: request %d answered %d (upstream hits %d), want 403 before the upstream", name, i+1, code, up.hits)
			}
		}
		evs := eventsOf(t, app, detect.SystemIntrusion)
		if len(evs) != 1 || evs[0].Severity != detect.High || evs[0].Details["kind"] != tc.kind || evs[0].Details["evidence"] != tc.evidence {
			t.Errorf("%s: events %+v", name, evs)
		} else if _, ok := evs[0].Details["bucket"].(string); !ok || evs[0].Details["level"] == nil || evs[0].Details["capacity"] == nil {
			t.Errorf("%s: the event does not say which bucket overflowed: %+v", name, evs[0].Details)
		}
		if code, _ := serve(t, h, up, newRequest("GET", "/", "", "203.0.113.70")); code != http.StatusForbidden {
			t.Errorf("%s: the address is not blocked (%d)", name, code)
		}
		// each can be turned off
		off := testHandler(t, app, c)
		off.Probes = &ProbesConfig{Off: true}
		_ = off.setup(app)
		for _, target := range tc.targets {
			if code, _ := serve(t, off, up, withUA(newRequest("GET", target, "", "203.0.113.99"), tc.ua)); code != http.StatusOK {
				t.Errorf("%s with probes off: %d", name, code)
			}
		}
	}
	// what the review found banned with one request now passes
	app, up := testApp(t), &fakeApp{}
	h := testHandler(t, app, c)
	for _, target := range []string{"/search?q=how+to+use+union+select+in+mysql", "/search?q=%27+or+1%3D1+meaning",
		"/search?q=%3Cscript%3E+tag+tutorial", "/blog/restore-from-backup.sql.gz", "/downloads/www.zip"} {
		if code, _ := serve(t, h, up, newRequest("GET", target, "", "198.51.100.71")); code != http.StatusOK {
			t.Errorf("GET %s: %d", target, code)
		}
		c.advance(10 * time.Second)
	}
	h.pool.Wait()
	if evs := eventsOf(t, app, detect.SystemIntrusion); len(evs) != 0 {
		t.Errorf("ordinary requests recorded as intrusions: %+v", evs)
	}
}

func TestDirectoryScanBlocked(t *testing.T) {
	c := newClock()
	app := testApp(t)
	h := testHandler(t, app, c)
	h.Probes = &ProbesConfig{Scan: &ScanPolicy{Paths: 5, Within: caddy.Duration(time.Minute)}}
	_ = h.setup(app)
	notFound := &userApp{status: http.StatusNotFound}
	// a visitor with a few broken links and missing images is not a scanner
	for _, p := range []string{"/old-page", "/img/a.png", "/img/b.png", "/favicon.ico", "/old-page", "/missing", "/js/x.js", "/gone"} {
		call(t, h, notFound, "GET", p, "198.51.100.20", nil)
	}
	// nor is an API client whose records are gone
	for i := 0; i < 12; i++ {
		call(t, h, notFound, "GET", "/api/items/"+strconv.Itoa(100+i), "198.51.100.21", nil)
	}
	h.pool.Wait()
	for _, ip := range []string{"198.51.100.20", "198.51.100.21"} {
		if code, _ := call(t, h, &userApp{}, "GET", "/", ip, nil); code == http.StatusForbidden {
			t.Fatalf("a normal client (%s) was blocked", ip)
		}
	}
	for _, w := range []string{"backup", "old", "test", "dev", "staging"} {
		call(t, h, notFound, "GET", "/"+w+"/", "203.0.113.80", nil)
		h.pool.Wait()
	}
	if code, _ := call(t, h, notFound, "GET", "/", "203.0.113.80", nil); code != http.StatusForbidden {
		t.Fatalf("after 5 distinct 404s: %d, want the scanner blocked", code)
	}
	evs := eventsOf(t, app, detect.SystemIntrusion)
	if len(evs) != 1 || evs[0].Details["kind"] != "scan" || evs[0].Details["bucket"] != "scan" ||
		evs[0].Details["evidence"] != "5 distinct paths answered 4xx within 1m0s" || evs[0].Details["capacity"] != 4.0 {
		t.Fatalf("events: %+v", evs)
	}
}

// TestProbeBucketsLeak: evidence leaks away; a slow trickle of probes
// never bans, the same probes in a burst do.
func TestProbeBucketsLeak(t *testing.T) {
	c := newClock()
	app, up := testApp(t), &fakeApp{}
	h := testHandler(t, app, c)
	files := []string{"/.env", "/.git/config", "/.htpasswd", "/.aws/credentials", "/.ssh/id_rsa", "/.DS_Store"}
	for _, f := range files {
		if code, _ := serve(t, h, up, newRequest("GET", f, "", "198.51.100.40")); code != http.StatusOK {
			t.Fatalf("a sensitive file a minute: %s answered %d", f, code)
		}
		c.advance(time.Minute)
	}
	for i, f := range files[:3] {
		code, _ := serve(t, h, up, newRequest("GET", f, "", "198.51.100.41"))
		if want := map[bool]int{true: http.StatusForbidden, false: http.StatusOK}[i == 2]; code != want {
			t.Fatalf("burst, file %d: %d, want %d", i+1, code, want)
		}
	}
}

func withUA(r *http.Request, ua string) *http.Request {
	r.Header.Set("User-Agent", ua)
	return r
}

// TestProbeOptionErrors: the probe options added with the buckets are
// refused with a message naming the problem and the line.
func TestProbeOptionErrors(t *testing.T) {
	for name, tc := range map[string]struct{ site, want string }{
		"sensitivity value": {"vigil {\n\tprobes {\n\t\tsensitivity paranoid\n\t}\n}", `probes sensitivity: want low, normal or high, not "paranoid"`},
		"sensitivity args":  {"vigil {\n\tprobes {\n\t\tsensitivity low high\n\t}\n}", "wrong argument count"},
		"probe_paths":       {"vigil {\n\tprobes {\n\t\tprobe_paths sometimes\n\t}\n}", `probe_paths: "sometimes" is not on or off`},
	} {
		t.Run(name, func(t *testing.T) { wantAdaptError(t, ":8080 {\n"+tc.site+"\n}\n", tc.want) })
	}
	// JSON configs are checked too
	if err := (&ProbesConfig{Sensitivity: "extreme"}).validate(); err == nil {
		t.Fatal("a JSON sensitivity of extreme was accepted")
	}
}

// TestRequireStillScoresProbes: with require, requests without a valid
// session are still checked for probes before the 401: each piece of
// evidence is poured (the first ones answered 401, as any anonymous
// request), and the request that overflows a bucket is refused 403, one
// SYSTEM_INTRUSION recorded and the address blocked even for a valid
// session. (TestRequireStillDetectsProbes covers the single-request cases
// that still ban at once: a honeypot and a scanner's User-Agent.)
func TestRequireStillScoresProbes(t *testing.T) {
	c := newClock()
	for name, tc := range map[string]struct {
		targets []string
		hdr     http.Header
	}{
		"sensitive files": {[]string{"/.env", "/.git/config", "/.aws/credentials"}, nil},
		"signatures": {[]string{"/item?id=1+UNION+SELECT+password+FROM+users", "/item?id=1+AND+SLEEP(5)", "/item?id=1;WAITFOR+DELAY+'0:0:5'",
			"/item?id=extractvalue(1,concat(0x7e,version()))", "/item?id=-1+UNION+ALL+SELECT+@@version"}, bearer("garbage")},
	} {
		app, up := testApp(t), &userApp{}
		h := sessionHandler(t, app, c, &JWTConfig{Require: true})
		for i, target := range tc.targets {
			code, _ := call(t, h, up, "GET", target, "203.0.113.71", tc.hdr)
			want := http.StatusUnauthorized
			if i == len(tc.targets)-1 {
				want = http.StatusForbidden
			}
			if code != want {
				t.Errorf("%s: request %d answered %d, want %d", name, i+1, code, want)
			}
		}
		if evs := eventsOf(t, app, detect.SystemIntrusion); len(evs) != 1 {
			t.Errorf("%s: %d SYSTEM_INTRUSION events", name, len(evs))
		}
		if code, _ := call(t, h, up, "GET", "/", "203.0.113.71", bearer(mint(t, jose.HS256, []byte(testSecret), "", claimsAt("carol", c.now())))); code != http.StatusForbidden {
			t.Errorf("%s: the address is not blocked (%d)", name, code)
		}
	}
}
