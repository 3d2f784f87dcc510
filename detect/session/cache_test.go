package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// TestVerifyCacheEntriesEndWithTheirToken: an entry never outlives its
// token's exp, nor verifyCacheTTL, and a full cache evicts rather than grows.
func TestVerifyCacheEntriesEndWithTheirToken(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newVerifyCache(8)
	short := &detect.Identity{User: "alice", Expires: now.Add(90 * time.Second)}
	c.put(tokenHash("short"), short, now)
	if e := c.entries[tokenHash("short")]; e.until.After(short.Expires) {
		t.Fatalf("entry until %v outlives its token (exp %v)", e.until, short.Expires)
	}
	if _, ok := c.get(tokenHash("short"), short.Expires); ok {
		t.Fatal("entry served at its token's exp")
	}
	long := &detect.Identity{User: "bob", Expires: now.Add(time.Hour)}
	c.put(tokenHash("long"), long, now)
	if _, ok := c.get(tokenHash("long"), now.Add(verifyCacheTTL)); ok {
		t.Fatal("entry served past the cache TTL")
	}
	expired := &detect.Identity{User: "carol", Expires: now.Add(-time.Second)}
	c.put(tokenHash("expired"), expired, now)
	if _, ok := c.entries[tokenHash("expired")]; ok {
		t.Fatal("an expired token was cached")
	}
	for i := 0; i < 50; i++ {
		c.put(tokenHash(string(rune('a'+i))), long, now)
	}
	if n := c.len(); n > 8 {
		t.Fatalf("cache grew to %d entries, bound 8", n)
	}
}

// TestVerifyCacheEvictsOldestFirst: a full cache drops expired entries
// (uncounted), then the oldest verifications down to three quarters of its
// bound, and counts and reports the live ones it dropped.
func TestVerifyCacheEvictsOldestFirst(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newVerifyCache(8)
	d := &Detector{cache: c}
	var reported int
	d.OnCacheEvict(func(n int) { reported += n })
	long := &detect.Identity{User: "bob", Expires: now.Add(time.Hour)}
	short := &detect.Identity{User: "eve", Expires: now.Add(time.Second)}
	c.put(tokenHash("short"), short, now)
	for i := 0; i < 7; i++ {
		c.put(tokenHash(fmt.Sprint("t", i)), long, now.Add(time.Duration(i)*time.Second))
	}
	if reported != 0 || c.len() != 8 {
		t.Fatalf("at the bound: %d entries, %d reported", c.len(), reported)
	}
	// t0 again: a refresh, not a new entry, and now the newest verification
	c.put(tokenHash("t0"), long, now.Add(7*time.Second))
	later := now.Add(8 * time.Second)
	c.put(tokenHash("new"), long, later)
	// "short" expired (uncounted), then the oldest, t1, went: 6 = 8*3/4
	// left, plus the new one
	if c.len() != 7 || reported != 1 || d.CacheEvicted() != 1 {
		t.Fatalf("%d entries, %d reported, %d counted; want 7, 1, 1", c.len(), reported, d.CacheEvicted())
	}
	for _, tok := range []string{"short", "t1"} {
		if _, ok := c.entries[tokenHash(tok)]; ok {
			t.Errorf("%s kept; it should be the first to go", tok)
		}
	}
	for _, tok := range []string{"t0", "t2", "t6", "new"} {
		if _, ok := c.get(tokenHash(tok), later); !ok {
			t.Errorf("%s evicted", tok)
		}
	}
	d.OnCacheEvict(nil)
	for i := 0; i < 20; i++ {
		c.put(tokenHash(fmt.Sprint("u", i)), long, later)
	}
	if reported != 1 || d.CacheEvicted() <= 1 {
		t.Fatalf("after removing the hook: %d reported, %d counted", reported, d.CacheEvicted())
	}
}
