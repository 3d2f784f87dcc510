package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// The bucket rule, shared by MemoryBuckets and RedisBuckets so that they
// agree exactly for any times (integer arithmetic only, so Lua's doubles
// compute what Go's int64s do):
//
//   - times are Unix microseconds, t = now.UnixMicro(); L = Leak in whole
//     microseconds, and a bucket with L <= 0 is disabled (level 0, never
//     overflows);
//   - a drop costs c = round(Weight·L) µs (at least 1), the capacity is
//     C = round(Capacity·L) µs, and members are remembered for
//     H = C + L µs, the time a full bucket takes to empty;
//   - a bucket is e, the time at which it will be empty (GCRA: one number
//     instead of a level and a time); its level at t is max(e, t) - t µs,
//     that is (max(e, t) - t)/L units;
//   - a distinct drop whose member was last seen at s > t - H adds
//     nothing and never overflows; its time becomes max(s, t);
//   - any other drop sets e = max(e, t) + c and overflows when
//     e - t > C; its member, if any, is remembered at t;
//   - a distinct pour forgets the members seen at or before t - H and keeps
//     at most detect.MaxBucketMembers, dropping the oldest (ties broken
//     arbitrarily);
//   - a key matters until both e and its newest member's s + H have
//     passed: that is its TTL in Redis and its sweep time in memory.
//
// Storing the empty time rather than a level and a time means a pour is one
// comparison and one addition, and a lagging clock on another instance can
// only make a bucket look fuller, never empty it.

// errBadDrop refuses a drop or bucket that no detector means: a weight
// that is not positive and finite, or numbers beyond exact arithmetic.
var errBadDrop = errors.New("bucket drop: weight must be positive and finite, capacity non-negative")

// maxBucketMicros bounds costs and capacities to what a Lua double holds
// exactly (2^52 µs is 142 years: no sane bucket comes near it).
const maxBucketMicros = 1 << 52

// pourSpan is one pour placed on the rule's integer scale.
type pourSpan struct {
	now, leak, cost, capacity, memory int64
}

// pourSpanOf applies the rule's scale; ok is false for a disabled bucket.
func pourSpanOf(b detect.Bucket, d detect.Drop, now time.Time) (s pourSpan, ok bool, err error) {
	l := b.Leak.Microseconds()
	if l <= 0 {
		return pourSpan{}, false, nil
	}
	w, c := d.Weight, b.Capacity
	if !(w > 0) || math.IsInf(w, 0) || !(c >= 0) || w*float64(l) > maxBucketMicros || c*float64(l) > maxBucketMicros {
		return pourSpan{}, false, errBadDrop
	}
	s = pourSpan{now: now.UnixMicro(), leak: l, cost: max(1, int64(math.Round(w*float64(l)))), capacity: int64(math.Round(c * float64(l)))}
	s.memory = s.capacity + l
	return s, true, nil
}

// units converts a level in µs to units of the bucket.
func (s pourSpan) units(level int64) float64 { return float64(level) / float64(s.leak) }

// MemoryBuckets is the in-process detect.Buckets: the store of a single
// instance and the fallback of the Redis one.
type MemoryBuckets struct {
	mu      sync.Mutex
	m       map[bucketKey]*bucketState
	maxKeys int    // maxBucketKeys; smaller in tests
	seq     uint64 // pour order, for evicting the least recent
	onEvict func(n int)
}

type bucketKey struct {
	kind detect.BucketKind
	key  string
}

// bucketState is one bucket: 24 bytes plus 16 per remembered member, so at
// most about 0.6 KB per key.
type bucketState struct {
	empty   int64 // e of the rule, µs
	keep    int64 // until when the state matters, µs
	seq     uint64
	members []bucketMember
}

// bucketMember is a member by a 64-bit hash of its (already hashed) name:
// the Redis store keeps the name itself, and a collision between two
// members of one address's bucket (about 2^-64 per pair) only merges them.
type bucketMember struct {
	id   uint64
	seen int64
}

// maxBucketKeys bounds the keys held: beyond it, stale keys are swept and,
// if a flood of distinct clients still fills it, the least recent half
// goes (counted by onEvict).
const maxBucketKeys = 100_000

