package respond

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// DecisionCache is the in-process view of the active decisions that the
// request path reads: one map lookup per request, no network call. Stores
// keep it up to date, including with decisions made by other instances.
type DecisionCache struct {
	mu    sync.RWMutex
	addrs map[netip.Addr]Decision
	nets  map[netip.Prefix]Decision
	locks map[string]Decision // detect.AccountKey -> decision
	// session revocations: by user (detect.AccountKey) and by token ID
	revUsers map[string]Decision
	revJTIs  map[string]Decision
	onSize   func(kind Kind, n int)
}

// NewDecisionCache returns an empty cache. onSize, when set, is told the
// number of decisions of a kind after every change (for a gauge).
func NewDecisionCache(onSize func(kind Kind, n int)) *DecisionCache {
	return &DecisionCache{
		addrs:    map[netip.Addr]Decision{},
		nets:     map[netip.Prefix]Decision{},
		locks:    map[string]Decision{},
		revUsers: map[string]Decision{},
		revJTIs:  map[string]Decision{},
		onSize:   onSize,
	}
}

// Blocked returns the block that covers ip at now, if any.
func (c *DecisionCache) Blocked(ip netip.Addr, now time.Time) (Decision, bool) {
	c.mu.RLock()
	d, ok := c.addrs[ip]
	if !ok && len(c.nets) > 0 {
		for p, nd := range c.nets {
			if p.Contains(ip) && nd.Active(now) {
				d, ok = nd, true
				break
			}
		}
	}
	c.mu.RUnlock()
	return d, ok && d.Active(now)
}

// Locked returns the lock on an account at now, if any.
func (c *DecisionCache) Locked(user string, now time.Time) (Decision, bool) {
	key := detect.AccountKey(user)
	c.mu.RLock()
	d, ok := c.locks[key]
	c.mu.RUnlock()
	return d, ok && d.Active(now)
}

// SessionRevoked reports the revocation that ends a verified session, if
// any: one for its token ID, or one for its user made at or after the time
// the token was issued. userKey is detect.AccountKey of the session's user
// (computed once per token by the caller, not per request); issued is the
// token's "iat", zero when it has none, and such a token counts as issued
// before any user revocation. Times compare at whole seconds, as "iat" is
// written: a token issued in the same second as the revocation is revoked
// too, erring on the side of ending a session.
func (c *DecisionCache) SessionRevoked(userKey, jti string, issued, now time.Time) (Decision, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.revUsers) == 0 && len(c.revJTIs) == 0 {
		return Decision{}, false
	}
	if jti != "" {
		if d, ok := c.revJTIs[jti]; ok && d.Active(now) {
			return d, true
		}
	}
	if userKey != "" {
		if d, ok := c.revUsers[userKey]; ok && d.Active(now) && (issued.IsZero() || issued.Unix() <= d.Created.Unix()) {
			return d, true
		}
	}
	return Decision{}, false
}

// Get returns the active decision for exactly this target, if any.
func (c *DecisionCache) Get(kind Kind, target string, now time.Time) (Decision, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var d Decision
	var ok bool
	switch kind {
	case Lock:
		d, ok = c.locks[detect.AccountKey(target)]
	case RevokeUser:
		d, ok = c.revUsers[detect.AccountKey(target)]
	case RevokeJTI:
		d, ok = c.revJTIs[target]
	case Block:
		if p, err := netip.ParsePrefix(target); err == nil {
			d, ok = c.nets[p]
		} else if a, err := netip.ParseAddr(target); err == nil {
			d, ok = c.addrs[a]
		}
	}
	return d, ok && d.Active(now)
}

// Set adds or replaces a decision.
func (c *DecisionCache) Set(d Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(d)
	c.report()
}

func (c *DecisionCache) setLocked(d Decision) {
	switch d.Kind {
	case Lock:
		c.locks[detect.AccountKey(d.Target)] = d
	case RevokeUser:
		c.revUsers[detect.AccountKey(d.Target)] = d
	case RevokeJTI:
		c.revJTIs[d.Target] = d
	case Block:
		if p, err := netip.ParsePrefix(d.Target); err == nil {
			c.nets[p] = d
		} else if a, err := netip.ParseAddr(d.Target); err == nil {
			c.addrs[a] = d
		}
	}
}

// Remove drops the decision for a target.
func (c *DecisionCache) Remove(kind Kind, target string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch kind {
	case Lock:
		delete(c.locks, detect.AccountKey(target))
	case RevokeUser:
		delete(c.revUsers, detect.AccountKey(target))
	case RevokeJTI:
		delete(c.revJTIs, target)
	case Block:
		if p, err := netip.ParsePrefix(target); err == nil {
			delete(c.nets, p)
		} else if a, err := netip.ParseAddr(target); err == nil {
			delete(c.addrs, a)
		}
	}
	c.report()
}

// Replace swaps the whole content for ds (a full resynchronisation).
func (c *DecisionCache) Replace(ds []Decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.addrs)
	clear(c.nets)
	clear(c.locks)
	clear(c.revUsers)
	clear(c.revJTIs)
	for _, d := range ds {
		c.setLocked(d)
	}
	c.report()
}

// Expire drops decisions that ended before now.
func (c *DecisionCache) Expire(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.addrs {
		if !d.Active(now) {
			delete(c.addrs, k)
		}
	}
	for k, d := range c.nets {
		if !d.Active(now) {
			delete(c.nets, k)
		}
	}
	for _, m := range []map[string]Decision{c.locks, c.revUsers, c.revJTIs} {
		for k, d := range m {
			if !d.Active(now) {
				delete(m, k)
			}
		}
	}
	c.report()
}

// List returns the active decisions, soonest to expire first.
func (c *DecisionCache) List(now time.Time) []Decision {
	c.mu.RLock()
	out := make([]Decision, 0, len(c.addrs)+len(c.nets)+len(c.locks)+len(c.revUsers)+len(c.revJTIs))
	for _, d := range c.addrs {
		out = append(out, d)
	}
	for _, d := range c.nets {
		out = append(out, d)
	}
	for _, m := range []map[string]Decision{c.locks, c.revUsers, c.revJTIs} {
		for _, d := range m {
			out = append(out, d)
		}
	}
	c.mu.RUnlock()
	active := out[:0]
	for _, d := range out {
		if d.Active(now) {
			active = append(active, d)
		}
	}
	sortDecisions(active)
	return active
}

func sortDecisions(ds []Decision) {
	sort.Slice(ds, func(i, j int) bool {
		if !ds[i].Until.Equal(ds[j].Until) {
			return ds[i].Until.Before(ds[j].Until)
		}
		return ds[i].Key() < ds[j].Key()
	})
}

func (c *DecisionCache) report() {
	if c.onSize == nil {
		return
	}
	c.onSize(Block, len(c.addrs)+len(c.nets))
	c.onSize(Lock, len(c.locks))
	c.onSize(RevokeUser, len(c.revUsers))
	c.onSize(RevokeJTI, len(c.revJTIs))
}
