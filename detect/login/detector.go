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

// Check reads the account a login names and refuses the attempt when the
// body cannot be attributed to one account, the account is locked, or the
// store is down under fail_mode closed.
func (d *Detector) Check(req *detect.Request) *detect.Refusal {
	if req.Login == nil {
		return nil
	}
	l := req.Login
	l.User, l.Err = readUser(req.HTTP, &d.opt.Routes[l.Route], d.opt.MaxBody)
	if d.opt.MonitorOnly {
		return nil
	}
	if status := refusedBody(l.Err); status != 0 {
		// an uninspectable login could carry any account name, locked
		// ones included: refuse it, and count it against the address
		d.attempt("refused")
		d.recordFailure(context.WithoutCancel(req.HTTP.Context()), req.Facts(), l, req.Start)
		return &detect.Refusal{Status: status, Err: l.Err, Action: "bad_login"}
	}
	if o, ok := d.opt.Responder.Locked(l.User, req.Start); ok && l.User != "" {
		d.attempt("refused")
		return &detect.Refusal{Status: http.StatusTooManyRequests, Retry: o.Remaining(req.Start), Err: errLocked, Action: "lock"}
	}
	if d.opt.Responder.FailClosed() {
		d.attempt("refused")
		return &detect.Refusal{Status: http.StatusServiceUnavailable, Retry: 5 * time.Second, Err: errStoreDown, Action: "store_down"}
	}
	return nil
}

// Observe reads the login's outcome from the upstream's answer, counts it
// and acts on what the counts mean.
func (d *Detector) Observe(req *detect.Request, a detect.Answer) {
	l := req.Login
	if l == nil {
		return
	}
	ctx, now, f := context.WithoutCancel(req.HTTP.Context()), a.At(), req.Facts()
	if l.User == "" || !d.opt.Routes[l.Route].Succeeded(a.Status, a.Header) {
		d.attempt("failure")
		d.recordFailure(ctx, f, l, now)
		return
	}
	d.attempt("success")
	if err := d.opt.Counter.RecordSuccess(ctx, detect.KeysFor(l.User, f.Net)); err != nil {
		d.opt.Logger.Debug("clearing login failures", "error", err)
	}
	d.opt.Responder.Act(ctx, detect.Finding{Type: detect.SuccessfulLogin, Time: now, Facts: f})
}

// recordFailure counts a failed attempt and acts on the policy's findings.
// An attempt without a readable username counts against the address only.
func (d *Detector) recordFailure(ctx context.Context, f detect.Facts, l *detect.Login, now time.Time) {
	windows := d.opt.Policy.Windows()
	if l.User == "" {
		windows.Account, windows.Pair, windows.Stuffing = 0, 0, 0
	}
	f.User = l.User
	counts, err := d.opt.Counter.RecordFailure(ctx, detect.KeysFor(l.User, f.Net), windows, now)
	if err != nil {
		d.opt.Logger.Error("counting login failure", "error", err)
	}
	details := countDetails(counts)
	if l.Err != nil && l.User == "" {
		details["user_error"] = l.Err.Error()
	}
	d.opt.Responder.Act(ctx, detect.Finding{Type: detect.FailedLogin, Time: now, Facts: f, Details: details})
	if !f.IP.IsValid() {
		return
	}
	for _, fd := range d.opt.Policy.AssessFailure(counts) {
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

func (d *Detector) attempt(outcome string) {
	if d.opt.Hooks.Attempt != nil {
		d.opt.Hooks.Attempt(outcome)
	}
}
