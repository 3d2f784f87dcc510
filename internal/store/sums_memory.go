package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// The bucket rule, shared by MemorySums and RedisSums so that they agree
// exactly (window edges included) for any times:
//
//   - times are Unix microseconds, t = now.UnixMicro(), W = window in whole
//     microseconds; a window under one microsecond disables the sum (0);
//   - buckets are width = ceil(W/detect.MaxSumBuckets) µs wide and aligned
//     on multiples of width since the Unix epoch: a value added at t goes to
//     the bucket starting at b = floor(t/width)*width;
//   - a bucket counts while t-W < b <= t (its start is its time), so a value
//     leaves the window up to width-1 µs before its own time would: a sum
//     errs low rather than remember a burst longer than the window;
//   - an Add drops the buckets with b <= t-W and then, should more than
//     detect.MaxSumBuckets remain (a key used with a shorter window before,
//     or buckets ahead of a lagging clock), the oldest ones.
//
// A ceiling rather than a floor keeps one window within MaxSumBuckets
// buckets, so trimming only ever happens when windows or clocks disagree.

// errNegativeValue refuses a negative addition: sums only grow, which is
// what lets them saturate instead of wrapping around.
var errNegativeValue = errors.New("sum value is negative")

// sumSpan is one instant placed on the bucket grid of one window.
type sumSpan struct {
	now    int64 // t, µs
	cutoff int64 // t-W: buckets at or below it are out
	bucket int64 // start of the bucket holding t
}

// spanOf applies the bucket rule; ok is false when the window is disabled.
func spanOf(window time.Duration, now time.Time) (s sumSpan, ok bool) {
	w := window.Microseconds()
	if w <= 0 {
		return sumSpan{}, false
	}
	width := (w + detect.MaxSumBuckets - 1) / detect.MaxSumBuckets
	t := now.UnixMicro()
	off := t % width
	if off < 0 { // times before 1970 still floor, not truncate
		off += width
	}
	return sumSpan{now: t, cutoff: t - w, bucket: t - off}, true
}

// counts reports whether a bucket starting at b is inside the span's window.
func (s sumSpan) counts(b int64) bool { return b > s.cutoff && b <= s.now }

// satAdd adds two non-negative sums, sticking at math.MaxInt64 rather than
// wrapping into a negative total that would read as "nothing happened".
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// MemorySums is the in-process detect.SumWindow: the store of a single
// instance and the fallback of the Redis one.
type MemorySums struct {
	mu      sync.Mutex
	logs    map[sumKey]*sumLog
	maxAge  time.Duration // longest window seen, for sweeping
	maxKeys int           // maxSumKeys; smaller in tests
	seq     uint64        // update order, for evicting the least recent
	onEvict func(n int)
}

type sumKey struct {
	kind detect.SumKind
	key  string
}

type sumLog struct {
	buckets []sumBucket // ascending start
	seq     uint64      // when the key was last added to
}

type sumBucket struct{ start, sum int64 }

// maxSumKeys bounds the keys held: beyond it, stale keys are swept and, if
// a flood of distinct subjects still fills it, the least recent half goes.
const maxSumKeys = 100_000

// NewMemorySums returns an empty store. onEvict, when set, is told how many
// live keys were dropped to stay within bounds (stale keys are not counted:
// they held nothing that still mattered); it is called without the lock held.
func NewMemorySums(onEvict func(n int)) *MemorySums {
	return &MemorySums{logs: map[sumKey]*sumLog{}, maxKeys: maxSumKeys, onEvict: onEvict}
}

