package respond

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
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
	if n := c.m.nets.Size(); n != 1 {
		t.Errorf("ranges held after lifting and expiring: %d, want only the /64", n)
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

// randomRanges returns blocks of n distinct random ranges, half IPv4 (/8
// to /31, in 0.0.0.0/1), half IPv6 (/16 to /127, in 2001::/16): the prefix
// lengths of an imported blocklist at their most varied.
func randomRanges(n int, rng *rand.Rand, until time.Time) []Decision {
	ds := make([]Decision, 0, n)
	seen := map[netip.Prefix]bool{}
	for len(ds) < n {
		var p netip.Prefix
		if rng.IntN(2) == 0 {
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], rng.Uint32()>>1)
			p = netip.PrefixFrom(netip.AddrFrom4(a), 8+rng.IntN(24))
		} else {
			var a [16]byte
			binary.BigEndian.PutUint64(a[:8], 0x2001<<48|rng.Uint64()>>16)
			binary.BigEndian.PutUint64(a[8:], rng.Uint64())
			p = netip.PrefixFrom(netip.AddrFrom16(a), 16+rng.IntN(112))
		}
		if p = p.Masked(); !seen[p] {
			seen[p] = true
			ds = append(ds, Decision{Kind: Block, Target: p.String(), Source: "admin", Until: until})
		}
	}
	return ds
}

// BenchmarkBlockedWithMixedRanges: with 100,000 ranges of about 136
// prefix lengths (a bulk import), an address still costs one trie lookup,
// whether it is blocked or not, IPv4 or IPv6.
func BenchmarkBlockedWithMixedRanges(b *testing.B) {
	now := time.Now()
	ds := randomRanges(100_000, rand.New(rand.NewPCG(1, 2)), now.Add(time.Hour))
	c := NewDecisionCache(nil)
	c.Replace(ds)
	inside := func(target string) netip.Addr {
		p := netip.MustParsePrefix(target)
		return p.Addr().Next()
	}
	cases := []struct{ name, ip string }{
		{"ipv4-miss", "192.0.2.77"}, {"ipv6-miss", "3fff::1"},
		{"ipv4-hit", inside(ds[0].Target).String()}, {"ipv6-hit", inside(ds[1].Target).String()},
	}
	for _, tc := range cases {
		ip := netip.MustParseAddr(tc.ip)
		if _, hit := c.Blocked(ip, now); hit != strings.HasSuffix(tc.name, "hit") {
			b.Fatalf("%s: Blocked(%s) = %v", tc.name, ip, hit)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Blocked(ip, now)
			}
		})
	}
}

// TestBlockedFindsAShorterRangeBehindAnEndedOne: until the janitor sweeps
// an ended range, a shorter range in force that covers the same address
// still blocks it (the trie answers the longest match first).
func TestBlockedFindsAShorterRangeBehindAnEndedOne(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	c := NewDecisionCache(nil)
	c.Set(Decision{Kind: Block, Target: "198.51.100.0/24", Until: now.Add(time.Hour)})
	c.Set(Decision{Kind: Block, Target: "198.51.100.0/28", Until: now.Add(-time.Second)})
	c.Set(Decision{Kind: Block, Target: "198.51.100.9", Until: now.Add(-time.Second)})
	if d, ok := c.Blocked(netip.MustParseAddr("198.51.100.9"), now); !ok || d.Target != "198.51.100.0/24" {
		t.Fatalf("Blocked = %+v, %v; want the /24 in force", d, ok)
	}
}

// TestSetManyKeepsLongerAndSettlesOnce: a bulk write never shortens a
// decision already held, and a cache that manual decisions keep over its
// bound does not pass over the whole kind on every later Set.
func TestSetManyKeepsLongerAndSettlesOnce(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	log := evictionLog{}
	c := newDecisionCache(log.hooks())
	c.maxPerKind, c.now = 64, func() time.Time { return now }
	c.Set(Decision{Kind: Block, Target: "192.0.2.1", Source: "admin", Until: now.Add(time.Hour)})
	var ds []Decision
	for i := 0; i < 100; i++ {
		ds = append(ds, Decision{Kind: Block, Target: fmt.Sprintf("10.0.%d.0/24", i), Source: "admin", Until: now.Add(time.Minute)})
	}
	ds = append(ds, Decision{Kind: Block, Target: "192.0.2.1", Source: "admin", Until: now.Add(time.Minute)})
	c.SetMany(ds)
	if d, _ := c.Get(Block, "192.0.2.1", now); d.Until != now.Add(time.Hour) {
		t.Fatalf("SetMany shortened a block to %v", d.Until)
	}
	if got := c.m.count(Block); got != 101 || c.m.settled[Block] != 101 {
		t.Fatalf("%d blocks, settled at %d; want 101 manual ones kept over the bound", got, c.m.settled[Block])
	}
	// below bound/16 more, no pass; then one pass evicts the automatic ones
	for i := 0; i < 4; i++ {
		c.Set(Decision{Kind: Block, Target: fmt.Sprintf("203.0.113.%d", i), Source: "auto", Until: now.Add(time.Hour)})
	}
	if got := c.m.count(Block); got != 105 || log[StateDecisions] != 0 {
		t.Fatalf("%d blocks, evictions %v: a pass ran before bound/16 more arrived", got, log)
	}
	c.Set(Decision{Kind: Block, Target: "203.0.113.9", Source: "auto", Until: now.Add(time.Hour)})
	if got := c.m.count(Block); got != 102 || log[StateDecisions] != 4 {
		t.Fatalf("%d blocks, evictions %v after the pass; want 102 and 4", got, log)
	}
}

