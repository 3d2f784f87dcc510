// Package probes detects intrusion probes: honeypot paths, requests for
// sensitive files, attack signatures in the path and query, scanners'
// User-Agents, admin-interface, exploit and WordPress probing, and
// directory scans (many distinct paths answered 4xx). A honeypot hit blocks
// the address at once; every other detector pours evidence into a leaky
// bucket of the address (see buckets.go), and an overflowing bucket is a
// SYSTEM_INTRUSION finding that blocks the address.
package probes

import (
	"context"
	"fmt"
	"log/slog"
	"math"
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
	// ProbePaths counts admin interfaces, known exploits' endpoints and
	// WordPress files answered 403/404.
	ProbePaths bool
	// ScanPaths distinct paths answered 4xx in a burst overflow the scan
	// bucket, which leaks ScanPaths per ScanWithin; 0 turns the scan
	// detector off.
	ScanPaths  int
	ScanWithin time.Duration
	// Sensitivity scales the evidence the other buckets need.
	Sensitivity Sensitivity
	// Ban is how long an intrusion blocks the address (doubling on repeat).
	Ban detect.Ban
	// Buckets holds the evidence; needed by every detector but the
	// honeypot and the scanner agents.
	Buckets detect.Buckets
	Actor   detect.Actor
	Pool    *detect.Pool
	Logger  *slog.Logger
	// AgentsEvicted (may be nil) is told how many cached User-Agent
	// verdicts were evicted to stay within their bound.
	AgentsEvicted func(n int)
}

// Detector is the probe family's check (the request itself gives the
// probe away) and observer (the answers of a scan).
type Detector struct {
	opt       Options
	agents    AgentVerdicts
	scenarios [nBuckets]scenario
}

// New returns a detector; a nil opt.Logger discards.
func New(opt Options) *Detector {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Detector{opt: opt, scenarios: scenarios(&opt)}
	d.agents.OnEvict = opt.AgentsEvicted
	return d
}

// Scans reports whether the detector needs the answers' statuses: the
// scan, the path probes and the sensitive files answered 4xx count there.
func (d *Detector) Scans() bool {
	o := &d.opt
	return o.ScanPaths > 0 || o.ProbePaths || o.SensitiveFiles
}

// Checks reports whether any check of the request itself is on.
func (d *Detector) Checks() bool {
	o := &d.opt
	return o.Honeypot != nil || o.SensitiveFiles || o.Signatures || o.ScannerAgents
}

var errIntrusion = fmt.Errorf("request refused: intrusion probe")

// evidence is one detector's hit, to be poured into its bucket.
type evidence struct {
	bucket bucketID
	name   string // fixed evidence name for the event
	weight float64
	member string // HashID: what makes the evidence distinct
}

// maxHits is how many checks of the request itself can hit at once.
const maxHits = 3

