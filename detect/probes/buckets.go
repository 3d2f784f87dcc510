package probes

import (
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Probes score, they do not trip. Each detector pours its evidence into a
// per-address (per ClientNet: an IPv6 /64) leaky bucket of its own, as
// CrowdSec's HTTP scenarios do, and only an overflowing bucket is a
// SYSTEM_INTRUSION that bans. A bucket of capacity c overflows on the
// (c+1)-th distinct piece of evidence of a burst; it leaks one unit per
// Leak, so a trickle slower than that never overflows it.
//
// The defaults below take CrowdSec's public scenarios as a reference
// (their capacities and leak speeds for the same families) and lean to
// slower leaks where Vigil sees only what no visitor's browser sends, so
// that scanners pacing themselves a little are still caught:
//
//	bucket     evidence (distinct per path, or path+query)       capacity  leak   trips on (burst)
//	agent      a scanner's own User-Agent                         0         -      the 1st request
//	sensitive  .git/, .env, keys, wp-config* (any answer);        2         20s    the 3rd file
//	           dumps, archives, leftovers (answered 4xx)
//	traversal  ../ in the path, ../../ or /etc/passwd anywhere    2         10s    the 3rd request
//	sqli, xss  SQL injection / XSS payloads in path or query      4         5s     the 5th request
//	injection  ${jndi:, php://, shellshock, commands, NUL         1         30s    the 2nd request
//	cve        known exploits' endpoints, web shells (403/404)    1         30s    the 2nd path
//	wordpress  /wp-*.php, xmlrpc.php, plugin readmes (403/404)    3         10s    the 4th path
//	admin      /admin, /phpmyadmin, /wp-admin … (403/404)         4         10s    the 5th path
//	scan       any 400/403/404/405/410; assets weigh 1/4          n-1       d/n    the n-th path
//	           ("scan n within d", default 10 within 1m)
//
// A scanner's own User-Agent is the one trigger: nothing but the tool sends
// it, and a third-party page cannot make a visitor's browser send it. The
// honeypot is not a bucket: a hit bans at once.

// bucketID indexes the scenarios without a map lookup.
type bucketID uint8

const (
	bAgent bucketID = iota
	bSensitive
	bTraversal
	bSQLi
	bXSS
	bInjection
	bExploit
	bWordPress
	bAdmin
	bScan
	nBuckets
)

// scenario is one bucket and the finding kind its overflow reports.
type scenario struct {
	kind   string
	bucket detect.Bucket
}

var defaultScenarios = [nBuckets]scenario{
	bAgent:     {"scanner_agent", detect.Bucket{Kind: "agent", Capacity: 0, Leak: time.Minute}},
	bSensitive: {"sensitive_file", detect.Bucket{Kind: "sensitive", Capacity: 2, Leak: 20 * time.Second}},
	bTraversal: {"signature", detect.Bucket{Kind: "traversal", Capacity: 2, Leak: 10 * time.Second}},
	bSQLi:      {"signature", detect.Bucket{Kind: "sqli", Capacity: 4, Leak: 5 * time.Second}},
	bXSS:       {"signature", detect.Bucket{Kind: "xss", Capacity: 4, Leak: 5 * time.Second}},
	bInjection: {"signature", detect.Bucket{Kind: "injection", Capacity: 1, Leak: 30 * time.Second}},
	bExploit:   {"cve_probe", detect.Bucket{Kind: "cve", Capacity: 1, Leak: 30 * time.Second}},
	bWordPress: {"wordpress_scan", detect.Bucket{Kind: "wordpress", Capacity: 3, Leak: 10 * time.Second}},
	bAdmin:     {"admin_probe", detect.Bucket{Kind: "admin", Capacity: 4, Leak: 10 * time.Second}},
	bScan:      {"scan", detect.Bucket{Kind: "scan"}},
}

// Sensitivity scales how much evidence the built-in buckets (all but the
// scan bucket, which has its own setting, and the agent trigger) need.
type Sensitivity int

const (
	// Normal is the table above.
	Normal Sensitivity = iota
	// Low needs twice the evidence: for sites whose own users trip the
	// detectors (a security course full of payload examples).
	Low
	// High needs half of it, never less than two pieces of evidence.
	High
)

// capacity scales a capacity c (c+1 drops overflow it) to the sensitivity.
func (s Sensitivity) capacity(c float64) float64 {
	switch s {
	case Low:
		return 2*c + 1
	case High:
		return max(1, math.Ceil((c+1)/2)-1)
	}
	return c
}

// scenarios is the table for a detector's options.
func scenarios(o *Options) [nBuckets]scenario {
	t := defaultScenarios
	for i := range t {
		if b := &t[i].bucket; bucketID(i) != bAgent && bucketID(i) != bScan {
			b.Capacity = o.Sensitivity.capacity(b.Capacity)
		}
	}
	// "scan n within d": the n-th distinct path of a burst overflows, and
	// n paths per d leak away, so a steady n per d never does
	if o.ScanPaths > 0 && o.ScanWithin > 0 {
		t[bScan].bucket.Capacity = float64(o.ScanPaths - 1)
		t[bScan].bucket.Leak = o.ScanWithin / time.Duration(o.ScanPaths)
	}
	return t
}

// signatureBucket is the bucket of a signature family.
func signatureBucket(family string) bucketID {
	switch family {
	case "traversal":
		return bTraversal
	case "sqli":
		return bSQLi
	case "xss":
		return bXSS
	}
	return bInjection
}

// CrossSiteSubresource reports whether a browser sent the request because
// another site's page told it to, without the visitor choosing to come
// here: Sec-Fetch-Site cross-site, and not a top-level navigation (an
// image, script, style, font, iframe, or fetch() of another site's page).
// Any page can make its visitors' browsers load
// <img src=https://yoursite/wp-admin/x.png>; such loads are never evidence
// against the visitor. A cross-site navigation (a link followed) still
// counts: a page can send its visitor to one URL, not to a scan.
func CrossSiteSubresource(h http.Header) bool {
	if !strings.EqualFold(h.Get("Sec-Fetch-Site"), "cross-site") {
		return false
	}
	return strings.EqualFold(h.Get("Sec-Fetch-Mode"), "no-cors") || !strings.EqualFold(h.Get("Sec-Fetch-Dest"), "document")
}