// evictionLog records what a store reports through Hooks.Evicted.
type evictionLog map[string]int

func (l evictionLog) hooks() Hooks {
	return Hooks{Evicted: func(state string, n int) { l[state] += n }}
}

// TestDecisionCacheBound: beyond its bound per kind, the cache drops the
// expired decisions (uncounted), then the automatic ones that end soonest,
// down to 15/16 of the bound; never a manual one, nor the one just set,
// and other kinds are untouched.
func TestDecisionCacheBound(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	log := evictionLog{}
	c := newDecisionCache(log.hooks())
	c.maxPerKind, c.now = 32, func() time.Time { return now } // evicts down to 30
	block := func(i int, ends time.Duration, source string) Decision {
		return Decision{Kind: Block, Target: fmt.Sprintf("192.0.2.%d", i), Source: source, Until: now.Add(ends)}
	}
	// two manual blocks that end first of all, one already expired block,
	// then automatic ones ending 1..29 minutes from now
	c.Set(block(200, time.Second, "admin"))
	c.Set(block(201, time.Second, "admin"))
	c.Set(block(202, -time.Second, "auto"))
	for i := 1; i <= 29; i++ {
		c.Set(block(i, time.Duration(i)*time.Minute, "auto"))
	}
	c.Set(Decision{Kind: Lock, Target: "alice", Source: "auto", Until: now.Add(time.Second)})
	if len(log) != 0 || c.m.count(Block) != 32 {
		t.Fatalf("at the bound: evictions %v, %d blocks", log, c.m.count(Block))
	}
	// one more, ending sooner than any: the expired one goes uncounted, then
	// the auto blocks ending at 1 and 2 minutes; the new one stays
	c.Set(block(100, 30*time.Second, "auto"))
	if got := c.m.count(Block); got != 30 {
		t.Fatalf("%d blocks after the overflow, want 30", got)
	}
	if log[StateDecisions] != 2 {
		t.Fatalf("evictions reported %v, want 2 decisions", log)
	}
	for _, ip := range []string{"192.0.2.202", "192.0.2.1", "192.0.2.2"} {
		if _, ok := c.Get(Block, ip, now.Add(-time.Hour)); ok {
			t.Errorf("%s kept; it should be the first to go", ip)
		}
	}
	for _, ip := range []string{"192.0.2.200", "192.0.2.201", "192.0.2.100", "192.0.2.3"} {
		if _, ok := c.Get(Block, ip, now); !ok {
			t.Errorf("%s evicted (manual, just set, or not among the soonest)", ip)
		}
	}
	if _, ok := c.Locked("alice", now); !ok {
		t.Error("a lock went for a flood of blocks")
	}
	// a resync that brings more than the bound trims to it without counting
	var ds []Decision
	for i := 1; i <= 40; i++ {
		ds = append(ds, block(i, time.Duration(i)*time.Minute, "auto"))
	}
	c.Replace(ds)
	if got := c.m.count(Block); got != 30 || log[StateDecisions] != 2 {
		t.Fatalf("after Replace: %d blocks, evictions %v", got, log)
	}
	if _, ok := c.Get(Block, "192.0.2.40", now); !ok {
		t.Error("Replace dropped the longest-running block")
	}
}

// TestDecisionCacheManualOverBound: manual decisions are never evicted,
// even beyond the bound.
func TestDecisionCacheManualOverBound(t *testing.T) {
	now := time.Now()
	log := evictionLog{}
	c := newDecisionCache(log.hooks())
	c.maxPerKind = 4
	for i := 0; i < 10; i++ {
		c.Set(Decision{Kind: Lock, Target: fmt.Sprintf("user%d", i), Source: "admin", Until: now.Add(time.Hour)})
	}
	if c.m.count(Lock) != 10 || len(log) != 0 {
		t.Fatalf("%d manual locks held, evictions %v", c.m.count(Lock), log)
	}
}

