package geo

import (
	"net/netip"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// sessionCache remembers, per token, the address it was last judged from,
// so a token used again and again from one address costs a map lookup and
// no store round trip. It holds at most max tokens: a full cache drops the
// expired entries and then arbitrary ones down to three quarters of the
// bound, so a flood of tokens costs store round trips, never memory.
type sessionCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	max     int
}

type cacheEntry struct {
	ip    netip.Addr
	until int64 // Unix ns: the token's expiry
}

// maxCachedID is the longest token ID used as a cache key as it is; a
// longer one is hashed, so the cache's memory stays bounded.
const maxCachedID = 128

func newSessionCache(size int) *sessionCache {
	size = max(size, 1)
	return &sessionCache{entries: make(map[string]cacheEntry, min(size, 1024)), max: size}
}

func cacheKey(jti string) string {
	if len(jti) > maxCachedID {
		return detect.HashID("jti", jti)
	}
	return jti
}

// seen reports whether jti was last judged from ip and has not expired.
func (c *sessionCache) seen(jti string, ip netip.Addr, now time.Time) bool {
	k := cacheKey(jti)
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	return ok && e.ip == ip && now.UnixNano() < e.until
}

// put remembers at now that jti was judged from ip, until the token
// expires.
func (c *sessionCache) put(jti string, ip netip.Addr, now, until time.Time) {
	k := cacheKey(jti)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, had := c.entries[k]; !had && len(c.entries) >= c.max {
		c.evict(now.UnixNano())
	}
	c.entries[k] = cacheEntry{ip: ip, until: until.UnixNano()}
}

// evict makes room; the caller holds the lock.
func (c *sessionCache) evict(now int64) {
	for k, e := range c.entries {
		if e.until <= now {
			delete(c.entries, k)
		}
	}
	keep := c.max * 3 / 4
	for k := range c.entries {
		if len(c.entries) <= keep {
			break
		}
		delete(c.entries, k)
	}
}

// len is the number of cached tokens, for tests.
func (c *sessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
