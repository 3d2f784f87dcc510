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
//
// It holds at most maxPerKind decisions of each kind (address and range
// blocks count together), so a flood of automatic bans cannot grow memory
// without bound: see evict. An evicted ban is no longer enforced by this
// instance; the counters behind it ban the attacker again if it persists.
type DecisionCache struct {
	mu         sync.RWMutex
	m          *decisionMaps
	onSize     func(kind Kind, n int)
	onEvict    func(state string, n int) // Hooks.Evicted; nil when nobody counts
	maxPerKind int                       // DefaultMaxDecisions; smaller in tests
	now        func() time.Time          // tells expired from live victims
}

// DefaultMaxDecisions bounds the decisions a DecisionCache holds per kind,
// and the outage writes RedisDecisions holds for replay.
const DefaultMaxDecisions = 100_000

// newDecisionCache is the cache of a Store: it reports its size and its
// evictions through hooks.
func newDecisionCache(hooks Hooks) *DecisionCache {
	c := NewDecisionCache(hooks.DecisionCount)
	c.onEvict = hooks.Evicted
	return c
}

// evicted reports n entries of state evicted; the decision stores report
// their strikes through the cache's hook too.
func (c *DecisionCache) evicted(state string, n int) {
	if n > 0 && c.onEvict != nil {
		c.onEvict(state, n)
	}
}

// decisionMaps is the content of a DecisionCache; a full resynchronisation
// builds a new one outside the lock and swaps it in, so requests never wait
// on the rebuild.
type decisionMaps struct {
	addrs map[netip.Addr]Decision
	nets  map[netip.Prefix]Decision
	// netBits counts the blocked ranges per prefix length, so a lookup
	// tries one map key per length in use instead of scanning every range
	netBits map[int]int
	locks   map[string]Decision // detect.AccountKey -> decision
	// session revocations: by user (detect.AccountKey) and by token ID
	revUsers map[string]Decision
	revJTIs  map[string]Decision
}

func newDecisionMaps() *decisionMaps {
	return &decisionMaps{
		addrs:    map[netip.Addr]Decision{},
		nets:     map[netip.Prefix]Decision{},
		netBits:  map[int]int{},
		locks:    map[string]Decision{},
		revUsers: map[string]Decision{},
		revJTIs:  map[string]Decision{},
	}
}

// NewDecisionCache returns an empty cache. onSize, when set, is told the
// number of decisions of a kind after every change (for a gauge).
func NewDecisionCache(onSize func(kind Kind, n int)) *DecisionCache {
	return &DecisionCache{m: newDecisionMaps(), onSize: onSize, maxPerKind: DefaultMaxDecisions, now: time.Now}
}

