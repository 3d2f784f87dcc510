package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/probes"
)

// ProbesConfig tunes the built-in intrusion probe detectors. Each is on
// unless turned off; a nil ProbesConfig means all on with the defaults.
//
// The detectors score rather than trip: each pours its evidence into a
// leaky bucket of the client's address (an IPv6 /64), and only a bucket
// that overflows blocks the address (SYSTEM_INTRUSION, for intrusion_ban).
// One request never does, except a scanner's own User-Agent (and a
// honeypot); a request a browser loaded for another site's page
// (Sec-Fetch-Site: cross-site, not a navigation) is never evidence.
type ProbesConfig struct {
	// Off turns every built-in probe detector off (honeypots stay).
	Off bool `json:"off,omitempty"`
	// Scan is the directory-scan bucket: "n within d" overflows on the n-th
	// distinct path answered 400/403/404/405/410 in a burst and leaks n per
	// d, so a steady n per d never does. Static assets weigh a quarter of a
	// page; what browsers ask for on their own (robots.txt, favicon.ico,
	// apple-touch-icon*, /.well-known/) does not count; paths that differ
	// only in a numeric or hex ID count once. Default 10 within 1m.
	Scan *ScanPolicy `json:"scan,omitempty"`
	// SensitiveFiles counts requests for /.env, /.git/, keys and
	// wp-config.php (whatever the answer), and for dumps, archives and
	// editor leftovers answered 4xx; the 3rd distinct one in a burst
	// blocks. Default on.
	SensitiveFiles *bool `json:"sensitive_files,omitempty"`
	// Signatures counts path traversal, SQL injection, XSS and other
	// injection payloads in the path and query, one bucket per family
	// (traversal: the 3rd, SQLi and XSS: the 5th, others: the 2nd distinct
	// request of a burst blocks). Default on.
	Signatures *bool `json:"signatures,omitempty"`
	// ScannerAgents blocks the User-Agents of scanners (sqlmap, nikto,
	// nuclei, gobuster …) at the first request. Default on.
	ScannerAgents *bool `json:"scanner_agents,omitempty"`
	// ProbePaths counts requests answered 403/404 for admin interfaces
	// (/admin, /phpmyadmin, /wp-login …: the 5th blocks), known exploits'
	// endpoints and web shells (the 2nd blocks) and WordPress files
	// (/wp-*.php, xmlrpc.php: the 4th blocks). Default on.
	ProbePaths *bool `json:"probe_paths,omitempty"`
	// Sensitivity scales the evidence every bucket but scan needs: "low"
	// twice as much, "high" half as much (never fewer than two requests),
	// "normal" (the default) the figures above.
	Sensitivity string `json:"sensitivity,omitempty"`
}

// ScanPolicy is "<paths> within <dur>", or off.
type ScanPolicy struct {
	Paths  int            `json:"paths,omitempty"`
	Within caddy.Duration `json:"within,omitempty"`
	Off    bool           `json:"off,omitempty"`
}

// BanLength is "<for> [max <max>]": the first ban, doubled on each repeat
// up to max.
type BanLength struct {
	For caddy.Duration `json:"for"`
	Max caddy.Duration `json:"max,omitempty"`
}

var (
	defaultScan         = ScanPolicy{Paths: 10, Within: caddy.Duration(time.Minute)}
	defaultIntrusionBan = BanLength{For: caddy.Duration(time.Hour), Max: caddy.Duration(24 * time.Hour)}
)

var sensitivities = map[string]probes.Sensitivity{"": probes.Normal, "normal": probes.Normal, "low": probes.Low, "high": probes.High}

func (p *ProbesConfig) validate() error {
	if p == nil {
		return nil
	}
	if _, ok := sensitivities[p.Sensitivity]; !ok {
		return fmt.Errorf("probes sensitivity: want low, normal or high, not %q", p.Sensitivity)
	}
	if p.Scan == nil || p.Scan.Off {
		return nil
	}
	if p.Scan.Paths < 2 || p.Scan.Within <= 0 {
		return fmt.Errorf("probes scan: needs at least 2 paths and a positive window")
	}
	return nil
}

// options fills the probe detectors' switches, scan bucket and sensitivity.
func (p *ProbesConfig) options(o *probes.Options) {
	if p != nil && p.Off {
		return
	}
	on := func(b *bool) bool { return b == nil || *b }
	scan := defaultScan
	o.SensitiveFiles, o.Signatures, o.ScannerAgents, o.ProbePaths = true, true, true, true
	if p != nil {
		if p.Scan != nil {
			scan = *p.Scan
		}
		o.SensitiveFiles, o.Signatures, o.ScannerAgents = on(p.SensitiveFiles), on(p.Signatures), on(p.ScannerAgents)
		o.ProbePaths, o.Sensitivity = on(p.ProbePaths), sensitivities[p.Sensitivity]
	}
	if !scan.Off {
		o.ScanPaths, o.ScanWithin = scan.Paths, time.Duration(scan.Within)
	}
}

func (b *BanLength) ban() detect.Ban {
	l := defaultIntrusionBan
	if b != nil {
		l = *b
	}
	return detect.Ban{Failures: 1, Within: time.Second, Base: time.Duration(l.For), Max: time.Duration(l.Max)}
}

func (b *BanLength) validate() error {
	if b != nil && (b.For <= 0 || (b.Max != 0 && b.Max < b.For)) {
		return fmt.Errorf("intrusion_ban: want a positive duration and a max no shorter than it")
	}
	return nil
}

// compileHoneypots is the honeypot paths' matcher; nil without any.
func compileHoneypots(paths []string) (probes.Matcher, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	m := append(caddyhttp.MatchPath(nil), paths...)
	for _, p := range m {
		if len(p) == 0 || p[0] != '/' {
			return nil, fmt.Errorf("honeypot: path %q must start with /", p)
		}
	}
	pm, err := newPathMatcher(m)
	if err != nil {
		return nil, fmt.Errorf("honeypot: %w", err)
	}
	return pm, nil
}
