package detect

import (
	"context"
	"time"
)

// Ban is a threshold that, once reached inside a window, bans for a while.
// Repeat offenders get Base doubled per earlier ban, up to Max.
type Ban struct {
	Failures int
	Within   time.Duration
	Base     time.Duration
	Max      time.Duration
}

// Enabled reports whether the ban is configured.
func (b Ban) Enabled() bool { return b.Failures > 0 && b.Within > 0 && b.Base > 0 }

// Action is what a finding asks the responder to impose.
type Action int

const (
	// NoAction records the finding's event only.
	NoAction Action = iota
	// LockAccount refuses logins for Finding.Target (an account).
	LockAccount
	// BlockAddress refuses every request from Finding.Target (an address
	// or range; empty: the request's ClientNet).
	BlockAddress
	// EndSessions revokes every session of the user Finding.Target issued
	// until now (empty: the request's verified session user).
	EndSessions
	// EndSession revokes one token: Finding.Target is its ID (jti).
	EndSession
)

// Finding is a detector's conclusion: an event to record and, possibly, a
// decision to impose. Every finding goes through one Actor, which applies
// the allowlist, monitor-only, strikes and escalation, restarts the
// counters behind a decision, ends sessions and publishes the event.
type Finding struct {
	Type     Type
	Severity Severity  // zero: the type's default
	Time     time.Time // when it happened; zero: now
	Facts    Facts     // the request it is about
	Action   Action
	Target   string
	Ban      Ban    // for LockAccount and BlockAddress
	Reason   string // the decision's reason; empty: the type
	// Details are the finding's own facts; the Actor adds the request's to
	// them and keeps the map as the event's (the finding gives it up).
	Details Details
}

// Outcome is what the Actor did with a finding.
type Outcome struct {
	// Enforced: a decision of the finding's action is in force on its
	// target, made now or earlier (by a concurrent request, another
	// instance, an operator).
	Enforced bool
	// Fresh: the decision was made by this finding.
	Fresh  bool
	Strike int
	Until  time.Time
}

// Remaining is how long the decision still runs, rounded up to whole
// seconds as Retry-After wants it.
func (o Outcome) Remaining(now time.Time) time.Duration {
	r := o.Until.Sub(now)
	if r <= 0 {
		return 0
	}
	return (r + time.Second - 1).Truncate(time.Second)
}

// Actor turns findings into actions (respond.Responder).
type Actor interface {
	Act(ctx context.Context, f Finding) Outcome
}
