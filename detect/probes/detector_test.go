package probes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/store"
)

// prefixMatcher is a honeypot on paths with a prefix (case-insensitive).
type prefixMatcher struct{ prefix string }

func (m prefixMatcher) Match(r *http.Request) bool {
	return len(r.URL.Path) >= len(m.prefix) && strings.EqualFold(r.URL.Path[:len(m.prefix)], m.prefix)
}

// probeRig is a detector on the memory store with a recording actor and a
// synthetic clock.
type probeRig struct {
	t     *testing.T
	d     *Detector
	actor *corpusActor
	pool  *detect.Pool
	now   time.Time
	ip    netip.Addr
}

func newRig(t *testing.T, mod func(*Options)) *probeRig {
	r := &probeRig{t: t, actor: &corpusActor{blocked: map[string]time.Time{}}, pool: detect.NewPool(4, nil),
		now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), ip: netip.MustParseAddr("203.0.113.9")}
	opt := defaultOptions()
	opt.Buckets, opt.Actor, opt.Pool = store.NewMemoryBuckets(nil), r.actor, r.pool
	opt.Ban = detect.Ban{Failures: 1, Within: time.Second, Base: time.Hour}
	if mod != nil {
		mod(&opt)
	}
	r.d = New(opt)
	return r
}

// do sends one request answered with status (when it gets through) after
// gap, and returns the status the client saw: 403 when Vigil refused it or
// the address was blocked already.
func (r *probeRig) do(gap time.Duration, target string, status int, hdr ...string) int {
	r.t.Helper()
	r.now = r.now.Add(gap)
	if r.actor.isBlocked(detect.ClientNet(r.ip), r.now) {
		return http.StatusForbidden
	}
	hr := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		hr.Header.Set(hdr[i], hdr[i+1])
	}
	req := &detect.Request{HTTP: hr, IP: r.ip, Start: r.now}
	if ref := r.d.Check(req); ref != nil {
		return ref.Status
	}
	r.d.Observe(req, detect.Answer{Status: status, Time: r.now})
	r.pool.Wait()
	return status
}

func (r *probeRig) blocked() bool { return r.actor.isBlocked(detect.ClientNet(r.ip), r.now) }

// lastFinding is the newest finding.
func (r *probeRig) lastFinding() detect.Finding {
	r.t.Helper()
	if len(r.actor.findings) == 0 {
		r.t.Fatal("no finding")
	}
	return r.actor.findings[len(r.actor.findings)-1]
}

var crossSiteImage = []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}

// One request for a sensitive file is not a ban: the third distinct one of
// a burst is, refused before the upstream, with the bucket in the details.
func TestSensitiveFilesScore(t *testing.T) {
	r := newRig(t, nil)
	for i := 0; i < 5; i++ {
		if got := r.do(time.Second, "/.env", 404); got != 404 {
			t.Fatalf("the same file again (%d): %d", i, got)
		}
	}
	if r.do(time.Second, "/.git/config", 404) != 404 {
		t.Fatal("the second sensitive file was refused")
	}
	if got := r.do(time.Second, "/.aws/credentials", 200); got != http.StatusForbidden {
		t.Fatalf("the third distinct sensitive file: %d, want 403", got)
	}
	f := r.lastFinding()
	if f.Action != detect.BlockAddress || f.Details["kind"] != "sensitive_file" || f.Details["bucket"] != "sensitive" ||
		f.Details["evidence"] != "aws" || f.Details["capacity"] != 2.0 || f.Details["level"].(float64) <= 2 || f.Reason != "SYSTEM_INTRUSION: sensitive_file" {
		t.Fatalf("finding: %+v", f)
	}
}

// Dumps and archives count only when the site says they are not there.
func TestArchivesCountOnlyWhenMissing(t *testing.T) {
	r := newRig(t, nil)
	for _, p := range []string{"/blog/restore-from-backup.sql.gz", "/downloads/www.zip", "/downloads/backup.zip", "/downloads/schema.sql", "/debug.log"} {
		if got := r.do(time.Second, p, 200); got != 200 {
			t.Fatalf("download %s: %d", p, got)
		}
	}
	if r.blocked() {
		t.Fatal("downloads that exist banned the visitor")
	}
	for _, p := range []string{"/www.zip", "/backup.sql", "/db.sql.gz"} {
		r.do(time.Second, p, 404)
	}
	if !r.blocked() || r.lastFinding().Details["bucket"] != "sensitive" {
		t.Fatalf("three missing dumps: blocked %v, findings %+v", r.blocked(), r.actor.findings)
	}
}