// Add implements detect.SumWindow.
func (m *MemorySums) Add(_ context.Context, sw detect.Sum, key string, v int64, now time.Time) (int64, error) {
	kind, window := sw.Kind, sw.Within
	if v < 0 {
		return 0, fmt.Errorf("memory sums: %w", errNegativeValue)
	}
	s, ok := spanOf(window, now)
	if !ok {
		return 0, nil
	}
	k := sumKey{kind, key}
	m.mu.Lock()
	m.maxAge = max(m.maxAge, window)
	m.seq++
	l := m.logs[k]
	if l == nil {
		l = &sumLog{}
		m.logs[k] = l
	}
	l.seq = m.seq
	l.add(s, v)
	total := l.sum(s)
	evicted := 0
	if overflow := len(m.logs) > m.maxKeys; overflow || m.seq%4096 == 0 {
		evicted = m.sweep(s.now, overflow)
	}
	m.mu.Unlock()
	if evicted > 0 && m.onEvict != nil {
		m.onEvict(evicted)
	}
	return total, nil
}

// Sum implements detect.SumWindow.
func (m *MemorySums) Sum(_ context.Context, sw detect.Sum, key string, now time.Time) (int64, error) {
	kind, window := sw.Kind, sw.Within
	s, ok := spanOf(window, now)
	if !ok {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.logs[sumKey{kind, key}]
	if l == nil {
		return 0, nil
	}
	return l.sum(s), nil
}

// Forget implements detect.SumWindow.
func (m *MemorySums) Forget(_ context.Context, kind detect.SumKind, key string) error {
	m.mu.Lock()
	delete(m.logs, sumKey{kind, key})
	m.mu.Unlock()
	return nil
}

// Len reports how many keys are held, for tests and metrics.
func (m *MemorySums) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.logs)
}

// add puts v in the bucket of s, then applies the bucket rule's drops.
func (l *sumLog) add(s sumSpan, v int64) {
	i, found := slices.BinarySearchFunc(l.buckets, s.bucket, func(b sumBucket, t int64) int {
		return cmp.Compare(b.start, t)
	})
	if found {
		l.buckets[i].sum = satAdd(l.buckets[i].sum, v)
	} else {
		l.buckets = slices.Insert(l.buckets, i, sumBucket{start: s.bucket, sum: v})
	}
	drop := 0
	for drop < len(l.buckets) && l.buckets[drop].start <= s.cutoff {
		drop++
	}
	drop = max(drop, len(l.buckets)-detect.MaxSumBuckets)
	if drop > 0 {
		// shift rather than reslice, so the backing array is reused
		l.buckets = append(l.buckets[:0], l.buckets[drop:]...)
	}
}

func (l *sumLog) sum(s sumSpan) int64 {
	var total int64
	for _, b := range l.buckets {
		if s.counts(b.start) {
			total = satAdd(total, b.sum)
		}
	}
	return total
}

// sweep drops keys whose newest bucket has left every window; after an
// overflow it also halves a map that is still nearly full of live keys,
// returning how many live keys that evicted.
func (m *MemorySums) sweep(now int64, overflow bool) int {
	cutoff := now - m.maxAge.Microseconds()
	for k, l := range m.logs {
		if len(l.buckets) == 0 || l.buckets[len(l.buckets)-1].start <= cutoff {
			delete(m.logs, k)
		}
	}
	if !overflow || len(m.logs) <= m.maxKeys*9/10 {
		return 0
	}
	// stopping just below the bound would sweep every key again on the next
	// new one, under the lock, for every request
	return evictLeastRecentHalf(m.logs, func(l *sumLog) uint64 { return l.seq })
}

// evictLeastRecentHalf deletes the half of m that was updated least
// recently (by seq, an update counter: unlike the callers' clocks it never
// ties or runs backwards) and returns how many entries went.
func evictLeastRecentHalf[K comparable, V any](m map[K]V, seq func(V) uint64) int {
	if len(m) < 2 {
		return 0
	}
	seqs := make([]uint64, 0, len(m))
	for _, v := range m {
		seqs = append(seqs, seq(v))
	}
	slices.Sort(seqs)
	keep := seqs[len(seqs)/2]
	n := 0
	for k, v := range m {
		if seq(v) < keep {
			delete(m, k)
			n++
		}
	}
	return n
}