// TestStrikeBookBound: beyond its bound the book drops expired records
// (uncounted), then the ones struck least recently; the key just struck
// keeps its count.
func TestStrikeBookBound(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	evicted := 0
	b := newStrikeBook(func(n int) { evicted += n })
	b.max = 32 // evicts down to 30
	b.m["stale"] = strikeRecord{n: 3, expires: now.Add(-time.Second)}
	for i := 0; i < 31; i++ {
		b.next(fmt.Sprintf("k%d", i), now.Add(time.Duration(i)*time.Minute), time.Hour)
	}
	if len(b.m) != 32 || evicted != 0 {
		t.Fatalf("at the bound: %d records, %d evicted", len(b.m), evicted)
	}
	// k0 again: its second strike, then three new keys overflow the book
	at := now.Add(time.Hour)
	if s := b.next("k0", at, time.Hour); s != 2 {
		t.Fatalf("k0 strike %d, want 2", s)
	}
	b.next("new", at, time.Hour)
	if len(b.m) != 30 || evicted != 2 {
		t.Fatalf("after the overflow: %d records, %d evicted, want 30 and 2", len(b.m), evicted)
	}
	for _, k := range []string{"stale", "k1", "k2"} {
		if _, ok := b.m[k]; ok {
			t.Errorf("%s kept; it should be the first to go", k)
		}
	}
	if b.m["k0"].n != 2 || b.m["new"].n != 1 || b.m["k3"].n != 1 {
		t.Fatalf("records lost: %+v %+v %+v", b.m["k0"], b.m["new"], b.m["k3"])
	}
	b.forget("k0")
	if _, ok := b.m["k0"]; ok {
		t.Fatal("forget kept the record")
	}
}

// TestMemoryDecisionsReportStrikeEvictions: the memory store's strikes
// report through the store's hook under their own label.
func TestMemoryDecisionsReportStrikeEvictions(t *testing.T) {
	log := evictionLog{}
	d := NewMemoryDecisions(newDecisionCache(log.hooks()))
	d.strikes.max = 16
	now := time.Now()
	for i := 0; i < 20; i++ {
		if _, _, err := d.Impose(context.Background(), Decision{Kind: Block, Target: fmt.Sprintf("198.51.100.%d", i), Source: "auto"}, time.Minute, time.Hour, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if log[StateStrikes] == 0 || len(d.strikes.m) > 16 {
		t.Fatalf("evictions %v, %d strike records", log, len(d.strikes.m))
	}
}

// TestPendingBound: during an outage RedisDecisions holds at most its bound
// of writes to replay, dropping expired ones and then the automatic ones
// that end soonest, never a lift, a manual decision or the write just made.
func TestPendingBound(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	log := evictionLog{}
	r := &RedisDecisions{hooks: log.hooks(), pending: map[string]pendingOp{}, maxPending: 16} // down to 15
	add := func(key string, op pendingOp) { r.queuePending(key, op, now) }
	auto := func(i int, ends time.Duration) pendingOp {
		return pendingOp{d: Decision{Kind: Block, Target: fmt.Sprint(i), Source: "auto", Until: now.Add(ends)}}
	}
	add("lift", pendingOp{d: Decision{Kind: Block, Target: "x"}, lift: true})
	add("admin", pendingOp{d: Decision{Kind: Lock, Target: "y", Source: "admin", Until: now.Add(time.Second)}})
	add("expired", auto(0, -time.Second))
	for i := 1; i <= 13; i++ {
		add(fmt.Sprint(i), auto(i, time.Duration(i)*time.Minute))
	}
	if len(r.pending) != 16 || len(log) != 0 {
		t.Fatalf("at the bound: %d pending, evictions %v", len(r.pending), log)
	}
	// ends soonest of all, but is the write just made: the expired one goes
	// uncounted, then the soonest automatic one
	add("last", auto(99, time.Second))
	if len(r.pending) != 15 || log[StatePending] != 1 {
		t.Fatalf("%d pending, evictions %v; want 15 and 1", len(r.pending), log)
	}
	for _, k := range []string{"expired", "1"} {
		if _, ok := r.pending[k]; ok {
			t.Errorf("%s kept; it should be the first to go", k)
		}
	}
	for _, k := range []string{"lift", "admin", "last", "2"} {
		if _, ok := r.pending[k]; !ok {
			t.Errorf("%s dropped", k)
		}
	}
}

func TestHooksEvictionsNil(t *testing.T) {
	if (Hooks{}).evictions(StateSums) != nil {
		t.Fatal("a hook without a listener: the stores would call it for nothing")
	}
}