// NewMemoryBuckets returns an empty store. onEvict, when set, is told how
// many live buckets were dropped to stay within bounds; it is called
// without the lock held.
func NewMemoryBuckets(onEvict func(n int)) *MemoryBuckets {
	return &MemoryBuckets{m: map[bucketKey]*bucketState{}, maxKeys: maxBucketKeys, onEvict: onEvict}
}

// Pour implements detect.Buckets.
func (m *MemoryBuckets) Pour(_ context.Context, b detect.Bucket, key string, d detect.Drop, now time.Time) (float64, bool, error) {
	s, ok, err := pourSpanOf(b, d, now)
	if err != nil {
		return 0, false, fmt.Errorf("memory buckets: %w", err)
	}
	if !ok {
		return 0, false, nil
	}
	var id uint64
	if d.Member != "" {
		id = memberID(d.Member)
	}
	k := bucketKey{b.Kind, key}
	m.mu.Lock()
	m.seq++
	st := m.m[k]
	if st == nil {
		st = &bucketState{}
		m.m[k] = st
	}
	st.seq = m.seq
	level, overflow := st.pour(s, id, d.Member != "")
	evicted := 0
	if full := len(m.m) > m.maxKeys; full || m.seq%4096 == 0 {
		evicted = m.sweep(s.now, full)
	}
	m.mu.Unlock()
	if evicted > 0 && m.onEvict != nil {
		m.onEvict(evicted)
	}
	return s.units(level), overflow, nil
}

// pour applies the rule to one bucket and returns its level in µs.
func (st *bucketState) pour(s pourSpan, id uint64, distinct bool) (int64, bool) {
	fresh, seen := true, int64(math.MinInt64)
	at := -1
	if distinct {
		for i, mb := range st.members {
			if mb.id == id {
				at, seen = i, mb.seen
				fresh = mb.seen <= s.now-s.memory
				break
			}
		}
	}
	if fresh {
		st.empty = max(st.empty, s.now) + s.cost
	}
	level := max(st.empty, s.now) - s.now
	st.keep = max(st.empty, st.keep)
	if distinct {
		st.remember(s, id, max(seen, s.now), at)
	}
	return level, fresh && level > s.capacity
}

// remember records member id at seen, forgetting the members out of memory
// and, beyond the bound, the oldest.
func (st *bucketState) remember(s pourSpan, id uint64, seen int64, at int) {
	if at >= 0 {
		st.members = append(st.members[:at], st.members[at+1:]...)
	}
	live := st.members[:0]
	for _, mb := range st.members {
		if mb.seen > s.now-s.memory {
			live = append(live, mb)
		}
	}
	for len(live) >= detect.MaxBucketMembers {
		oldest := 0
		for i, mb := range live {
			if mb.seen < live[oldest].seen {
				oldest = i
			}
		}
		live = append(live[:oldest], live[oldest+1:]...)
	}
	st.members = append(live, bucketMember{id: id, seen: seen})
	for _, mb := range st.members {
		st.keep = max(st.keep, mb.seen+s.memory)
	}
}

// Forget implements detect.Buckets.
func (m *MemoryBuckets) Forget(_ context.Context, kind detect.BucketKind, key string) error {
	m.mu.Lock()
	delete(m.m, bucketKey{kind, key})
	m.mu.Unlock()
	return nil
}

// Len reports how many buckets are held, for tests and metrics.
func (m *MemoryBuckets) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// sweep drops the buckets that no longer matter; after an overflow it also
// halves a map that is still nearly full of live ones, returning how many
// live buckets that evicted.
func (m *MemoryBuckets) sweep(now int64, full bool) int {
	for k, st := range m.m {
		if st.keep <= now {
			delete(m.m, k)
		}
	}
	if !full || len(m.m) <= m.maxKeys*9/10 {
		return 0
	}
	return evictLeastRecentHalf(m.m, func(st *bucketState) uint64 { return st.seq })
}

// memberID is FNV-1a over a member's name.
func memberID(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