// Searches about SQL and scripts are not attacks; a burst of payloads is.
func TestSignaturesScore(t *testing.T) {
	r := newRig(t, nil)
	for _, q := range []string{"how+to+use+union+select+in+mysql", "%27+or+1%3D1+meaning", "%3Cscript%3E+tag+tutorial", "union+select+vs+union+all+select"} {
		if got := r.do(20*time.Second, "/search?q="+q, 200); got != 200 {
			t.Fatalf("search %q: %d", q, got)
		}
	}
	if r.blocked() {
		t.Fatal("a reader of SQL tutorials was banned")
	}
	r.now = r.now.Add(time.Minute) // the searches' evidence has leaked away
	payloads := []string{"1+UNION+SELECT+1,2", "1+AND+SLEEP(5)", "1;WAITFOR+DELAY+'0:0:5'", "1+AND+extractvalue(1,1)", "-1+UNION+ALL+SELECT+@@version"}
	for i, p := range payloads {
		got := r.do(200*time.Millisecond, "/item?id="+p, 200)
		if want := 200; i == len(payloads)-1 {
			if got != http.StatusForbidden {
				t.Fatalf("the 5th payload of a burst: %d, want 403", got)
			}
		} else if got != want {
			t.Fatalf("payload %d: %d", i+1, got)
		}
	}
	if f := r.lastFinding(); f.Details["kind"] != "signature" || f.Details["bucket"] != "sqli" || f.Details["evidence"] != "sqli" {
		t.Fatalf("finding: %+v", f.Details)
	}
}

// A scanner's own User-Agent is the one request that bans.
func TestScannerAgentTriggers(t *testing.T) {
	r := newRig(t, nil)
	if got := r.do(0, "/", 200, "User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)"); got != http.StatusForbidden {
		t.Fatalf("sqlmap: %d", got)
	}
	if f := r.lastFinding(); f.Details["kind"] != "scanner_agent" || f.Details["evidence"] != "sqlmap" || f.Severity != 0 {
		t.Fatalf("finding: %+v", f)
	}
}

// No page can get its visitors banned: cross-site subresource loads are
// never evidence, and a cross-site honeypot hit is recorded, not blocked.
func TestCrossSiteLoadsNeverBan(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Honeypot = prefixMatcher{"/wp-admin"} })
	for i := 0; i < 30; i++ {
		for _, p := range []string{"/wp-admin/x.png", "/.env", "/.git/config", "/?id=1+UNION+SELECT+1", "/x" + strconv.Itoa(i), "/phpmyadmin/" + strconv.Itoa(i)} {
			if got := r.do(10*time.Millisecond, p, 404, crossSiteImage...); got == http.StatusForbidden {
				t.Fatalf("cross-site load of %s refused", p)
			}
		}
		// also as a fetch() and an iframe
		r.do(10*time.Millisecond, "/.env"+strconv.Itoa(i), 404, "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty")
		r.do(10*time.Millisecond, "/wp-admin/"+strconv.Itoa(i), 404, "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe")
	}
	if r.blocked() {
		t.Fatal("cross-site loads banned the visitor")
	}
	f := r.lastFinding()
	if f.Action != detect.NoAction || f.Details["cross_site"] != true || f.Details["kind"] != "honeypot" || f.Severity != detect.Low {
		t.Fatalf("cross-site honeypot finding: %+v", f)
	}
	// the same honeypot visited for real blocks at once, CRITICAL
	if got := r.do(time.Second, "/wp-admin/", 200, "Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"); got != http.StatusForbidden {
		t.Fatalf("honeypot: %d", got)
	}
	if f := r.lastFinding(); f.Severity != detect.Critical || f.Action != detect.BlockAddress {
		t.Fatalf("honeypot finding: %+v", f)
	}
}

