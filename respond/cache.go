package respond

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/gaissmai/bart"

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
	// nets holds the blocked ranges in a multibit trie: a lookup costs tens
	// of nanoseconds however many ranges of however many prefix lengths are
	// blocked (one map probe per length in use cost 10 µs per IPv6 request
	// with 100,000 imported ranges of mixed lengths)
	nets  *bart.Table[Decision]
	locks map[string]Decision // detect.AccountKey -> decision
	// session revocations: by user (detect.AccountKey) and by token ID
	revUsers map[string]Decision
	revJTIs  map[string]Decision
	// settled is, per kind, how many decisions the last eviction pass left
	// when manual ones kept it above the bound: see settle
	settled map[Kind]int
}

func newDecisionMaps() *decisionMaps {
	return &decisionMaps{
		addrs:    map[netip.Addr]Decision{},
		nets:     new(bart.Table[Decision]),
		locks:    map[string]Decision{},
		revUsers: map[string]Decision{},
		revJTIs:  map[string]Decision{},
		settled:  map[Kind]int{},
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
	if (!ok || !d.Active(now)) && m.nets.Size() > 0 {
		d, ok = m.nets.Lookup(ip)
		if ok && !d.Active(now) {
			// the longest range has ended but is not swept yet: a shorter
			// one may still be in force
			d, ok = m.activeCover(ip, now)
		}
	}
	c.mu.RUnlock()
	return d, ok && d.Active(now)
}

// activeCover is the first range in force among those that cover ip.
func (m *decisionMaps) activeCover(ip netip.Addr, now time.Time) (Decision, bool) {
	for _, d := range m.nets.Supernets(netip.PrefixFrom(ip, ip.BitLen())) {
		if d.Active(now) {
			return d, true
		}
	}
	return Decision{}, false
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
	d, ok := c.m.get(kind, target)
	return d, ok && d.Active(now)
}

// get is the decision held for exactly this target, in force or not.
func (m *decisionMaps) get(kind Kind, target string) (Decision, bool) {
	switch kind {
	case Lock:
		d, ok := m.locks[detect.AccountKey(target)]
		return d, ok
	case RevokeUser:
		d, ok := m.revUsers[detect.AccountKey(target)]
		return d, ok
	case RevokeJTI:
		d, ok := m.revJTIs[target]
		return d, ok
	case Block:
		if p, err := netip.ParsePrefix(target); err == nil {
			return m.nets.Get(p.Masked())
		} else if a, err := netip.ParseAddr(target); err == nil {
			d, ok := m.addrs[a]
			return d, ok
		}
	}
	return Decision{}, false
}

// Set adds or replaces a decision, evicting others of its kind beyond the
// bound.
func (c *DecisionCache) Set(d Decision) {
	c.mu.Lock()
	c.m.set(d)
	evicted := c.m.settle(d.Kind, d.Target, c.maxPerKind, c.now())
	c.report()
	c.mu.Unlock()
	c.evicted(StateDecisions, evicted)
}

// setManyChunk is how many decisions SetMany adds per hold of the lock, so
// that requests never wait long behind a bulk import.
const setManyChunk = 1024

// SetMany adds decisions in bulk (an import, a change of store), keeping
// any held for the same target that runs at least as long: a bulk write
// never shortens a ban. The bound is enforced once per chunk, not once
// per decision.
func (c *DecisionCache) SetMany(ds []Decision) {
	for len(ds) > 0 {
		chunk := ds[:min(len(ds), setManyChunk)]
		ds = ds[len(chunk):]
		kinds := map[Kind]bool{}
		evicted := 0
		c.mu.Lock()
		for _, d := range chunk {
			if cur, ok := c.m.get(d.Kind, d.Target); ok && !cur.Until.Before(d.Until) {
				continue
			}
			c.m.set(d)
			kinds[d.Kind] = true
		}
		now := c.now()
		for kind := range kinds {
			evicted += c.m.settle(kind, "", c.maxPerKind, now)
		}
		c.report()
		c.mu.Unlock()
		c.evicted(StateDecisions, evicted)
	}
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
			m.nets.Insert(p.Masked(), d)
		} else if a, err := netip.ParseAddr(d.Target); err == nil {
			m.addrs[a] = d
		}
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
			m.nets.Delete(p.Masked())
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
		m.settle(kind, "", c.maxPerKind, now)
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
	var ended []netip.Prefix // the trie is not changed while it is walked
	for p, d := range c.m.nets.All() {
		if !d.Active(now) {
			ended = append(ended, p)
		}
	}
	for _, p := range ended {
		c.m.nets.Delete(p)
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
	out := make([]Decision, 0, len(c.m.addrs)+c.m.nets.Size()+len(c.m.locks)+len(c.m.revUsers)+len(c.m.revJTIs))
	for _, d := range c.m.addrs {
		out = append(out, d)
	}
	for _, d := range c.m.nets.All() {
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
	c.onSize(Block, c.m.count(Block))
	c.onSize(Lock, len(c.m.locks))
	c.onSize(RevokeUser, len(c.m.revUsers))
	c.onSize(RevokeJTI, len(c.m.revJTIs))
}
