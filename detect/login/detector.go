// Package login watches a site's login routes: it reads the account an
// attempt names (without ever copying the password), refuses attempts on
// locked accounts, counts failures per account, address and pair, and turns
// the counts into findings (lockouts, blocks, credential stuffing).
package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Responder is what the login detector needs of respond.Responder.
type Responder interface {
	detect.Actor
	// Locked reports the lock in force on an account, from the local
	// decision cache.
	Locked(user string, now time.Time) (detect.Outcome, bool)
	// FailClosed reports whether logins must be refused now because the
	// store is unreachable under fail_mode closed.
	FailClosed() bool
	// Allowed reports whether an address is on the allowlist (never
	// blocked, so never refused for its failures either).
	Allowed(ip netip.Addr) bool
}

// Hooks let the glue count attempts by outcome (success, failure,
// refused). Nil fields are skipped.
type Hooks struct {
	Attempt func(outcome string)
}

// Options configure a Detector.
type Options struct {
	Routes      []Route
	Policy      Policy
	MaxBody     int64 // bytes of a body read to find the username
	MonitorOnly bool
	Counter     detect.LoginCounter
	Responder   Responder
	Hooks       Hooks
	Logger      *slog.Logger
	// Tighten, when set, returns the lockout threshold in force on a site
	// now when something site-wide (a password spray) lowers it; 0 leaves
	// the policy's.
	Tighten func(site string, now time.Time) int
	// Ahead, when set, is called once the account is read and just before
	// the attempt is reserved, so that a later stage can start the store
	// reads it needs (the risk profile) and their round trip overlaps the
	// reservation's: a login then waits for one round trip, not two. It
	// must not block.
	Ahead func(req *detect.Request)
}

// Detector is the login family's check (Guard), its route matcher (Match)
// and its observer of the outcome.
type Detector struct {
	opt Options
}

// New returns a detector; a nil opt.Logger discards.
func New(opt Options) *Detector {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Detector{opt: opt}
}

var (
	errLocked    = errors.New("account is locked")
	errTooMany   = errors.New("too many failed logins from this address")
	errStoreDown = errors.New("login refused: security store unreachable (fail_mode closed)")
)

// Match is the check that marks a request to a login route. It runs first,
// so that later checks know (a session is not enforced on a login route).
func (d *Detector) Match() detect.Check { return matcher{d} }

type matcher struct{ d *Detector }

func (m matcher) Check(req *detect.Request) *detect.Refusal {
	for i := range m.d.opt.Routes {
		if m.d.opt.Routes[i].Matches(req.HTTP) {
			req.MarkLogin(i)
			return nil
		}
	}
	return nil
}

// Check reads the account a login names and counts the attempt before the
// upstream sees it, so that parallel attempts see each other. It refuses
// the attempt when the account cannot be read the way the app might read
// it, when the account is locked or at its limit, when the address is at
// its limit, or when the store is down under fail_mode closed. A request on
// a login path that names no account and carries no body (the login page)
// is not an attempt.
func (d *Detector) Check(req *detect.Request) *detect.Refusal {
	l := req.Login
	if l == nil {
		return nil
	}
	route := &d.opt.Routes[l.Route]
	c := readCredentials(req.HTTP, route, d.opt.MaxBody)
	if !c.attempt {
		req.Login = nil
		return nil
	}
	l.User, l.Err = c.user, c.err
	ctx := context.WithoutCancel(req.HTTP.Context())
	if status := unreadableStatus(l.Err); status != 0 && route.Unreadable != "forward" && !d.opt.MonitorOnly {
		// an unreadable login could carry any account name, locked ones
		// included: refuse it, and count it against the address
		d.attempt("refused")
		d.reserve(ctx, req)
		d.recordFailure(ctx, req.Facts(), l, req.Start)
		return &detect.Refusal{Status: status, Err: l.Err, Action: "bad_login"}
	}
	if d.opt.MonitorOnly {
		d.ahead(req)
		d.reserve(ctx, req)
		return nil
	}
	if o, ok := d.opt.Responder.Locked(l.User, req.Start); ok && l.User != "" {
		d.attempt("refused")
		return &detect.Refusal{Status: http.StatusTooManyRequests, Retry: o.Remaining(req.Start), Err: errLocked, Action: "lock"}
	}
	d.ahead(req)
	d.reserve(ctx, req)
	return d.limit(ctx, req)
}

func (d *Detector) ahead(req *detect.Request) {
	if d.opt.Ahead != nil {
		d.opt.Ahead(req)
	}
}

// reserve counts the attempt; one without a readable account counts
// against the address only.
func (d *Detector) reserve(ctx context.Context, req *detect.Request) {
	l := req.Login
	windows := d.opt.Policy.Windows()
	if l.User == "" {
		windows.Account, windows.Pair, windows.Stuffing = 0, 0, 0
	}
	a, counts, err := d.opt.Counter.Reserve(ctx, detect.KeysFor(l.User, req.Net()), windows, req.Start)
	if err != nil {
		d.opt.Logger.Error("counting login attempt", "error", err)
	}
	l.Attempt, l.Counts, l.Reserved = a, counts, err == nil
}

