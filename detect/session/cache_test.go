package session

import (
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