// A cross-site navigation (a link followed) is evidence, but one link is
// not a ban.
func TestCrossSiteNavigationCounts(t *testing.T) {
	r := newRig(t, nil)
	nav := []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
	r.do(0, "/.env", 404, nav...)
	r.do(time.Second, "/.git/config", 404, nav...)
	if r.blocked() {
		t.Fatal("two links banned the visitor")
	}
	r.do(time.Second, "/.htpasswd", 403, nav...)
	if !r.blocked() {
		t.Fatal("three sensitive files by navigation: not banned")
	}
}

// The scan bucket: a burst of distinct 404s bans; assets weigh a quarter,
// so ".css" probing still does, slower; IDs count once; a visit with
// broken images does not.
func TestScanBucket(t *testing.T) {
	r := newRig(t, nil)
	for i := 0; i < 12; i++ {
		r.do(5*time.Second, "/api/items/"+strconv.Itoa(100+i), 404)
	}
	for _, p := range []string{"/favicon.ico", "/apple-touch-icon.png", "/apple-touch-icon-precomposed.png", "/robots.txt", "/img/a.png", "/img/b.png", "/img/c.jpg", "/old-page"} {
		r.do(100*time.Millisecond, p, 404)
	}
	if r.blocked() {
		t.Fatalf("an API client and a page with missing images were banned: %+v", r.lastFinding())
	}

	s := newRig(t, nil)
	for i := 0; i < 10; i++ {
		s.do(50*time.Millisecond, "/word"+strconv.Itoa(i)+"x", 404)
	}
	if !s.blocked() {
		t.Fatal("10 distinct 404s in a burst: not banned")
	}
	if f := s.lastFinding(); f.Details["kind"] != "scan" || f.Details["evidence"] != "10 distinct paths answered 4xx within 1m0s" || f.Details["capacity"] != 9.0 {
		t.Fatalf("scan finding: %+v", f.Details)
	}

	c := newRig(t, nil)
	n := 0
	for ; n < 60 && !c.blocked(); n++ {
		c.do(50*time.Millisecond, "/word"+strconv.Itoa(n)+".css", 404)
	}
	if !c.blocked() || n < 30 {
		t.Fatalf(".css-suffixed probing: banned %v after %d requests", c.blocked(), n)
	}
}

