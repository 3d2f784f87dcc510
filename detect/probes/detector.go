// Package probes detects intrusion probes: honeypot paths, requests for
// sensitive files, attack signatures in the path and query, scanners'
// User-Agents, and directory scans (many distinct paths answered 4xx). Each
// is a SYSTEM_INTRUSION finding that blocks the address.
package probes

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Matcher matches request paths (Caddy's path matcher, adapted by the glue).
type Matcher interface {
	Match(r *http.Request) bool
}

// Options configure a Detector. A zero bool turns its detector off.
type Options struct {
	Honeypot       Matcher // nil: no honeypot paths
	SensitiveFiles bool
	Signatures     bool
	ScannerAgents  bool
	// ScanPaths distinct paths answered 4xx within ScanWithin are a
	// directory scan; 0 turns the scan detector off.
	ScanPaths  int
	ScanWithin time.Duration
	// Ban is how long an intrusion blocks the address (doubling on repeat).
	Ban     detect.Ban
	Windows detect.WindowCounter
	Actor   detect.Actor
	Pool    *detect.Pool
	Logger  *slog.Logger
}

// Detector is the probe family's check (the request itself gives the
// probe away) and observer (the answers of a directory scan).
type Detector struct {
	opt    Options
	agents AgentVerdicts
}

// New returns a detector; a nil opt.Logger discards.
func New(opt Options) *Detector {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Detector{opt: opt}
}

// Scans reports whether the scan detector needs the answers' statuses.
func (d *Detector) Scans() bool { return d.opt.ScanPaths > 0 }

// Checks reports whether any check of the request itself is on.
func (d *Detector) Checks() bool {
	o := &d.opt
	return o.Honeypot != nil || o.SensitiveFiles || o.Signatures || o.ScannerAgents
}

var errIntrusion = fmt.Errorf("request refused: intrusion probe")

// Check looks at the request itself: a honeypot path, a sensitive file, a
// probe signature, a scanner's User-Agent. These are string checks only;
// the store is not touched unless one of them hits. A hit is refused when
// the address is (now) blocked.
func (d *Detector) Check(req *detect.Request) *detect.Refusal {
	kind, evidence, hit := d.probe(req.HTTP)
	if !hit {
		return nil
	}
	o := d.intrusion(context.WithoutCancel(req.HTTP.Context()), req.Facts(), kind, evidence, req.Start)
	if !o.Enforced {
		return nil
	}
	return &detect.Refusal{Status: http.StatusForbidden, Retry: o.Remaining(req.Start), Err: errIntrusion, Action: "intrusion"}
}

func (d *Detector) probe(r *http.Request) (kind, evidence string, hit bool) {
	o := &d.opt
	if o.Honeypot != nil && o.Honeypot.Match(r) {
		return "honeypot", "honeypot", true
	}
	if o.SensitiveFiles {
		if ev, ok := SensitiveFile(r.URL.Path); ok {
			return "sensitive_file", ev, true
		}
	}
	if o.Signatures {
		if ev, ok := ProbeSignature(r.URL.Path, r.URL.RawQuery); ok {
			return "signature", ev, true
		}
	}
	if o.ScannerAgents {
		if ev, ok := d.agents.Check(r.Header.Get("User-Agent")); ok {
			return "scanner_agent", ev, true
		}
	}
	return "", "", false
}

// Observe counts an answer that may be a step of a directory scan, off the
// request path. Login attempts are the login detector's business.
func (d *Detector) Observe(req *detect.Request, a detect.Answer) {
	if req.Login != nil || !d.scanned(a.Status, req.HTTP.URL.Path) || !req.IP.IsValid() {
		return
	}
	f, ctx, now := req.Facts(), context.WithoutCancel(req.HTTP.Context()), a.At()
	d.opt.Pool.Go(func() { d.countProbe(ctx, f, now) })
}

// scanned reports whether an answer counts towards a directory scan.
func (d *Detector) scanned(status int, path string) bool {
	switch status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone:
		return d.opt.ScanPaths > 0 && !StaticAsset(path)
	}
	return false
}

// countProbe adds a 4xx path to the address's scan window and treats a
// full window as an intrusion.
func (d *Detector) countProbe(ctx context.Context, f detect.Facts, now time.Time) {
	w := d.opt.Windows
	member := detect.HashID("path", strings.ToLower(f.Path))
	n, err := w.Add(ctx, detect.Window{Kind: detect.ProbePaths, Within: d.opt.ScanWithin}, f.NetKey(), member, now)
	if err != nil {
		d.opt.Logger.Debug("counting a 4xx path", "error", err)
		return
	}
	if n < d.opt.ScanPaths {
		return
	}
	d.intrusion(ctx, f, "scan", fmt.Sprintf("%d distinct paths answered 4xx within %s", n, d.opt.ScanWithin), now)
	// the next finding must be earned with a fresh scan
	_ = w.Forget(ctx, detect.ProbePaths, f.NetKey())
}

// intrusion is a SYSTEM_INTRUSION finding (HIGH; CRITICAL for a honeypot)
// that blocks the address for the intrusion ban.
func (d *Detector) intrusion(ctx context.Context, f detect.Facts, kind, evidence string, now time.Time) detect.Outcome {
	fd := detect.Finding{Type: detect.SystemIntrusion, Time: now, Facts: f, Action: detect.BlockAddress, Target: f.Net,
		Ban: d.opt.Ban, Reason: "SYSTEM_INTRUSION: " + kind, Details: detect.Details{"kind": kind, "evidence": evidence}}
	if kind == "honeypot" {
		fd.Severity = detect.Critical
	}
	return d.opt.Actor.Act(ctx, fd)
}
