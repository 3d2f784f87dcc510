// Package respond turns findings into actions: the Responder (the one path
// from a finding to a decision, an ended session and an event), the
// decisions (IP blocks, account locks, session revocations) with their local
// cache and their propagation between instances, the event bus and its
// sinks, and the event log (memory ring, Redis stream) with its queries and
// tail. It never imports Caddy.
package respond

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/session"
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
// (an address, a CIDR, a username) in its canonical form (CanonicalTarget);
// stores key it by Key, which is hashed.
type Decision struct {
	Kind    Kind      `json:"kind"`
	Target  string    `json:"target"`
	Reason  string    `json:"reason,omitempty"`
	Source  string    `json:"source"` // "auto" (a detector) or "admin"
	Site    string    `json:"site,omitempty"`
	Strike  int       `json:"strike"` // 1 for a first ban, n for the nth within StrikeMemory
	Created time.Time `json:"created"`
	Until   time.Time `json:"until"`
	// Linked is the decision this one goes with: the revocation that a
	// lock's terminate_sessions_on made records its lock, so that lifting
	// the lock lifts it too (Core.Lift). Listings show the link on both
	// sides (Listing); only the revocation stores it.
	Linked Ref `json:"linked,omitzero"`
}

// Ref names a decision by its kind and canonical target.
type Ref struct {
	Kind   Kind   `json:"kind"`
	Target string `json:"target"`
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

// CanonicalTarget is the one form a target of a kind is stored, listed and
// compared in, so that "Bob " and "bob", or 2001:DB8::7 and 2001:db8::7,
// are one decision: an address or range as NormalizeBlockTarget gives it,
// an account as detect.NormalizeUser folds it (the name login counters
// and locks key on), a token ID exactly as the token carries it.
func CanonicalTarget(kind Kind, target string) (string, error) {
	switch kind {
	case Block:
		return NormalizeBlockTarget(target)
	case Lock, RevokeUser:
		u, err := detect.CheckUsername(target)
		if err != nil {
			return "", fmt.Errorf("user %q: %w", detect.Display(target), err)
		}
		if u = detect.NormalizeUser(u); u == "" {
			return "", fmt.Errorf("user %q has no canonical form", detect.Display(target))
		}
		return u, nil
	case RevokeJTI:
		// compared byte for byte with the token's claim: never altered
		if target == "" || len(target) > session.MaxJTIBytes || !utf8.ValidString(target) {
			return "", fmt.Errorf("token ID: not a usable identifier (1 to %d bytes of UTF-8)", session.MaxJTIBytes)
		}
		return target, nil
	}
	return "", fmt.Errorf("unknown decision kind %q", kind)
}

// Canonical returns d with its target, and its link's, in canonical form.
// A target that does not parse (written by an older version, or by hand
// into Redis) is left as it is: it still names its decision by Key.
func (d Decision) Canonical() Decision {
	if t, err := CanonicalTarget(d.Kind, d.Target); err == nil {
		d.Target = t
	}
	if d.Linked != (Ref{}) {
		if t, err := CanonicalTarget(d.Linked.Kind, d.Linked.Target); err == nil {
			d.Linked.Target = t
		}
	}
	return d
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

// PutMany records ds like DecisionStore.Put but in bulk, and never
// shortens a decision in force that ends later (an import or a change of
// store adds to what is there). It returns how many decisions it queued for
// replay because Redis did not answer.
func PutMany(ctx context.Context, s DecisionStore, ds []Decision) int {
	canon := make([]Decision, len(ds))
	for i, d := range ds {
		canon[i] = d.Canonical()
	}
	switch st := s.(type) {
	case *MemoryDecisions:
		st.cache.SetMany(canon)
	case *RedisDecisions:
		return st.putMany(ctx, canon)
	default:
		for _, d := range canon {
			_ = s.Put(ctx, d)
		}
	}
	return 0
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

// clockSkew is how far in the future a decision's creation may lie: a
// revocation ends the sessions issued before it was created, so one dated
// later would end sessions not yet begun.
const clockSkew = time.Minute

// admit checks a decision that comes from outside (an import in Vigil's
// format) and puts it in canonical form, with a manual decision's defaults.
func (d *Decision) admit(now time.Time) error {
	if _, err := ParseKind(string(d.Kind)); err != nil {
		return err
	}
	t, err := CanonicalTarget(d.Kind, d.Target)
	if err != nil {
		return err
	}
	d.Target = t
	if d.Kind != RevokeUser {
		d.Linked = Ref{} // only a revocation stores its link; a lock's is shown by Listing
	} else if d.Linked != (Ref{}) {
		if d.Linked.Target, err = CanonicalTarget(d.Linked.Kind, d.Linked.Target); err != nil {
			return fmt.Errorf("linked: %w", err)
		}
	}
	switch {
	case d.Until.IsZero():
		return errors.New(`"until" is required`)
	case d.Created.After(now.Add(clockSkew)):
		return errors.New(`"created" is in the future`)
	case len(d.Reason) > maxReasonBytes:
		return fmt.Errorf("reason is longer than %d bytes", maxReasonBytes)
	case d.Source != "" && d.Source != "auto" && d.Source != "admin":
		return fmt.Errorf(`source %q is neither "auto" nor "admin"`, d.Source)
	}
	if d.Created.IsZero() {
		d.Created = now
	} else if d.Until.Before(d.Created) {
		return errors.New(`"until" is before "created"`)
	}
	if d.Source == "" {
		d.Source = "admin"
	}
	d.Strike = max(d.Strike, 1)
	d.Site = detect.Display(d.Site)
	d.Created, d.Until = d.Created.UTC(), d.Until.UTC()
	return nil
}

// ParseKinds reads kind filters: each value one kind or a comma-separated
// list of them. Empty values select nothing in particular (every kind).
func ParseKinds(values []string) ([]Kind, error) {
	var kinds []Kind
	for _, v := range values {
		if v == "" {
			continue
		}
		for _, s := range strings.Split(v, ",") {
			k, err := ParseKind(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("%w (want block, lock, revoke_user or revoke_jti)", err)
			}
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

// DecisionFilter selects decisions for a listing or an export. The zero
// value selects every decision.
type DecisionFilter struct {
	kinds map[Kind]bool // nil: every kind
	// targets is the wanted target in the canonical form of each kind it
	// can name; nil: any target
	targets map[Kind]string
}

// NewDecisionFilter selects the decisions of kinds (none: every kind) for
// target (empty: any), compared in canonical form. A target that no
// selected kind can name (not an address for blocks, not a username for
// locks) is an error rather than a filter that matches nothing.
func NewDecisionFilter(kinds []Kind, target string) (DecisionFilter, error) {
	var f DecisionFilter
	if len(kinds) > 0 {
		f.kinds = map[Kind]bool{}
		for _, k := range kinds {
			f.kinds[k] = true
		}
	}
	if target == "" {
		return f, nil
	}
	f.targets = map[Kind]string{}
	var firstErr error
	for _, k := range []Kind{Block, Lock, RevokeUser, RevokeJTI} {
		if f.kinds != nil && !f.kinds[k] {
			continue
		}
		t, err := CanonicalTarget(k, target)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		f.targets[k] = t
	}
	if len(f.targets) == 0 {
		return f, fmt.Errorf("target: %w", firstErr)
	}
	return f, nil
}

// Match reports whether the filter selects d (in canonical form).
func (f DecisionFilter) Match(d Decision) bool {
	if f.kinds != nil && !f.kinds[d.Kind] {
		return false
	}
	if f.targets == nil {
		return true
	}
	t, ok := f.targets[d.Kind]
	return ok && t == d.Target
}

// Listing is what an operator sees of ds: every decision in canonical form,
// a lock showing the revocation it caused (only the revocation stores the
// link), and only those f selects. The order of ds is kept.
func Listing(ds []Decision, f DecisionFilter) []Decision {
	out := make([]Decision, 0, len(ds))
	revokedFor := map[string]string{} // a lock's target -> its revocation's
	for _, d := range ds {
		d = d.Canonical()
		if d.Kind == RevokeUser && d.Linked.Kind == Lock {
			revokedFor[d.Linked.Target] = d.Target
		}
		out = append(out, d)
	}
	selected := out[:0]
	for _, d := range out {
		if rv, ok := revokedFor[d.Target]; ok && d.Kind == Lock && d.Linked == (Ref{}) {
			d.Linked = Ref{Kind: RevokeUser, Target: rv}
		}
		if f.Match(d) {
			selected = append(selected, d)
		}
	}
	return selected
}
