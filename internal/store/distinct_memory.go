package store

import (
	"context"
	"github.com/vigilsec/vigil/detect/data/query"
	"hash/maphash"
	"sync"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// The distinct counters (MemoryDistinct, RedisDistinct) cut a window into
// distinctBuckets time buckets, one HyperLogLog each, and count the union
// of the buckets that overlap the window. A bucket therefore leaves the
// count whole, so the count covers at least the window and at most the
// window plus one bucket (a quarter more): the price of counting millions
// of members in a few kilobytes. Buckets sit in a ring of distinctSlots
// slots so that every key of a subject has a name known in advance, which
// lets Forget delete them without scanning.
const (
	distinctBuckets = 4
	distinctSlots   = distinctBuckets + 1
)

// distinctSpan places a time on the bucket grid of a window. Buckets start
// on multiples of their width since the epoch, so every instance and both
// implementations agree on them.
type distinctSpan struct {
	width  int64 // bucket width, µs
	start  int64 // start of the bucket holding now, µs
	oldest int64 // start of the oldest bucket still counted, µs
	slot   int   // the ring slot of the current bucket
}

// distinctSpanOf returns the span of now in window; false when the window
// is too short to count anything (under distinctBuckets µs).
func distinctSpanOf(window time.Duration, now time.Time) (distinctSpan, bool) {
	w := window.Microseconds()
	if w < distinctBuckets {
		return distinctSpan{}, false
	}
	width := (w + distinctBuckets - 1) / distinctBuckets
	t := now.UnixMicro()
	n := t / width
	if t%width < 0 {
		n-- // floor for times before the epoch
	}
	slot := int(n % distinctSlots)
	if slot < 0 {
		slot += distinctSlots
	}
	start := n * width
	return distinctSpan{width: width, start: start, oldest: start - distinctBuckets*width, slot: slot}, true
}

// ttl is how long a bucket must live after its last write: until it has
// slid out of the window, window + width from its start at most.
func (s distinctSpan) ttl() time.Duration {
	return time.Duration(s.width*distinctSlots) * time.Microsecond
}

// MemoryDistinct is the in-process distinct counter (query.Distinct): the
// store of a single instance and the fallback of the Redis one.
//
// A key counts exactly while it has seen few members (up to exactMembers:
// a map of member hash to its last bucket), which is where limits are
// usually set and costs a map update per Add. Beyond that it turns into
// the ring of HyperLogLogs of RedisDistinct (github.com/axiomhq/
// hyperloglog, precision 14 like Redis, sparse while small) with a cached
// union of the live buckets. An estimate of a HyperLogLog walks its
// registers (hundreds of µs), so the union is estimated again only once
// the additions since the last estimate reach 1/64 of it; in between, the
// count is that estimate plus those additions (at most 1.6 % high, under
// HyperLogLog's own error at the 5,000 members where that matters).
//
// Its memory is bounded: at most maxKeys keys. Beyond that, keys whose
// window has passed go first, then the least recently updated half; each
// live key evicted is reported to onEvict. A key holds at most about
// 16 KiB per bucket (the dense registers).
type MemoryDistinct struct {
	mu      sync.Mutex
	entries map[string]*distinctEntry // kind:key
	ops     int
	maxKeys int // maxDistinctKeys; smaller in tests
	onEvict func(n int)
}

// exactMembers is how many members a key counts exactly before it turns
// into HyperLogLogs.
const exactMembers = 512

// distinctEntry is one key's count: exact while small, then a ring of
// HyperLogLogs.
type distinctEntry struct {
	width   int64
	newest  int64            // the newest bucket start added to, µs
	exact   map[uint64]int64 // member hash -> last bucket start; nil once approximate
	swept   int64            // exact members older than it are gone
	starts  [distinctSlots]int64
	buckets [distinctSlots]*hyperloglog.Sketch
	// union holds the buckets whose starts lie in [unionFrom, unionTo]; it
	// is rebuilt when that range moves, once per bucket.
	union              *hyperloglog.Sketch
	unionFrom, unionTo int64
	est, pending       int64 // the union's last estimate; additions since
	expires            int64 // µs: when the newest bucket leaves the window
	updated            int64 // µs: the last Add, for evicting the least recent
}

// maxDistinctKeys bounds the keys held, as maxWindowKeys does for windows.
const maxDistinctKeys = 100_000

// NewMemoryDistinct returns an empty counter; onEvict (may be nil) is told,
// without the lock held, how many live keys were evicted to stay within the
// bound.
func NewMemoryDistinct(onEvict func(n int)) *MemoryDistinct {
	return &MemoryDistinct{entries: map[string]*distinctEntry{}, maxKeys: maxDistinctKeys, onEvict: onEvict}
}

// Add implements query.Distinct. A window under 4µs counts nothing.
func (m *MemoryDistinct) Add(_ context.Context, sp query.Span, key, member string, now time.Time) (int64, error) {
	kind := sp.Kind
	s, ok := distinctSpanOf(sp.Within, now)
	if !ok {
		return 0, nil
	}
	k := kind + ":" + key
	m.mu.Lock()
	e := m.entries[k]
	if e == nil || e.width != s.width || e.expires <= now.UnixMicro() {
		// new, or a different window (the buckets would not line up), or
		// everything has left the window: start exact again
		e = &distinctEntry{width: s.width, newest: s.start - distinctSlots*s.width, swept: s.oldest}
		m.entries[k] = e
	}
	n := e.add(s, member)
	e.updated = now.UnixMicro()
	m.ops++
	evicted := 0
	if overflow := len(m.entries) > m.maxKeys; overflow || m.ops%4096 == 0 {
		evicted = m.sweep(now.UnixMicro(), overflow)
	}
	m.mu.Unlock()
	if evicted > 0 && m.onEvict != nil {
		m.onEvict(evicted)
	}
	return n, nil
}

// Forget implements query.Distinct.
func (m *MemoryDistinct) Forget(_ context.Context, kind, key string) error {
	m.mu.Lock()
	delete(m.entries, kind+":"+key)
	m.mu.Unlock()
	return nil
}

// Len reports how many keys are held, for tests.
func (m *MemoryDistinct) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// seed hashes members: one per process, the counts never leave it.
var seed = maphash.MakeSeed()

// add counts member in the bucket of s and returns the distinct members
// of the live buckets. Both modes follow the Redis script
// (distinctAddScript): a clock a whole ring behind the newest bucket adds
// nothing, and the buckets counted start in [s.oldest, s.start].
func (e *distinctEntry) add(s distinctSpan, member string) int64 {
	h := maphash.String(seed, member)
	insert := s.start > e.newest-distinctSlots*e.width // else a whole ring behind: count only
	if insert {
		e.newest = max(e.newest, s.start)
		e.expires = e.newest + s.width*distinctSlots
	}
	if e.exact == nil && e.buckets == [distinctSlots]*hyperloglog.Sketch{} {
		e.exact = map[uint64]int64{}
	}
	if e.exact != nil {
		if n, ok := e.addExact(s, h, insert); ok {
			return n
		}
	}
	return e.addApprox(s, h, insert)
}

// addExact counts in the exact set; false once it outgrew exactMembers
// (the members then moved into the buckets).
func (e *distinctEntry) addExact(s distinctSpan, h uint64, insert bool) (int64, bool) {
	if s.oldest > e.swept {
		for m, last := range e.exact {
			if last < s.oldest {
				delete(e.exact, m)
			}
		}
		e.swept = s.oldest
	}
	if insert && e.exact[h] < s.start {
		e.exact[h] = s.start
	}
	if len(e.exact) > exactMembers {
		for m, last := range e.exact {
			slot := e.slotOf(last)
			if e.buckets[slot] == nil || e.starts[slot] < last {
				e.buckets[slot], e.starts[slot] = hyperloglog.New14(), last
			}
			e.buckets[slot].InsertHash(m)
		}
		e.exact = nil
		return 0, false
	}
	if s.start == e.newest && e.swept == s.oldest {
		return int64(len(e.exact)), true
	}
	n := 0
	for _, last := range e.exact {
		if last >= s.oldest && last <= s.start {
			n++
		}
	}
	return int64(n), true
}

// slotOf is the ring slot of a bucket start.
func (e *distinctEntry) slotOf(start int64) int {
	i := (start / e.width) % distinctSlots
	if i < 0 {
		i += distinctSlots
	}
	return int(i)
}

// addApprox counts in the HyperLogLog ring.
func (e *distinctEntry) addApprox(s distinctSpan, h uint64, insert bool) int64 {
	sk := e.buckets[s.slot]
	switch {
	case !insert:
		sk = nil
	case sk == nil || e.starts[s.slot] < s.start:
		// the slot held an older bucket (or none): it starts afresh
		sk = hyperloglog.New14()
		e.buckets[s.slot], e.starts[s.slot] = sk, s.start
		e.union = nil
	case e.starts[s.slot] > s.start:
		sk = nil
	}
	if sk != nil {
		sk.InsertHash(h)
	}
	if e.union != nil && e.unionFrom == s.oldest && e.unionTo == s.start {
		if sk != nil {
			e.union.InsertHash(h)
			e.pending++
		}
		if e.pending > e.est/64 {
			e.est, e.pending = int64(e.union.Estimate()), 0
		}
		return e.est + e.pending
	}
	u := new(hyperloglog.Sketch)
	for i, b := range e.buckets {
		if b != nil && e.starts[i] >= s.oldest && e.starts[i] <= s.start {
			_ = u.Merge(b) // same precision everywhere: cannot fail
		}
	}
	e.union, e.unionFrom, e.unionTo = u, s.oldest, s.start
	e.est, e.pending = int64(u.Estimate()), 0
	return e.est
}

// sweep drops keys whose window has passed; after an overflow it also
// halves a map still nearly full of live keys, least recently updated
// first, and returns how many live keys it evicted.
func (m *MemoryDistinct) sweep(now int64, overflow bool) int {
	for k, e := range m.entries {
		if e.expires <= now {
			delete(m.entries, k)
		}
	}
	if !overflow || len(m.entries) <= m.maxKeys*9/10 {
		return 0
	}
	return evictOlderHalf(m.entries, func(e *distinctEntry) int64 { return e.updated })
}
