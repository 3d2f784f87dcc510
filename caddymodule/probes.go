package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
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

// probeSettings is the runtime form of ProbesConfig.
type probeSettings struct {
	scan                         bool
	scanPaths                    int
	scanWithin                   time.Duration
	sensitive, signatures, agent bool
}

func (p *ProbesConfig) validate() error {
	if p == nil || p.Scan == nil || p.Scan.Off {
		return nil
	}
	if p.Scan.Paths < 2 || p.Scan.Within <= 0 {
		return fmt.Errorf("probes scan: needs at least 2 paths and a positive window")
	}
	return nil
}

func (p *ProbesConfig) settings() probeSettings {
	if p != nil && p.Off {
		return probeSettings{}
	}
	on := func(b *bool) bool { return b == nil || *b }
	scan := defaultScan
	s := probeSettings{sensitive: true, signatures: true, agent: true}
	if p != nil {
		if p.Scan != nil {
			scan = *p.Scan
		}
		s.sensitive, s.signatures, s.agent = on(p.SensitiveFiles), on(p.Signatures), on(p.ScannerAgents)
	}
	s.scan, s.scanPaths, s.scanWithin = !scan.Off, scan.Paths, time.Duration(scan.Within)
	return s
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

func compileHoneypots(paths []string) (caddyhttp.MatchPath, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	m := append(caddyhttp.MatchPath(nil), paths...)
	for _, p := range m {
		if len(p) == 0 || p[0] != '/' {
			return nil, fmt.Errorf("honeypot: path %q must start with /", p)
		}
	}
	if err := m.Provision(caddy.Context{}); err != nil {
		return nil, fmt.Errorf("honeypot: %w", err)
	}
	return m, nil
}

// probeRequest checks the request itself: a honeypot path, a sensitive
// file, a probe signature, a scanner's User-Agent. These are string checks
// only; the store is not touched unless one of them hits.
func (h *Handler) probeRequest(r *http.Request) (kind, evidence string, hit bool) {
	if h.honeypot != nil && h.honeypot.Match(r) {
		return "honeypot", "honeypot", true
	}
	p := &h.probes
	if p.sensitive {
		if ev, ok := detect.SensitiveFile(r.URL.Path); ok {
			return "sensitive_file", ev, true
		}
	}
	if p.signatures {
		if ev, ok := detect.ProbeSignature(r.URL.Path, r.URL.RawQuery); ok {
			return "signature", ev, true
		}
	}
	if p.agent {
		if ev, ok := h.agents.Check(r.Header.Get("User-Agent")); ok {
			return "scanner_agent", ev, true
		}
	}
	return "", "", false
}

// scanned reports whether an answer counts towards a directory scan.
func (h *Handler) scanned(status int, path string) bool {
	switch status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone:
		return h.probes.scan && !detect.StaticAsset(path)
	}
	return false
}

// countProbe adds a 4xx path to the address's scan window (off the request
// path) and treats a full window as an intrusion.
func (h *Handler) countProbe(ctx context.Context, f reqFacts, now time.Time) {
	if !f.ip.IsValid() {
		return
	}
	windows := h.app.store().Windows
	n, err := windows.Add(ctx, detect.ProbePaths, f.ipKey(), pathMember(f.path), h.probes.scanWithin, now)
	if err != nil {
		h.logger.Debug("counting a 4xx path", zap.Error(err))
		return
	}
	if n < h.probes.scanPaths {
		return
	}
	h.intrusion(ctx, f, "scan", fmt.Sprintf("%d distinct paths answered 4xx within %s", n, h.probes.scanWithin), now)
	// the next finding must be earned with a fresh scan
	_ = windows.Forget(ctx, detect.ProbePaths, f.ipKey())
}

// intrusion records SYSTEM_INTRUSION (HIGH; CRITICAL for a honeypot or a
// repeat offender) and blocks the address per intrusion_ban, unless it is
// allowlisted or the site only monitors. It returns the block, if one is in
// force now.
func (h *Handler) intrusion(ctx context.Context, f reqFacts, kind, evidence string, now time.Time) (respond.Decision, bool) {
	ev := f.event(detect.SystemIntrusion, now)
	ev.Details["kind"] = kind
	ev.Details["evidence"] = evidence
	if kind == "honeypot" {
		ev.Severity = detect.Critical
	}
	// counted with its event: a concurrent request that finds the block
	// already made is the same intrusion
	record := func() {
		intrusionsTotal.WithLabelValues(kind).Inc()
		h.app.Record(ev)
	}
	defer h.terminateSessions(ctx, detect.SystemIntrusion, f.user, f.site, f.ip, now)
	switch {
	case !f.ip.IsValid():
		record()
		return respond.Decision{}, false
	case h.app.allowed(f.ip):
		ev.Details["allowlisted"] = true
		record()
		return respond.Decision{}, false
	case h.MonitorOnly:
		ev.Details["monitor_only"] = true
		record()
		return respond.Decision{}, false
	}
	ban := h.intrusionBan
	d := respond.Decision{Kind: respond.Block, Target: clientNet(f.ip), Reason: "SYSTEM_INTRUSION: " + kind, Source: "auto", Site: f.site}
	d, fresh, err := h.app.store().Decisions.Impose(ctx, d, ban.Base, ban.Max, now)
	if err != nil {
		h.logger.Error("blocking an intruder", zap.Error(err))
		record()
		return respond.Decision{}, false
	}
	if fresh {
		ev.Details["strike"] = d.Strike
		ev.Details["until"] = d.Until.Format(time.RFC3339)
		ev.Details["duration"] = d.Until.Sub(d.Created).String()
		if d.Strike > 1 {
			ev.Severity = detect.Critical
		}
		record()
	}
	return d, true
}
