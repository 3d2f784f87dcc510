package respond

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/session"
)

// Operator names who acted, for the ADMIN_ACTION event of a manual action:
// the admin API's remote address, or a dashboard user.
type Operator struct {
	Remote string
	User   string
}

// adminEvent records an operator's action.
func (c *Core) adminEvent(op Operator, action, target string, details detect.Details) {
	e := detect.NewEvent(detect.AdminAction, c.now())
	details["action"] = action
	details["target"] = detect.Display(target)
	details["remote"] = op.Remote
	if op.User != "" {
		e.User = detect.Display(op.User)
	}
	e.Details = details
	c.Bus.Publish(e)
}

// Impose puts a manual decision in force exactly as given (replacing any
// for its target) and records it.
func (c *Core) Impose(ctx context.Context, d Decision, op Operator) error {
	if err := c.Store.Decisions.Put(ctx, d); err != nil {
		return fmt.Errorf("storing decision: %w", err)
	}
	c.adminEvent(op, string(d.Kind), d.Target, detect.Details{"duration": d.Until.Sub(d.Created).String(), "reason": d.Reason})
	return nil
}

// Lift removes a decision and its strikes, restarts the counters behind
// it (an unlocked user starts with a clean slate), and records the action.
// Lifting a lock lifts the revocation it caused too (Decision.Linked): the
// operator has judged the lock unwarranted, so the sessions it ended may
// resume. It reports whether a decision (or that revocation) was in force.
func (c *Core) Lift(ctx context.Context, kind Kind, target string, op Operator) (bool, error) {
	now := c.now()
	was, err := c.Store.Decisions.Lift(ctx, kind, target, now)
	if err != nil {
		return false, fmt.Errorf("lifting decision: %w", err)
	}
	c.restart(ctx, kind, target)
	action := "un" + string(kind)
	if kind == RevokeUser || kind == RevokeJTI {
		action = "unrevoke"
	}
	details := detect.Details{"was_active": was, "kind": string(kind)}
	if kind == Lock {
		rv, ok := c.Store.Cache.Get(RevokeUser, target, now)
		if ok && rv.Linked.Kind == Lock && detect.AccountKey(rv.Linked.Target) == detect.AccountKey(target) {
			if _, err := c.Store.Decisions.Lift(ctx, RevokeUser, rv.Target, now); err != nil {
				return was, fmt.Errorf("lifting the revocation linked to the lock: %w", err)
			}
			details["linked_lifted"] = map[string]any{"kind": string(RevokeUser), "target": rv.Target}
			was = true
		}
	}
	c.adminEvent(op, action, target, details)
	return was, nil
}

// Revocation ends every session of a user issued until now (RevokeUser) or
// one token (RevokeJTI).
type Revocation struct {
	Kind           Kind
	Target         string
	Reason, Source string // Source: "auto" or "admin"
	Site           string
	Linked         Ref // the lock that caused it, if any (Decision.Linked)
	// TTL is how long it lasts; zero: long enough that every token it
	// covers has expired when it ends.
	TTL time.Duration
}

// Revoke stores a revocation, shared with every instance through the
// decision store, and records SESSION_REVOKED.
func (c *Core) Revoke(ctx context.Context, rv Revocation, now time.Time) (Decision, error) {
	now = now.UTC()
	ttl := rv.TTL
	if ttl <= 0 {
		ttl = c.sessions.revocationTTL()
	}
	d := Decision{Kind: rv.Kind, Target: rv.Target, Reason: rv.Reason, Source: rv.Source, Site: rv.Site,
		Strike: 1, Created: now, Until: now.Add(ttl), Linked: rv.Linked}.Canonical()
	if err := c.Store.Decisions.Put(ctx, d); err != nil {
		return d, fmt.Errorf("storing revocation: %w", err)
	}
	ev := detect.NewEvent(detect.SessionRevoked, now)
	ev.Site = rv.Site
	ev.Details = detect.Details{"revocation": string(rv.Kind), "reason": rv.Reason, "source": rv.Source, "until": d.Until.Format(time.RFC3339)}
	if rv.Kind == RevokeUser {
		ev.User = detect.Display(d.Target)
	} else {
		ev.Details["jti"] = detect.Display(rv.Target)
	}
	c.Bus.Publish(ev)
	return d, nil
}

// RevokeByOperator is Revoke for an operator, recorded as ADMIN_ACTION too.
func (c *Core) RevokeByOperator(ctx context.Context, rv Revocation, op Operator) (Decision, error) {
	rv.Source = "admin"
	d, err := c.Revoke(ctx, rv, c.now())
	if err != nil {
		return d, err
	}
	c.adminEvent(op, "revoke", d.Target, detect.Details{"revocation": string(rv.Kind), "reason": rv.Reason, "until": d.Until.Format(time.RFC3339)})
	return d, nil
}

// lifetimes remembers the revocation lifetimes of the sites that verify
// sessions: revocations are kept as long as the longest, so that no token
// outlives its revocation.
type lifetimes struct {
	mu sync.Mutex
	m  map[any]time.Duration
}

// RegisterSessions records that owner (a site's handler) verifies sessions
// whose revocations must last lifetime; UnregisterSessions forgets it.
func (c *Core) RegisterSessions(owner any, lifetime time.Duration) {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	if c.sessions.m == nil {
		c.sessions.m = map[any]time.Duration{}
	}
	c.sessions.m[owner] = lifetime
}

// UnregisterSessions forgets a site registered with RegisterSessions.
func (c *Core) UnregisterSessions(owner any) {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	delete(c.sessions.m, owner)
}

func (l *lifetimes) inUse() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m) > 0
}

// revocationTTL is the longest revocation lifetime any site needs, or the
// default one when none verifies sessions.
func (l *lifetimes) revocationTTL() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ttl := time.Duration(0)
	for _, d := range l.m {
		ttl = max(ttl, d)
	}
	if ttl == 0 {
		return session.DefaultRevocationLifetime
	}
	return ttl
}
