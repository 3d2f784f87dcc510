package store

import (
	"context"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// MemoryWindows is the in-process detect.WindowCounter: the store of a single
// instance and the fallback of the Redis one.
//
// Its memory is bounded: each key holds at most detect.MaxWindowEntries
// members (the oldest go first), and the counter holds at most maxKeys keys.
// Beyond that, keys whose window has passed go first, then the least
// recently updated half; each live key evicted is reported to onEvict.
type MemoryWindows struct {
	mu      sync.Mutex
	sets    map[string]*memberSet // kind:key -> member -> last time
	maxAge  time.Duration         // longest window seen, for sweeping
	ops     int
	maxKeys int // maxWindowKeys; smaller in tests
	onEvict func(n int)
}

// memberSet is one key's members and when each was last seen.
type memberSet struct {
	last   map[string]int64
	newest int64
}

// maxWindowKeys bounds the keys held: beyond it, stale keys are swept and,
// if a flood of distinct clients still fills it, the oldest half goes.
const maxWindowKeys = 100_000

// NewMemoryWindows returns an empty counter that reports no evictions.
func NewMemoryWindows() *MemoryWindows {
	return NewMemoryWindowsEvicting(nil)
}

// NewMemoryWindowsEvicting returns an empty counter; onEvict (may be nil)
// is told, without the lock held, how many live keys were evicted to stay
// within the bound. It is a constructor of its own rather than a parameter
// of NewMemoryWindows so that the existing callers stay as they are.
func NewMemoryWindowsEvicting(onEvict func(n int)) *MemoryWindows {
	return &MemoryWindows{sets: map[string]*memberSet{}, maxKeys: maxWindowKeys, onEvict: onEvict}
}

// Add implements detect.WindowCounter.
func (m *MemoryWindows) Add(_ context.Context, w detect.Window, key, member string, now time.Time) (int, error) {
	kind, window := w.Kind, w.Within
	if window <= 0 {
		return 0, nil
	}
	t := now.UnixNano()
	k := string(kind) + ":" + key
	m.mu.Lock()
	m.maxAge = max(m.maxAge, window)
	s := m.sets[k]
	if s == nil {
		s = &memberSet{last: map[string]int64{}}
		m.sets[k] = s
	}
	n := s.add(member, t, window)
	m.ops++
	evicted := 0
	if overflow := len(m.sets) > m.maxKeys; overflow || m.ops%4096 == 0 {
		evicted = m.sweep(t, overflow)
	}
	m.mu.Unlock()
	// outside the lock: the hook may be a metric, or anything slower
	if evicted > 0 && m.onEvict != nil {
		m.onEvict(evicted)
	}
	return n, nil
}

// Forget implements detect.WindowCounter.
func (m *MemoryWindows) Forget(_ context.Context, kind detect.WindowKind, key string) error {
	m.mu.Lock()
	delete(m.sets, string(kind)+":"+key)
	m.mu.Unlock()
	return nil
}

// Len reports how many keys are held, for tests.
func (m *MemoryWindows) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sets)
}

// sweep drops stale keys; after an overflow it also halves a map that is
// still nearly full of live keys. It returns how many live keys it evicted
// (stale ones are not a loss and are not counted).
func (m *MemoryWindows) sweep(now int64, overflow bool) int {
	cutoff := now - int64(m.maxAge)
	for k, s := range m.sets {
		if s.newest <= cutoff {
			delete(m.sets, k)
		}
	}
	if !overflow || len(m.sets) <= m.maxKeys*9/10 {
		return 0
	}
	// still nearly full of live keys: drop the older half rather than grow;
	// stopping just below the bound would sweep all keys again on the next
	// new one, under the lock, for every request
	return evictOlderHalf(m.sets, func(s *memberSet) int64 { return s.newest })
}

// evictOlderHalf drops the entries of m whose time is at or below the
// middle of the oldest and the newest (cheap, and good enough to halve a
// flood: two passes under the caller's lock, no allocation) and returns
// how many it dropped.
func evictOlderHalf[K comparable, V any](m map[K]V, at func(V) int64) int {
	var lo, hi int64
	first := true
	for _, v := range m {
		t := at(v)
		if first {
			lo, hi, first = t, t, false
		}
		lo, hi = min(lo, t), max(hi, t)
	}
	mid, n := lo+(hi-lo)/2, 0
	for k, v := range m {
		if at(v) <= mid {
			delete(m, k)
			n++
		}
	}
	return n
}

// add records member at t and returns the members inside window.
func (s *memberSet) add(member string, t int64, window time.Duration) int {
	s.last[member] = t
	s.newest = t
	cutoff := t - int64(window)
	for k, v := range s.last {
		if v <= cutoff {
			delete(s.last, k)
		}
	}
	for len(s.last) > detect.MaxWindowEntries {
		oldestKey, oldest := "", int64(1<<63-1)
		for k, v := range s.last {
			if v < oldest {
				oldestKey, oldest = k, v
			}
		}
		delete(s.last, oldestKey)
	}
	return len(s.last)
}
