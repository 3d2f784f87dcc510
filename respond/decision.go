// Package respond turns findings into actions: the Responder (the one path
// from a finding to a decision, an ended session and an event), the
// decisions (IP blocks, account locks, session revocations) with their local
// cache and their propagation between instances, the event bus and its
// sinks, and the event log (memory ring, Redis stream) with its queries and
// tail. It never imports Caddy.
package respond

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Kind is the sort of an enforcement decision.
type Kind string

const (
	Block Kind = "block" // an IP address or CIDR range is refused (403)
	Lock  Kind = "lock"  // logins for an account are refused (429)
	// RevokeUser ends every session of a user issued at or before the
	// decision's Created time (401 for those tokens).
	RevokeUser Kind = "revoke_user"
	// RevokeJTI ends the one session whose token carries this "jti".
	RevokeJTI Kind = "revoke_jti"
)

// ParseKind accepts "block", "lock", "revoke_user" or "revoke_jti".
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case Block, Lock, RevokeUser, RevokeJTI:
		return Kind(s), nil
	}
	return "", fmt.Errorf("unknown decision kind %q", s)
}

// Decision is one active enforcement. Target is what an operator recognises
// (an address, a CIDR, a username); stores key it by Key, which is hashed.
type Decision struct {
	Kind    Kind      `json:"kind"`
	Target  string    `json:"target"`
	Reason  string    `json:"reason,omitempty"`
	Source  string    `json:"source"` // "auto" (a detector) or "admin"
	Site    string    `json:"site,omitempty"`
	Strike  int       `json:"strike"` // 1 for a first ban, n for the nth within StrikeMemory
	Created time.Time `json:"created"`
	Until   time.Time `json:"until"`
}

// Active reports whether the decision is in force at now.
func (d Decision) Active(now time.Time) bool { return now.Before(d.Until) }

// Remaining is how long the decision still runs, rounded up to whole seconds
// as Retry-After wants it.
func (d Decision) Remaining(now time.Time) time.Duration {
	r := d.Until.Sub(now)
	if r <= 0 {
		return 0
	}
	return (r + time.Second - 1).Truncate(time.Second)
}

// Key is the store key of a decision: its kind and a hash of its normalised
// target, so no user input becomes a key.
func (d Decision) Key() string { return DecisionKey(d.Kind, d.Target) }

// DecisionKey is Decision.Key for a kind and target.
func DecisionKey(kind Kind, target string) string {
	switch kind {
	case Lock, RevokeUser:
		return string(kind) + ":" + detect.AccountKey(target)
	case RevokeJTI:
		return string(kind) + ":" + detect.HashID("jti", target)
	default:
		return string(kind) + ":" + detect.HashID("ip", target)
	}
}

// NormalizeBlockTarget accepts an IP address or a CIDR and returns its
// canonical text (a single address for /32 and /128), so that the same range
// always has the same key.
func NormalizeBlockTarget(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		p = p.Masked()
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
		}
		if p.IsSingleIP() {
			return p.Addr().String(), nil
		}
		return p.String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("invalid IP address %q: %w", s, err)
	}
	return a.Unmap().WithZone("").String(), nil
}

// BanDuration is base doubled for each earlier strike, capped at max (when
// max is zero, bans do not grow).
func BanDuration(base, max time.Duration, strike int) time.Duration {
	if strike <= 1 || max <= base {
		return base
	}
	d := base
	for i := 1; i < strike; i++ {
		d *= 2
		if d >= max || d <= 0 {
			return max
		}
	}
	return d
}

// StrikeMemory is how long earlier bans count towards doubling: the longer of
// a day and four times the longest ban.
func StrikeMemory(max time.Duration) time.Duration {
	return detectMax(24*time.Hour, 4*max)
}

func detectMax(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// DecisionStore keeps the decisions shared by every instance.
type DecisionStore interface {
	// Impose records d for BanDuration(base, max, strike) unless a decision
	// for the same target is already active; then it returns that one and
	// false. The strike counts earlier Impose calls for the target within
	// StrikeMemory(max). d.Strike, d.Created and d.Until are filled in.
	Impose(ctx context.Context, d Decision, base, max time.Duration, now time.Time) (Decision, bool, error)
	// Put records d exactly as given, replacing any decision for its target
	// (manual blocks and locks).
	Put(ctx context.Context, d Decision) error
	// Lift removes the decision for a target and forgets its strikes; it
	// reports whether one was active.
	Lift(ctx context.Context, kind Kind, target string, now time.Time) (bool, error)
	// List returns the decisions active at now.
	List(ctx context.Context, now time.Time) ([]Decision, error)
}
