package respond

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Core is the app-wide half of the responder: the shared store, the event
// bus, the allowlist and the failure policy. Each site gets a Responder
// from it with its own policy.
type Core struct {
	Store *Store
	Bus   Sink
	Allow []netip.Prefix
	// FailClosed refuses logins while the store is unreachable.
	FailClosed bool
	Logger     *slog.Logger
	Now        func() time.Time
	// Locator places the addresses of events (country, city, ASN); nil
	// without a GeoIP database.
	Locator detect.Locator

	sessions lifetimes
}

// SitePolicy is what a site decides about its own findings.
type SitePolicy struct {
	// MonitorOnly records and alerts but never refuses nor imposes.
	MonitorOnly bool
	// TerminateOn lists the finding types that end the sessions of the
	// user they are about.
	TerminateOn map[detect.Type]bool
}

// Responder is the one path from a finding to an action, for one site.
type Responder struct {
	core   *Core
	policy SitePolicy
}

// For returns the responder of a site.
func (c *Core) For(p SitePolicy) *Responder { return &Responder{core: c, policy: p} }

func (c *Core) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Core) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Allowed reports whether ip is on the allowlist.
func (c *Core) Allowed(ip netip.Addr) bool {
	for _, p := range c.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Act implements detect.Actor: the allowlist, monitor-only, the decision
// with its strikes and doubling, severity escalation for repeat offenders,
// the counter restart, session termination, and the event. A decision
// already in force (made by a concurrent request or another instance) is
// not announced again.
func (r *Responder) Act(ctx context.Context, f detect.Finding) detect.Outcome {
	if f.Time.IsZero() {
		f.Time = r.core.now()
	}
	r.core.locate(&f)
	ev := f.Facts.Event(f.Type, f.Time, f.Details)
	if f.Severity != 0 {
		ev.Severity = f.Severity
	}
	kind, target := decisionOf(&f)
	switch {
	case f.Action == detect.EndSessions || f.Action == detect.EndSession:
		return r.endSessions(ctx, &f, ev)
	case kind == "":
		return r.record(ctx, &f, ev)
	case kind == Block && r.core.Allowed(f.Facts.IP):
		ev.Details["allowlisted"] = true
		r.core.restart(ctx, kind, target)
		return r.record(ctx, &f, ev)
	case r.policy.MonitorOnly:
		ev.Details["monitor_only"] = true
		r.core.restart(ctx, kind, target)
		return r.record(ctx, &f, ev)
	}
	reason := f.Reason
	if reason == "" {
		reason = string(f.Type)
	}
	d := Decision{Kind: kind, Target: target, Reason: reason, Source: "auto", Site: detect.Display(f.Facts.Site)}
	d, fresh, err := r.core.Store.Decisions.Impose(ctx, d, f.Ban.Base, f.Ban.Max, f.Time)
	if err != nil {
		r.core.logger().Error("imposing decision", "kind", string(kind), "error", err)
		return r.record(ctx, &f, ev)
	}
	out := detect.Outcome{Enforced: true, Fresh: fresh, Strike: d.Strike, Until: d.Until}
	if !fresh {
		return out
	}
	ev.Details["strike"] = d.Strike
	ev.Details["until"] = d.Until.Format(time.RFC3339)
	ev.Details["duration"] = d.Until.Sub(d.Created).String()
	if d.Strike > 1 {
		// a repeat offender: one level more urgent
		ev.Severity = min(ev.Severity+1, detect.Critical)
	}
	r.core.hold(ctx, d)
	r.record(ctx, &f, ev)
	if kind == Block {
		r.widen(ctx, &f, d)
	}
	return out
}

// decisionOf is the decision a finding asks for, if any. An address that
// is not known cannot be blocked.
func decisionOf(f *detect.Finding) (Kind, string) {
	switch f.Action {
	case detect.LockAccount:
		if f.Target != "" {
			return Lock, f.Target
		}
	case detect.BlockAddress:
		if f.Target != "" {
			return Block, f.Target
		}
		if f.Facts.Net != "" {
			return Block, f.Facts.Net
		}
	}
	return "", ""
}

// record ends the sessions the site's policy says it ends, then publishes
// the finding's event (which names the revocation a lock made).
func (r *Responder) record(ctx context.Context, f *detect.Finding, ev detect.Event) detect.Outcome {
	r.terminate(ctx, f, ev.Details)
	r.core.Bus.Publish(ev)
	return detect.Outcome{}
}

// terminate ends the sessions of the user a finding is about, when the
// site's terminate_sessions_on lists the finding's type. That user is the
// locked account, or the request's verified session user: never an account
// an attacker merely tried. Nothing happens unless a site verifies
// sessions (a revocation would then change nothing and only clutter the
// decisions). A lock's revocation is linked to the lock, so that lifting
// the lock lifts it too, and named in the lock's event details.
func (r *Responder) terminate(ctx context.Context, f *detect.Finding, details detect.Details) {
	if !r.policy.TerminateOn[f.Type] || r.policy.MonitorOnly || !r.core.sessions.inUse() {
		return
	}
	user := f.Facts.Session
	if f.Action == detect.LockAccount {
		user = f.Target
	}
	if user == "" {
		return
	}
	reason := string(f.Type)
	if f.Facts.IP.IsValid() {
		reason += " from " + f.Facts.IP.String()
	}
	rv := Revocation{Kind: RevokeUser, Target: user, Reason: reason, Source: "auto", Site: detect.Display(f.Facts.Site)}
	if f.Action == detect.LockAccount {
		rv.Linked = Ref{Kind: Lock, Target: user}
	}
	d, err := r.core.Revoke(ctx, rv, f.Time)
	if err != nil {
		r.core.logger().Error("terminating sessions", "finding", string(f.Type), "error", err)
		return
	}
	if rv.Linked.Kind == Lock && details != nil {
		details["revocation"] = map[string]any{"kind": string(d.Kind), "target": d.Target, "until": d.Until.Format(time.RFC3339)}
	}
}

// restart forgets the counters behind a decision, so the next one must be
// earned with fresh failures (the strike count remembers this one) and an
// allowlisted or monitored address does not raise the same finding on
// every further failure. An operator's unlock or unblock starts the same
// clean slate.
func (c *Core) restart(ctx context.Context, kind Kind, target string) {
	counter := c.Store.Counter
	switch kind {
	case Lock:
		_ = counter.Forget(ctx, detect.AccountCounter, detect.AccountKey(target))
	case Block: // an address, or the /64 an IPv6 client was counted under
		key := detect.HashID("ip", target)
		_ = counter.Forget(ctx, detect.IPCounter, key)
		_ = counter.Forget(ctx, detect.IPAccountsCount, key)
	}
}

// hold restarts the counters behind a new decision and keeps them full
// while it lasts: an attempt that another instance reserves before it sees
// the decision is refused by its counter instead.
func (c *Core) hold(ctx context.Context, d Decision) {
	counter := c.Store.Counter
	switch d.Kind {
	case Lock:
		_ = counter.Hold(ctx, detect.AccountCounter, detect.AccountKey(d.Target), d.Until)
	case Block:
		key := detect.HashID("ip", d.Target)
		_ = counter.Hold(ctx, detect.IPCounter, key, d.Until)
		_ = counter.Forget(ctx, detect.IPAccountsCount, key)
	}
}

// Locked implements login.Responder from the local decision cache.
func (r *Responder) Locked(user string, now time.Time) (detect.Outcome, bool) {
	d, ok := r.core.Store.Cache.Locked(user, now)
	return detect.Outcome{Enforced: ok, Strike: d.Strike, Until: d.Until}, ok
}

// Allowed implements login.Responder.
func (r *Responder) Allowed(ip netip.Addr) bool { return r.core.Allowed(ip) }

// FailClosed implements login.Responder.
func (r *Responder) FailClosed() bool {
	return r.core.FailClosed && !r.core.Store.Healthy()
}

// Revoked implements session.Responder from the local decision cache.
func (r *Responder) Revoked(id *detect.Identity, now time.Time) (detect.Revocation, bool) {
	d, ok := r.core.Store.Cache.SessionRevoked(id.UserKey, id.JTI, id.Issued, now)
	return detect.Revocation{Kind: string(d.Kind), Reason: d.Reason}, ok
}

var errBlocked = errors.New("client address is blocked")

// Blocks is the first check of every request: an address under a block is
// refused (403) before anything else looks at the request, unless it is
// allowlisted or the site only monitors. One map lookup, no network.
func (r *Responder) Blocks() detect.Check { return blockCheck{r} }

type blockCheck struct{ r *Responder }

func (b blockCheck) Check(req *detect.Request) *detect.Refusal {
	d, ok := b.r.core.Store.Cache.Blocked(req.IP, req.Start)
	if !ok || b.r.policy.MonitorOnly || b.r.core.Allowed(req.IP) {
		return nil
	}
	return &detect.Refusal{Status: http.StatusForbidden, Retry: d.Remaining(req.Start), Err: errBlocked, Action: "block"}
}
