package cli

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// `caddy vigil why <ip|user>`: every active decision on a subject and the
// events that led to it, from the admin API's decisions and events. An
// address is covered by a block of itself or of any range holding it (an
// IPv6 client is blocked by its /64); a user by a lock or a revocation of
// the account. The causes are the subject's events of the types that make
// such a decision, inside the window of the rule that made it (read from
// the event that announced the decision). This file matches decisions and
// events to a subject; why_query.go asks for them, why_text.go prints them.

// whyReport is what `why` prints (as JSON with --json).
type whyReport struct {
	Subject   string        `json:"subject"`
	As        string        `json:"as"` // "ip", "range" or "user"
	Decisions []whyDecision `json:"decisions"`
}

// whyDecision is one decision and its causes.
type whyDecision struct {
	respond.Decision
	Remaining string `json:"remaining"`
	// Trigger announced the decision: IP_BLOCKED, ACCOUNT_LOCKED,
	// SYSTEM_INTRUSION or SESSION_REVOKED, or the ADMIN_ACTION of a
	// manual one.
	Trigger *detect.Event `json:"trigger,omitempty"`
	// Window is how far before the decision its causes were looked for.
	Window string `json:"window"`
	// Events are the subject's events in that window, oldest first.
	Events    []detect.Event `json:"events"`
	Truncated bool           `json:"truncated,omitempty"` // older events were left out
}

// whySubject is an address, a range or a user.
type whySubject struct {
	raw    string
	addr   netip.Addr
	prefix netip.Prefix
	user   string
}

// parseWhySubject reads an address or a range as such, anything else (or
// anything, asUser) as a username.
func parseWhySubject(s string, asUser bool) whySubject {
	s = strings.TrimSpace(s)
	if !asUser {
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap().WithZone("")
			return whySubject{raw: a.String(), addr: a}
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			p = p.Masked()
			return whySubject{raw: p.String(), prefix: p}
		}
	}
	return whySubject{raw: s, user: s}
}

func (s whySubject) as() string {
	switch {
	case s.addr.IsValid():
		return "ip"
	case s.prefix.IsValid():
		return "range"
	}
	return "user"
}

// covers reports whether d applies to the subject.
func (s whySubject) covers(d respond.Decision) bool {
	switch d.Kind {
	case respond.Block:
		p, ok := blockPrefix(d.Target)
		switch {
		case !ok:
			return false
		case s.addr.IsValid():
			return p.Contains(s.addr)
		case s.prefix.IsValid():
			return p.Overlaps(s.prefix)
		}
	case respond.Lock, respond.RevokeUser:
		return s.user != "" && detect.AccountKey(d.Target) == detect.AccountKey(s.user)
	}
	return false
}

// filter is the events query that selects the subject's events; nil for a
// range.
func (s whySubject) filter() url.Values {
	switch {
	case s.addr.IsValid():
		return url.Values{"ip": {s.addr.String()}}
	case s.user != "":
		return url.Values{"user": {s.user}}
	}
	return nil
}

// blockPrefix reads a block's target, an address or a range.
func blockPrefix(target string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(target); err == nil {
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(target)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// adminActionOn reports whether e is the operator's action that made d.
func adminActionOn(e detect.Event, d respond.Decision) bool {
	target, _ := e.Details["target"].(string)
	action, _ := e.Details["action"].(string)
	return sameTarget(d.Kind, target, d.Target) && (action == string(d.Kind) || (action == "revoke" && d.Kind == respond.RevokeUser))
}

// eventAbout reports whether e is about d's target: an address inside a
// block, the account of a lock or revocation. It keeps a range's trigger
// search, which cannot filter by address, from another address's event.
func eventAbout(e detect.Event, d respond.Decision) bool {
	switch d.Kind {
	case respond.Block:
		p, ok := blockPrefix(d.Target)
		a, err := netip.ParseAddr(e.IP)
		return ok && err == nil && p.Contains(a.Unmap())
	case respond.Lock, respond.RevokeUser:
		return sameTarget(d.Kind, e.User, d.Target)
	}
	return true
}

// sameTarget compares targets as the store does: accounts by their
// canonical name (the event keeps what the operator typed, the decision the
// canonical form), addresses and ranges by their normal form.
func sameTarget(kind respond.Kind, a, b string) bool {
	switch kind {
	case respond.Lock, respond.RevokeUser:
		return detect.AccountKey(a) == detect.AccountKey(b)
	case respond.Block:
		na, errA := respond.NormalizeBlockTarget(a)
		nb, errB := respond.NormalizeBlockTarget(b)
		return errA == nil && errB == nil && na == nb
	}
	return a == b
}