// limit refuses an attempt that would take the account or the address past
// its limit (the counts include the attempts in flight), and a login while
// the store is down under fail_mode closed: the failing store operation is
// the reservation just made, so even the first login after Redis dies is
// refused.
func (d *Detector) limit(ctx context.Context, req *detect.Request) *detect.Refusal {
	site := req.Site
	if site == "" {
		site = req.HTTP.Host
	}
	l, p := req.Login, d.policy(site, req.Start)
	var ref *detect.Refusal
	switch {
	case d.opt.Responder.FailClosed():
		ref = &detect.Refusal{Status: http.StatusServiceUnavailable, Retry: 5 * time.Second, Err: errStoreDown, Action: "store_down"}
	case p.Lockout.Enabled() && l.User != "" && l.Counts.Account > p.Lockout.Failures:
		ref = &detect.Refusal{Status: http.StatusTooManyRequests, Retry: p.Lockout.Base, Err: errLocked, Action: "lock"}
	case p.BlockIP.Enabled() && l.Counts.IP > p.BlockIP.Failures && !d.opt.Responder.Allowed(req.IP):
		ref = &detect.Refusal{Status: http.StatusForbidden, Retry: p.BlockIP.Base, Err: errTooMany, Action: "block"}
	default:
		return nil
	}
	d.attempt("refused")
	d.release(ctx, l)
	return ref
}

func (d *Detector) release(ctx context.Context, l *detect.Login) {
	if !l.Reserved {
		return
	}
	l.Reserved = false
	if err := d.opt.Counter.Release(ctx, l.Attempt); err != nil {
		d.opt.Logger.Debug("releasing a login attempt", "error", err)
	}
}

// Observe reads the login's outcome from the upstream's answer: a failure
// keeps the attempt counted and acts on what the counts mean; a success
// wipes the account's failures; no answer at all releases the attempt.
func (d *Detector) Observe(req *detect.Request, a detect.Answer) {
	l := req.Login
	if l == nil {
		return
	}
	ctx := context.WithoutCancel(req.HTTP.Context())
	if a.Status == 0 {
		d.release(ctx, l) // the upstream never answered: no verdict on the password
		return
	}
	now, f := a.At(), req.Facts()
	if l.User == "" || !d.opt.Routes[l.Route].Succeeded(a.Status, a.Header) {
		l.Outcome = detect.OutcomeFailure
		d.attempt("failure")
		d.recordFailure(ctx, f, l, now)
		return
	}
	l.Outcome = detect.OutcomeSuccess
	d.attempt("success")
	if err := d.opt.Counter.RecordSuccess(ctx, l.Attempt); err != nil {
		d.opt.Logger.Debug("clearing login failures", "error", err)
	}
	d.opt.Responder.Act(ctx, detect.Finding{Type: detect.SuccessfulLogin, Time: now, Facts: f})
}

// recordFailure records a failed attempt (counted when it was reserved)
// and acts on the policy's findings.
func (d *Detector) recordFailure(ctx context.Context, f detect.Facts, l *detect.Login, now time.Time) {
	// the findings are about the attempt, never about a session the
	// request may carry: none of them may end that session
	f.User, f.Session, f.SessionKey = l.User, "", ""
	details := d.opt.Policy.countDetails(l.Counts)
	if l.Err != nil && l.User == "" {
		details["user_error"] = l.Err.Error()
	}
	d.opt.Responder.Act(ctx, detect.Finding{Type: detect.FailedLogin, Time: now, Facts: f, Details: details})
	if !f.IP.IsValid() {
		return
	}
	for _, fd := range d.policy(f.Site, now).AssessFailure(l.Counts) {
		switch fd.Action {
		case detect.LockAccount:
			if l.User == "" {
				continue
			}
			fd.Target = l.User
		case detect.BlockAddress:
			fd.Target = f.Net
		}
		fd.Facts, fd.Time = f, now
		d.opt.Responder.Act(ctx, fd)
	}
}

// policy is the site's policy now: the lockout lowered while Tighten says
// so.
func (d *Detector) policy(site string, now time.Time) *Policy {
	p := &d.opt.Policy
	if d.opt.Tighten == nil || !p.Lockout.Enabled() {
		return p
	}
	if t := d.opt.Tighten(site, now); t > 0 && t < p.Lockout.Failures {
		tight := *p
		tight.Lockout.Failures = t
		return &tight
	}
	return p
}

func (d *Detector) attempt(outcome string) {
	if d.opt.Hooks.Attempt != nil {
		d.opt.Hooks.Attempt(outcome)
	}
}
