package respond

import (
	"context"
	"sync"
	"time"
)

// MemoryDecisions is the DecisionStore of a single instance. It writes
// through to the DecisionCache the request path reads; both the decisions
// (the cache) and the strikes are bounded, and their evictions are
// reported through the cache's hook.
type MemoryDecisions struct {
	cache   *DecisionCache
	mu      sync.Mutex
	strikes strikeBook
}

// NewMemoryDecisions returns a store that keeps decisions in cache.
func NewMemoryDecisions(cache *DecisionCache) *MemoryDecisions {
	strikes := newStrikeBook(func(n int) { cache.evicted(StateStrikes, n) })
	return &MemoryDecisions{cache: cache, strikes: strikes}
}

// Impose implements DecisionStore.
func (m *MemoryDecisions) Impose(_ context.Context, d Decision, base, max time.Duration, now time.Time) (Decision, bool, error) {
	d = d.Canonical()
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.active(d, now); ok {
		return cur, false, nil
	}
	strike := m.strikes.next(d.Key(), now, max)
	d.Strike = strike
	d.Created = now.UTC()
	d.Until = now.Add(BanDuration(base, max, strike)).UTC()
	m.cache.Set(d)
	return d, true, nil
}

func (m *MemoryDecisions) active(d Decision, now time.Time) (Decision, bool) {
	return m.cache.Get(d.Kind, d.Target, now)
}

// Put implements DecisionStore.
func (m *MemoryDecisions) Put(_ context.Context, d Decision) error {
	m.cache.Set(d.Canonical())
	return nil
}

// Lift implements DecisionStore.
func (m *MemoryDecisions) Lift(_ context.Context, kind Kind, target string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, was := m.active(Decision{Kind: kind, Target: target}, now)
	m.cache.Remove(kind, target)
	m.strikes.forget(DecisionKey(kind, target))
	return was, nil
}

// List implements DecisionStore.
func (m *MemoryDecisions) List(_ context.Context, now time.Time) ([]Decision, error) {
	return m.cache.List(now), nil
}
