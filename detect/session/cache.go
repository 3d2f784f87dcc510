package session

import (
	"crypto/sha256"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// verifyCache remembers verified tokens by their SHA-256, so a busy session
// pays for a signature check (tens of microseconds for RSA) once, not per
// request. Only successful verifications are cached, never a token itself.
// An entry ends at the token's exp or after verifyCacheTTL, whichever comes
// first, so a key withdrawn from a JWKS stops verifying within that time.
// Revocation is not cached: it is checked on every request.
//
// It holds at most max entries. A full cache drops the expired entries and
// then the oldest verifications, down to three quarters of the bound, so a
// flood of distinct valid tokens costs re-verification, never memory, and
// the next puts do not each pay for a pass over the map. Live entries
// dropped are counted (Evicted) and reported to the hook set with
// OnCacheEvict.
type verifyCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]cacheEntry
	max     int
	seq     uint64 // put order, for evicting the oldest

	evicted atomic.Uint64
	onEvict atomic.Pointer[func(n int)]
}

type cacheEntry struct {
	id    *detect.Identity
	until time.Time
	seq   uint64
}

const verifyCacheTTL = 5 * time.Minute

func newVerifyCache(size int) *verifyCache {
	size = max(size, 1) // a negative size from JSON would evict past the map
	return &verifyCache{entries: make(map[[sha256.Size]byte]cacheEntry, min(size, 1024)), max: size}
}

func tokenHash(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// get returns the identity of a token verified earlier and still fresh.
func (c *verifyCache) get(h [sha256.Size]byte, now time.Time) (*detect.Identity, bool) {
	c.mu.RLock()
	e, ok := c.entries[h]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.id, true
}

// put caches a verified identity until its token expires (or the TTL).
func (c *verifyCache) put(h [sha256.Size]byte, id *detect.Identity, now time.Time) {
	until := now.Add(verifyCacheTTL)
	if id.Expires.Before(until) {
		until = id.Expires
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	evicted := 0
	if _, had := c.entries[h]; !had && len(c.entries) >= c.max {
		evicted = c.evict(now)
	}
	c.seq++
	c.entries[h] = cacheEntry{id: id, until: until, seq: c.seq}
	c.mu.Unlock()
	if evicted > 0 {
		c.evicted.Add(uint64(evicted))
		if f := c.onEvict.Load(); f != nil {
			(*f)(evicted)
		}
	}
}

// evict drops expired entries and, if that is not enough, the oldest
// verifications down to three quarters of the bound. It returns how many
// live entries it dropped. The caller holds the lock.
func (c *verifyCache) evict(now time.Time) int {
	var live []uint64
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
			continue
		}
		live = append(live, e.seq)
	}
	drop := len(c.entries) - c.max*3/4
	if drop <= 0 {
		return 0
	}
	// every entry whose put came at or before the drop-th oldest goes
	slices.Sort(live)
	cut := live[drop-1]
	for k, e := range c.entries {
		if e.seq <= cut {
			delete(c.entries, k)
		}
	}
	return drop
}

func (c *verifyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// CacheLen is how many verified tokens the cache holds (tests, metrics).
func (d *Detector) CacheLen() int { return d.cache.len() }

// CacheEvicted is how many live entries the verification cache has evicted
// to stay within its bound, since the detector was made.
func (d *Detector) CacheEvicted() uint64 { return d.cache.evicted.Load() }

// OnCacheEvict sets the hook told how many live entries the verification
// cache evicted each time it does (a metric: it must not block). It may be
// called at any time; nil removes the hook.
func (d *Detector) OnCacheEvict(f func(n int)) {
	if f == nil {
		d.cache.onEvict.Store(nil)
		return
	}
	d.cache.onEvict.Store(&f)
}