// Check looks at the request itself: a honeypot path, a scanner's
// User-Agent, a sensitive file, a probe signature. These are string checks
// only; the store is touched only when one of them hits, and a hit that
// overflows its bucket is refused (the address is now blocked).
func (d *Detector) Check(req *detect.Request) *detect.Refusal {
	r, o := req.HTTP, &d.opt
	if o.Honeypot != nil && o.Honeypot.Match(r) {
		return d.honeypot(req)
	}
	// an array passed by value stays on the stack: no allocation unless hit
	var hits [maxHits]evidence
	n := 0
	if o.ScannerAgents {
		if ev, ok := d.agents.Check(userAgent(r)); ok {
			hits[n] = evidence{bucket: bAgent, name: ev}
			n++
		}
	}
	if o.SensitiveFiles {
		// the others (dumps, archives) count only when answered 4xx
		if ev, strong, ok := sensitiveFile(r.URL.Path); ok && strong {
			hits[n] = evidence{bucket: bSensitive, name: ev}
			n++
		}
	}
	if o.Signatures {
		if fam, ok := ProbeSignature(r.URL.Path, r.URL.RawQuery); ok {
			hits[n] = evidence{bucket: signatureBucket(fam), name: fam}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return d.pourHits(req, hits, n)
}

// pourHits pours the request's hits, unless a third-party page made the
// visitor's browser send it.
func (d *Detector) pourHits(req *detect.Request, hits [maxHits]evidence, n int) *detect.Refusal {
	if CrossSiteSubresource(req.HTTP.Header) || !req.IP.IsValid() {
		return nil
	}
	ctx, f := context.WithoutCancel(req.HTTP.Context()), req.Facts()
	low := strings.ToLower(f.Path)
	for _, e := range hits[:n] {
		e.weight = 1
		if e.bucket == bSensitive {
			e.member = detect.HashID("path", low)
		} else {
			// payloads are told apart by path and query, as scanners vary
			// the query of one page
			e.member = detect.HashID("request", low+"?"+f.Query)
		}
		o, fired := d.pour(ctx, f, e, req.Start)
		if !fired {
			continue
		}
		if !o.Enforced {
			return nil
		}
		return &detect.Refusal{Status: http.StatusForbidden, Retry: o.Remaining(req.Start), Err: errIntrusion, Action: "intrusion"}
	}
	return nil
}

// honeypot blocks at once, unless the hit is a cross-site subresource load:
// then it is recorded (LOW, cross_site: true) and nobody is blocked, or any
// page could get its visitors banned with an <img> of the honeypot.
func (d *Detector) honeypot(req *detect.Request) *detect.Refusal {
	ctx, f := context.WithoutCancel(req.HTTP.Context()), req.Facts()
	det := detect.Details{"kind": "honeypot", "evidence": "honeypot"}
	if CrossSiteSubresource(req.HTTP.Header) {
		det["cross_site"] = true
		d.opt.Actor.Act(ctx, detect.Finding{Type: detect.SystemIntrusion, Severity: detect.Low, Time: req.Start,
			Facts: f, Action: detect.NoAction, Reason: "SYSTEM_INTRUSION: honeypot", Details: det})
		return nil
	}
	o := d.intrusion(ctx, f, "honeypot", det, req.Start)
	if !o.Enforced {
		return nil
	}
	return &detect.Refusal{Status: http.StatusForbidden, Retry: o.Remaining(req.Start), Err: errIntrusion, Action: "intrusion"}
}

// Observe counts an answer that may be a step of a scan, off the request
// path. Login attempts are the login detector's business, and a
// cross-site subresource load is nobody's.
func (d *Detector) Observe(req *detect.Request, a detect.Answer) {
	if !countedStatus(a.Status) || req.Login != nil || !req.IP.IsValid() || CrossSiteSubresource(req.HTTP.Header) {
		return
	}
	f, ctx, now, status := req.Facts(), context.WithoutCancel(req.HTTP.Context()), a.At(), a.Status
	d.opt.Pool.Go(func() { d.countAnswer(ctx, f, status, now) })
}

// countedStatus: the answers a probe gets (CrowdSec's scenarios count
// 400/403/404; 405 and 410 are what other apps answer the same probes).
func countedStatus(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone:
		return true
	}
	return false
}

// countAnswer pours what a 4xx answer says into the address's buckets, the
// most specific first; the first overflow is the finding.
func (d *Detector) countAnswer(ctx context.Context, f detect.Facts, status int, now time.Time) {
	for _, e := range d.answerEvidence(f, status) {
		if _, fired := d.pour(ctx, f, e, now); fired {
			return
		}
	}
}

// answerEvidence is what a 4xx answer to f is evidence of.
func (d *Detector) answerEvidence(f detect.Facts, status int) []evidence {
	o := &d.opt
	low := strings.ToLower(f.Path)
	path := detect.HashID("path", low)
	var evs []evidence
	// an admin interface or an exploit's endpoint that answers 400/405 is
	// there: only "not here" and "not for you" are probing answers
	if o.ProbePaths && (status == http.StatusNotFound || status == http.StatusForbidden) {
		if name, ok := exploitProbe(low, f.Query); ok {
			evs = append(evs, evidence{bExploit, name, 1, detect.HashID("request", low+"?"+f.Query)})
		}
		if wordpressProbe(low) {
			evs = append(evs, evidence{bWordPress, "wordpress", 1, path})
		}
		if adminProbe(low) {
			evs = append(evs, evidence{bAdmin, "admin_interface", 1, path})
		}
	}
	if o.SensitiveFiles {
		if ev, strong, ok := sensitiveFile(f.Path); ok && !strong {
			evs = append(evs, evidence{bSensitive, ev, 1, path})
		}
	}
	if o.ScanPaths > 0 {
		if w := scanWeight(f.Path); w > 0 {
			evs = append(evs, evidence{bScan, "", w, detect.HashID("path", pathShape(f.Path))})
		}
	}
	return evs
}

// pour adds one piece of evidence to the address's bucket of its kind and
// reports whether it overflowed. An overflow is a SYSTEM_INTRUSION that
// blocks the address; the bucket is then emptied, so that the next finding
// has to be earned with fresh evidence.
func (d *Detector) pour(ctx context.Context, f detect.Facts, e evidence, now time.Time) (detect.Outcome, bool) {
	sc := &d.scenarios[e.bucket]
	b, key := sc.bucket, f.NetKey()
	level := max(e.weight, 1)
	if b.Capacity > 0 { // a trigger needs no store
		var over bool
		var err error
		level, over, err = d.opt.Buckets.Pour(ctx, b, key, detect.Drop{Weight: e.weight, Member: e.member}, now)
		if err != nil {
			d.opt.Logger.Debug("pouring probe evidence", "bucket", string(b.Kind), "error", err)
			return detect.Outcome{}, false
		}
		if !over {
			return detect.Outcome{}, false
		}
	}
	ev := e.name
	if e.bucket == bScan {
		ev = fmt.Sprintf("%d distinct paths answered 4xx within %s", int(math.Ceil(level-1e-9)), d.opt.ScanWithin)
	}
	det := detect.Details{"kind": sc.kind, "bucket": string(b.Kind), "level": math.Round(level*100) / 100,
		"capacity": b.Capacity, "evidence": ev}
	o := d.intrusion(ctx, f, sc.kind, det, now)
	if b.Capacity > 0 {
		if err := d.opt.Buckets.Forget(ctx, b.Kind, key); err != nil {
			d.opt.Logger.Debug("emptying a probe bucket", "bucket", string(b.Kind), "error", err)
		}
	}
	return o, true
}

// intrusion is a SYSTEM_INTRUSION finding (HIGH; CRITICAL for a honeypot)
// that blocks the address for the intrusion ban.
func (d *Detector) intrusion(ctx context.Context, f detect.Facts, kind string, det detect.Details, now time.Time) detect.Outcome {
	fd := detect.Finding{Type: detect.SystemIntrusion, Time: now, Facts: f, Action: detect.BlockAddress, Target: f.Net,
		Ban: d.opt.Ban, Reason: "SYSTEM_INTRUSION: " + kind, Details: det}
	if kind == "honeypot" {
		fd.Severity = detect.Critical
	}
	return d.opt.Actor.Act(ctx, fd)
}

// userAgent is the request's User-Agent, read by its canonical key (Get
// would canonicalize the key on every request).
func userAgent(r *http.Request) string {
	if v := r.Header["User-Agent"]; len(v) > 0 {
		return v[0]
	}
	return ""
}
