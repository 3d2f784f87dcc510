// Package access enforces who may reach what: `restrict` rules that let
// only sessions holding a role reach some paths, and permission violations
// (a rule refused, or the app answered 401/403 to a verified user), counted
// per user and per address.
package access

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Matcher matches request paths (Caddy's path matcher, adapted by the glue).
type Matcher interface {
	Match(r *http.Request) bool
}

// Rule lets only verified sessions holding one of Roles reach the paths
// Match matches.
type Rule struct {
	Match Matcher
	Path  string // the pattern, for events
	Roles []string
	// Claim reads the roles from this claim instead of the session's roles
	// claim; empty: the session's roles.
	Claim string
}

// Options configure a Detector.
type Options struct {
	Rules []Rule
	// ViolationCount violations by one user or one address inside
	// ViolationWindow make the next ones HIGH.
	ViolationCount  int
	ViolationWindow time.Duration
	MonitorOnly     bool
	Windows         detect.WindowCounter
	Actor           detect.Actor
	Pool            *detect.Pool
}

// Detector is the access family's check (restrict) and observer (the
// app's refusals of verified users).
type Detector struct {
	opt Options
}

// New returns a detector.
func New(opt Options) *Detector {
	return &Detector{opt: opt}
}

var errRestricted = errors.New("route restricted to other roles")

// Check refuses a restricted route to a request without a session holding
// the role; the violation is recorded off the request path.
func (d *Detector) Check(req *detect.Request) *detect.Refusal {
	rule := d.violated(req.HTTP, req.Identity)
	if rule == nil {
		return nil
	}
	v := violation{facts: req.Facts(), source: "gateway", status: http.StatusForbidden, rule: rule, at: req.Start}
	ctx := context.WithoutCancel(req.HTTP.Context())
	d.opt.Pool.Go(func() { d.record(ctx, v) })
	if d.opt.MonitorOnly {
		return nil
	}
	return &detect.Refusal{Status: http.StatusForbidden, Err: errRestricted, Action: "restricted"}
}

// Observe records the app's 401 or 403 to a verified user as a violation.
func (d *Detector) Observe(req *detect.Request, a detect.Answer) {
	if req.Identity == nil || req.Login != nil || (a.Status != http.StatusUnauthorized && a.Status != http.StatusForbidden) {
		return
	}
	v := violation{facts: req.Facts(), source: "upstream", status: a.Status, at: a.At()}
	ctx := context.WithoutCancel(req.HTTP.Context())
	d.opt.Pool.Go(func() { d.record(ctx, v) })
}

// violated returns the first rule that matches r and that id (nil: no
// session) does not satisfy. Every matching rule must hold.
func (d *Detector) violated(r *http.Request, id *detect.Identity) *Rule {
	if len(d.opt.Rules) == 0 {
		return nil
	}
	if strings.IndexByte(r.URL.Path, ';') >= 0 {
		r = withoutPathParams(r)
	}
	for i := range d.opt.Rules {
		rule := &d.opt.Rules[i]
		if !rule.Match.Match(r) {
			continue
		}
		if id == nil || !id.Holds(rule.Roles, rule.Claim) {
			return rule
		}
	}
	return nil
}

// withoutPathParams is r with the ";…" parameters of each path segment
// removed, as Tomcat, Jetty and Spring do before routing: otherwise
// "/admin;jsessionid=1/x" would miss "/admin/*" while the app serves
// /admin/x. (The decoded path is used, so an encoded "%3B" is stripped too:
// the error is on the restrictive side.)
func withoutPathParams(r *http.Request) *http.Request {
	p := r.URL.Path
	var b strings.Builder
	b.Grow(len(p))
	for len(p) > 0 {
		seg, rest, slash := strings.Cut(p, "/")
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		b.WriteString(seg)
		if slash {
			b.WriteByte('/')
		}
		p = rest
	}
	u := *r.URL
	u.Path, u.RawPath = b.String(), ""
	r2 := *r
	r2.URL = &u
	return &r2
}
