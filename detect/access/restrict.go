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
//
// The app may route a path Vigil would read differently, so a rule applies
// when it matches any of the forms an app could route by: the path as sent
// (Caddy's matcher cleans it, as Go's ServeMux does), the path with ";"
// parameters stripped (Tomcat, Jetty, Spring), and the path as sent,
// uncleaned (Express and others route "/admin/../x" under /admin/).
func (d *Detector) violated(r *http.Request, id *detect.Identity) *Rule {
	if len(d.opt.Rules) == 0 {
		return nil
	}
	p := NewPathView(r)
	for i := range d.opt.Rules {
		rule := &d.opt.Rules[i]
		if !p.Matches(rule.Match, rule.Path) {
			continue
		}
		if id == nil || !id.Holds(rule.Roles, rule.Claim) {
			return rule
		}
	}
	return nil
}

// PathView is a request's path as the apps behind Vigil may route it: the
// path Caddy's matcher cleans (as Go's ServeMux does), the path with ";"
// parameters stripped (Tomcat, Jetty, Spring), and the path as sent,
// uncleaned (Express and others route "/admin/../x" under /admin/). A rule
// about a path must hold on every one of them, or it can be walked around.
type PathView struct {
	r, stripped *http.Request
}

// NewPathView prepares r's routings; it allocates only for a path with
// ";" parameters.
func NewPathView(r *http.Request) PathView {
	v := PathView{r: r}
	if strings.IndexByte(r.URL.Path, ';') >= 0 {
		v.stripped = withoutPathParams(r)
	}
	return v
}

// Matches reports whether m (compiled from pattern) matches any routing of
// the path.
func (v PathView) Matches(m Matcher, pattern string) bool {
	return m.Match(v.r) || (v.stripped != nil && m.Match(v.stripped)) || rawPrefix(pattern, v.r.URL.Path)
}

// rawPrefix matches a prefix pattern ("/admin/*") against the path exactly
// as sent, without cleaning: an app that routes on the raw path serves
// "/admin/../x" and "/admin//x" under /admin/.
func rawPrefix(pattern, p string) bool {
	base, ok := strings.CutSuffix(pattern, "/*")
	if !ok || base == "" || strings.ContainsAny(base, "*?[") {
		return false
	}
	return len(p) > len(base) && strings.EqualFold(p[:len(base)], base) && (p[len(base)] == '/' || p[len(base)] == ';')
}

// withoutPathParams is r with the ";…" parameters of each path segment
// removed, as Tomcat, Jetty and Spring do before routing. (The decoded path
// is used, so an encoded "%3B" is stripped too: the error is on the
// restrictive side.)
func withoutPathParams(r *http.Request) *http.Request {
	u := *r.URL
	u.Path, u.RawPath = detect.StripPathParams(r.URL.Path), ""
	r2 := *r
	r2.URL = &u
	return &r2
}
