package session

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// verifyCache remembers verified tokens by their SHA-256, so a busy session
// pays for a signature check (tens of microseconds for RSA) once, not per
// request. Only successful verifications are cached, never a token itself.
// An entry ends at the token's exp or after verifyCacheTTL, whichever comes
// first, so a key withdrawn from a JWKS stops verifying within that time.
// Revocation is not cached: it is checked on every request.
type verifyCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]cacheEntry
	max     int
}

type cacheEntry struct {
	id    *detect.Identity
	until time.Time
}

const verifyCacheTTL = 5 * time.Minute

func newVerifyCache(size int) *verifyCache {
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
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[h] = cacheEntry{id: id, until: until}
}

// evict drops expired entries and, if that is not enough, an arbitrary
// quarter (map order is random): a flood of distinct valid tokens costs
// re-verification, never memory.
func (c *verifyCache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
		}
	}
	drop := len(c.entries) - c.max*3/4
	for k := range c.entries {
		if drop <= 0 {
			break
		}
		delete(c.entries, k)
		drop--
	}
}

func (c *verifyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// CacheLen is how many verified tokens the cache holds (tests, metrics).
func (d *Detector) CacheLen() int { return d.cache.len() }