// Blocked returns the block that covers ip at now, if any.
func (c *DecisionCache) Blocked(ip netip.Addr, now time.Time) (Decision, bool) {
	c.mu.RLock()
	m := c.m
	d, ok := m.addrs[ip]
	if !ok && len(m.netBits) > 0 {
		for bits := range m.netBits {
			if bits > ip.BitLen() {
				continue
			}
			p, _ := ip.Prefix(bits)
			if nd, found := m.nets[p]; found && nd.Active(now) {
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
	d, ok := c.m.locks[key]
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
	if len(c.m.revUsers) == 0 && len(c.m.revJTIs) == 0 {
		return Decision{}, false
	}
	if jti != "" {
		if d, ok := c.m.revJTIs[jti]; ok && d.Active(now) {
			return d, true
		}
	}
	if userKey != "" {
		if d, ok := c.m.revUsers[userKey]; ok && d.Active(now) && (issued.IsZero() || issued.Unix() <= d.Created.Unix()) {
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
		d, ok = c.m.locks[detect.AccountKey(target)]
	case RevokeUser:
		d, ok = c.m.revUsers[detect.AccountKey(target)]
	case RevokeJTI:
		d, ok = c.m.revJTIs[target]
	case Block:
		if p, err := netip.ParsePrefix(target); err == nil {
			d, ok = c.m.nets[p.Masked()]
		} else if a, err := netip.ParseAddr(target); err == nil {
			d, ok = c.m.addrs[a]
		}
	}
	return d, ok && d.Active(now)
}

// Set adds or replaces a decision, evicting others of its kind beyond the
// bound.
func (c *DecisionCache) Set(d Decision) {
	c.mu.Lock()
	c.m.set(d)
	evicted := 0
	if c.m.count(d.Kind) > c.maxPerKind {
		evicted = c.m.evict(d.Kind, d.Target, c.maxPerKind, c.now())
	}
	c.report()
	c.mu.Unlock()
	c.evicted(StateDecisions, evicted)
}

func (m *decisionMaps) set(d Decision) {
	switch d.Kind {
	case Lock:
		m.locks[detect.AccountKey(d.Target)] = d
	case RevokeUser:
		m.revUsers[detect.AccountKey(d.Target)] = d
	case RevokeJTI:
		m.revJTIs[d.Target] = d
	case Block:
		if p, err := netip.ParsePrefix(d.Target); err == nil {
			p = p.Masked()
			if _, had := m.nets[p]; !had {
				m.netBits[p.Bits()]++
			}
			m.nets[p] = d
		} else if a, err := netip.ParseAddr(d.Target); err == nil {
			m.addrs[a] = d
		}
	}
}

func (m *decisionMaps) deleteNet(p netip.Prefix) {
	if _, had := m.nets[p]; !had {
		return
	}
	delete(m.nets, p)
	if m.netBits[p.Bits()]--; m.netBits[p.Bits()] == 0 {
		delete(m.netBits, p.Bits())
	}
}

// Remove drops the decision for a target.
func (c *DecisionCache) Remove(kind Kind, target string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.remove(kind, target)
	c.report()
}

func (m *decisionMaps) remove(kind Kind, target string) {
	switch kind {
	case Lock:
		delete(m.locks, detect.AccountKey(target))
	case RevokeUser:
		delete(m.revUsers, detect.AccountKey(target))
	case RevokeJTI:
		delete(m.revJTIs, target)
	case Block:
		if p, err := netip.ParsePrefix(target); err == nil {
			m.deleteNet(p.Masked())
		} else if a, err := netip.ParseAddr(target); err == nil {
			delete(m.addrs, a)
		}
	}
}

// Replace swaps the whole content for ds (a full resynchronisation). The
// new content is built, and trimmed to the bound, before the lock is taken.
// Decisions trimmed here are not counted as evictions: a resync finds the
// same surplus in Redis every few seconds, and each decision was counted
// when Set evicted it on its arrival.
func (c *DecisionCache) Replace(ds []Decision) {
	m := newDecisionMaps()
	for _, d := range ds {
		m.set(d)
	}
	now := c.now()
	for _, kind := range []Kind{Block, Lock, RevokeUser, RevokeJTI} {
		if m.count(kind) > c.maxPerKind {
			m.evict(kind, "", c.maxPerKind, now)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = m
	c.report()
}

// Expire drops decisions that ended before now.
func (c *DecisionCache) Expire(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.m.addrs {
		if !d.Active(now) {
			delete(c.m.addrs, k)
		}
	}
	for k, d := range c.m.nets {
		if !d.Active(now) {
			c.m.deleteNet(k)
		}
	}
	for _, m := range []map[string]Decision{c.m.locks, c.m.revUsers, c.m.revJTIs} {
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
	out := make([]Decision, 0, len(c.m.addrs)+len(c.m.nets)+len(c.m.locks)+len(c.m.revUsers)+len(c.m.revJTIs))
	for _, d := range c.m.addrs {
		out = append(out, d)
	}
	for _, d := range c.m.nets {
		out = append(out, d)
	}
	for _, m := range []map[string]Decision{c.m.locks, c.m.revUsers, c.m.revJTIs} {
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
	c.onSize(Block, len(c.m.addrs)+len(c.m.nets))
	c.onSize(Lock, len(c.m.locks))
	c.onSize(RevokeUser, len(c.m.revUsers))
	c.onSize(RevokeJTI, len(c.m.revJTIs))
}
