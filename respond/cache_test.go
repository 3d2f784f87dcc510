package respond

import (
	"net/netip"
	"testing"
	"time"
)

func TestDecisionCacheBlocks(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	c := NewDecisionCache(nil)
	block := func(target string, d time.Duration) Decision {
		return Decision{Kind: Block, Target: target, Until: now.Add(d)}
	}
	c.Set(block("203.0.113.7", time.Hour))
	c.Set(block("198.51.100.0/24", time.Hour))
	c.Set(block("2001:db8:1:2::/64", time.Hour))
	c.Set(block("10.0.0.0/8", -time.Second)) // already over
	cases := map[string]bool{
		"203.0.113.7": true, "203.0.113.8": false,
		"198.51.100.1": true, "198.51.100.255": true, "198.51.101.1": false,
		"2001:db8:1:2::1": true, "2001:db8:1:2:ffff::9": true, "2001:db8:1:3::1": false,
		"10.1.2.3": false,
		// an IPv4 address never matches an IPv6 range of the same length
		"0.0.0.1": false,
	}
	for ip, want := range cases {
		if _, got := c.Blocked(netip.MustParseAddr(ip), now); got != want {
			t.Errorf("Blocked(%s) = %v, want %v", ip, got, want)
		}
	}
	c.Remove(Block, "198.51.100.0/24")
	if _, got := c.Blocked(netip.MustParseAddr("198.51.100.1"), now); got {
		t.Error("a lifted range still blocks")
	}
	c.Expire(now)
	if n := len(c.m.netBits); n != 1 {
		t.Errorf("prefix lengths in use after lifting and expiring: %v, want only /64", c.m.netBits)
	}
	c.Replace([]Decision{block("192.0.2.0/28", time.Hour)})
	if _, got := c.Blocked(netip.MustParseAddr("2001:db8:1:2::1"), now); got {
		t.Error("Replace kept an old range")
	}
	if _, got := c.Blocked(netip.MustParseAddr("192.0.2.9"), now); !got {
		t.Error("Replace lost the new range")
	}
}

// BenchmarkBlockedWithManyRanges: the lookup costs one map probe per prefix
// length in use, not one per blocked range.
func BenchmarkBlockedWithManyRanges(b *testing.B) {
	c := NewDecisionCache(nil)
	now := time.Now()
	var ds []Decision
	for i := 0; i < 100_000; i++ {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i)}), 64)
		ds = append(ds, Decision{Kind: Block, Target: p.String(), Until: now.Add(time.Hour)})
	}
	ds = append(ds, Decision{Kind: Block, Target: "198.51.100.0/24", Until: now.Add(time.Hour)})
	c.Replace(ds)
	ip := netip.MustParseAddr("203.0.113.50")
	b.ReportAllocs()
	for b.Loop() {
		c.Blocked(ip, now)
	}
}
