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
type ProbesConfig struct {
	// Off turns every built-in probe detector off (honeypots stay).
	Off bool `json:"off,omitempty"`
	// Scan is the directory-scan threshold: distinct paths answered
	// 400/403/404/405/410 for one address inside the window (static assets
	// and /.well-known/ ignored). Default 10 within 1m.
	Scan *ScanPolicy `json:"scan,omitempty"`
	// SensitiveFiles flags requests for /.env, /.git/, backups,
	// wp-config.php and the like. Default on.
	SensitiveFiles *bool `json:"sensitive_files,omitempty"`
	// Signatures flags path traversal, SQL injection and XSS probes in the
	// path and query. Default on.
	Signatures *bool `json:"signatures,omitempty"`
	// ScannerAgents flags the User-Agents of scanners (sqlmap, nikto,
	// nuclei, gobuster …). Default on.
	ScannerAgents *bool `json:"scanner_agents,omitempty"`
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

func (p *ProbesConfig) validate() error {
	if p == nil || p.Scan == nil || p.Scan.Off {
		return nil
	}
	if p.Scan.Paths < 2 || p.Scan.Within <= 0 {
		return fmt.Errorf("probes scan: needs at least 2 paths and a positive window")
	}
	return nil
}

// options fills the probe detectors' switches and scan threshold.
func (p *ProbesConfig) options(o *probes.Options) {
	if p != nil && p.Off {
		return
	}
	on := func(b *bool) bool { return b == nil || *b }
	scan := defaultScan
	o.SensitiveFiles, o.Signatures, o.ScannerAgents = true, true, true
	if p != nil {
		if p.Scan != nil {
			scan = *p.Scan
		}
		o.SensitiveFiles, o.Signatures, o.ScannerAgents = on(p.SensitiveFiles), on(p.Signatures), on(p.ScannerAgents)
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