func TestProbePaths(t *testing.T) {
	cases := map[string]struct {
		paths []string
		kind  string
	}{
		"admin":     {[]string{"/admin/", "/phpmyadmin/", "/pma/", "/administrator/", "/manager/html"}, "admin_probe"},
		"cve":       {[]string{"/_ignition/execute-solution", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php"}, "cve_probe"},
		"wordpress": {[]string{"/wp-login.php", "/wp-admin/install.php", "/xmlrpc.php", "/wp-content/plugins/x/readme.txt"}, "wordpress_scan"},
	}
	for name, tc := range cases {
		r := newRig(t, func(o *Options) { o.ScanPaths = 0 })
		for i, p := range tc.paths {
			if r.blocked() {
				t.Fatalf("%s: banned after %d requests", name, i)
			}
			r.do(time.Second, p, 404)
		}
		if !r.blocked() || r.lastFinding().Details["kind"] != tc.kind {
			t.Fatalf("%s: blocked %v, findings %+v", name, r.blocked(), r.actor.findings)
		}
		// the same paths answered 200 (the site has them) are no evidence,
		// nor are they with the path probes off
		for status, probePaths := range map[int]bool{200: true, 404: false} {
			ok := newRig(t, func(o *Options) { o.ScanPaths, o.ProbePaths = 0, probePaths })
			for _, p := range tc.paths {
				ok.do(time.Second, p, status)
			}
			if ok.blocked() {
				t.Fatalf("%s answered %d (probe paths %v): banned", name, status, probePaths)
			}
		}
	}
}

func TestSensitivity(t *testing.T) {
	for s, want := range map[Sensitivity]int{Normal: 3, High: 2, Low: 6} {
		r := newRig(t, func(o *Options) { o.Sensitivity = s })
		n := 0
		for ; n < 10 && !r.blocked(); n++ {
			r.do(100*time.Millisecond, "/.env."+strconv.Itoa(n), 404)
		}
		if n != want {
			t.Errorf("sensitivity %d: banned after %d sensitive files, want %d", s, n, want)
		}
	}
	// never fewer than two pieces of evidence
	for c := 0.0; c < 10; c++ {
		if got := High.capacity(c); got < 1 {
			t.Errorf("high sensitivity of capacity %v: %v", c, got)
		}
	}
}

// An overflow empties the bucket: an allowlisted address (not blocked)
// needs fresh evidence for the next finding.
func TestOverflowEmptiesTheBucket(t *testing.T) {
	r := newRig(t, nil)
	r.d.opt.Actor = allowAll{r.actor}
	for i := 0; i < 6; i++ {
		r.do(100*time.Millisecond, "/.env."+strconv.Itoa(i), 404)
	}
	if len(r.actor.findings) != 2 {
		t.Fatalf("%d findings for 6 sensitive files, want 2", len(r.actor.findings))
	}
}

type allowAll struct{ a *corpusActor }

func (a allowAll) Act(ctx context.Context, f detect.Finding) detect.Outcome {
	a.a.mu.Lock()
	a.a.findings = append(a.a.findings, f)
	a.a.mu.Unlock()
	return detect.Outcome{}
}

func TestCrossSiteSubresource(t *testing.T) {
	for want, hs := range map[bool][][]string{
		true: {
			{"cross-site", "no-cors", "image"}, {"cross-site", "cors", "empty"}, {"Cross-Site", "navigate", "iframe"},
			{"cross-site", "no-cors", "script"}, {"cross-site", "", ""}, {"cross-site", "no-cors", "document"},
		},
		false: {
			{"", "", ""}, {"same-origin", "no-cors", "image"}, {"same-site", "no-cors", "image"}, {"none", "navigate", "document"},
			{"cross-site", "navigate", "document"},
		},
	} {
		for _, h := range hs {
			hdr := http.Header{}
			for i, k := range []string{"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest"} {
				if h[i] != "" {
					hdr.Set(k, h[i])
				}
			}
			if got := CrossSiteSubresource(hdr); got != want {
				t.Errorf("CrossSiteSubresource(%v) = %v", h, got)
			}
		}
	}
}

// The checks of the request itself allocate nothing unless they hit.
func TestCheckDoesNotAllocate(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Honeypot = prefixMatcher{"/trap"} })
	for _, target := range []string{"/products/42", "/search?q=hello+world%21&page=2", "/static/css/site.css"} {
		hr := httptest.NewRequest(http.MethodGet, target, nil)
		hr.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36")
		hr.Header.Set("Sec-Fetch-Site", "same-origin")
		req := &detect.Request{HTTP: hr, IP: r.ip, Start: r.now}
		if n := testing.AllocsPerRun(100, func() { r.d.Check(req) }); n != 0 {
			t.Errorf("Check(%s): %v allocations", target, n)
		}
		if n := testing.AllocsPerRun(100, func() { r.d.Observe(req, detect.Answer{Status: 200}) }); n != 0 {
			t.Errorf("Observe(%s, 200): %v allocations", target, n)
		}
	}
}

func BenchmarkDetectorCheckPlainPath(b *testing.B) {
	d := New(Options{SensitiveFiles: true, Signatures: true, ScannerAgents: true, ProbePaths: true, ScanPaths: 10, ScanWithin: time.Minute})
	hr := httptest.NewRequest(http.MethodGet, "/products/42", nil)
	req := &detect.Request{HTTP: hr, IP: netip.MustParseAddr("203.0.113.9")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.Check(req)
	}
}

func BenchmarkDetectorCheckTypical(b *testing.B) {
	d := New(Options{SensitiveFiles: true, Signatures: true, ScannerAgents: true, ProbePaths: true, ScanPaths: 10, ScanWithin: time.Minute})
	hr := httptest.NewRequest(http.MethodGet, "/search?q=hello+world%21&page=2", nil)
	hr.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36")
	req := &detect.Request{HTTP: hr, IP: netip.MustParseAddr("203.0.113.9")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.Check(req)
	}
}
