package respond

import (
	"context"
	"errors"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/detect/risk"
	"github.com/vigilsec/vigil/internal/store"
)

// Hooks let the Caddy layer count what the store does without the store
// knowing about Prometheus. Any field may be nil.
type Hooks struct {
	StoreError    func(op string)        // a store operation failed (Redis unreachable…)
	EventDropped  func()                 // an event could not be queued or written
	DecisionCount func(kind Kind, n int) // active decisions of a kind after a change
	// Evicted: n entries of in-memory state evicted to stay within its
	// bound; state is one of the State* labels (docs/bounds.md).
	Evicted func(state string, n int)
}

func (h Hooks) storeError(op string) {
	if h.StoreError != nil {
		h.StoreError(op)
	}
}

func (h Hooks) eventDropped() {
	if h.EventDropped != nil {
		h.EventDropped()
	}
}

// Store bundles the state a Vigil app works with: shared by every site and
// kept across config reloads. With Redis, every part uses one client and
// one Keyspace.
type Store struct {
	Counter detect.LoginCounter
	// Windows counts distinct members in sliding windows (probe paths per
	// IP, permission violations per user and IP).
	Windows   detect.WindowCounter
	Buckets   detect.Buckets // the probe detectors' per-address leaky buckets
	Sums      detect.SumWindow
	Profiles  detect.Profiles
	Distinct  query.Distinct // approximate distinct counts (HyperLogLog): the ids a subject enumerated
	Risk      risk.Store     // the login risk model's frequency tables (docs/risk.md)
	Decisions DecisionStore
	Events    EventLog
	Cache     *DecisionCache
	// Healthy reports whether the backing store answers; always true for
	// memory. fail_mode closed refuses logins while it is false.
	Healthy func() bool
	// Keyspace is the Redis client and key names; zero for memory.
	Keyspace store.Keyspace

	closers []func() error
}

// Close stops background work and releases connections.
func (s *Store) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

// MemoryOptions tune the in-memory store.
type MemoryOptions struct {
	EventCapacity int // events kept for queries; default 10000
}

// NewMemoryStore returns the single-instance store. A janitor drops expired
// decisions every sweep interval until Close.
func NewMemoryStore(opts MemoryOptions, hooks Hooks) *Store {
	cache := newDecisionCache(hooks)
	stop := make(chan struct{})
	go expireLoop(cache, time.Second, stop)
	return &Store{
		Counter:   store.NewMemoryCounter(hooks.evictions(StateCounters)),
		Windows:   store.NewMemoryWindowsEvicting(hooks.evictions(StateWindows)),
		Buckets:   store.NewMemoryBuckets(hooks.evictions(StateBuckets)),
		Sums:      store.NewMemorySums(hooks.evictions(StateSums)),
		Profiles:  store.NewMemoryProfiles(hooks.evictions(StateProfiles)),
		Distinct:  store.NewMemoryDistinct(hooks.evictions(StateDistinct)),
		Risk:      store.NewMemoryRisk(0, hooks.evictions(StateRisk)),
		Decisions: NewMemoryDecisions(cache),
		Events:    NewMemoryEvents(opts.EventCapacity),
		Cache:     cache,
		Healthy:   func() bool { return true },
		closers:   []func() error{func() error { close(stop); return nil }},
	}
}

func expireLoop(c *DecisionCache, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			c.Expire(now)
		}
	}
}

// RedisStoreOptions tune a Redis store.
type RedisStoreOptions struct {
	// Retention > 0 trims events older than it from the stream.
	Retention time.Duration
	// EventQueue bounds the events held in memory while Redis cannot take
	// them; <= 0: DefaultEventQueue.
	EventQueue int
}

// NewRedisStore returns the store shared by every instance through Redis,
// on ks's client (closed with the store). A Redis that is down at start
// leaves the store unhealthy (counting in memory, enforcing from the local
// cache) until it answers. ctx bounds the initial load of the decisions.
func NewRedisStore(ctx context.Context, ks store.Keyspace, opts RedisStoreOptions, hooks Hooks) (*Store, error) {
	cache := newDecisionCache(hooks)
	counter := store.NewFallbackCounter(store.NewRedisCounter(ks), store.NewMemoryCounter(hooks.evictions(StateCounters)), hooks.storeError)
	// the decisions' resync loop doubles as the health probe, so fail_mode
	// closed (which stops calling the counter) still sees Redis come back
	decisions, err := newRedisDecisions(ctx, ks, cache, hooks, func(err error) {
		counter.SetHealthy(err == nil)
	})
	if err != nil {
		_ = ks.Client.Close()
		return nil, err
	}
	events := NewRedisEvents(ks, opts.Retention, opts.EventQueue, hooks)
	return &Store{
		Counter:   counter,
		Windows:   store.NewFallbackWindows(store.NewRedisWindows(ks), store.NewMemoryWindowsEvicting(hooks.evictions(StateWindows)), hooks.storeError),
		Buckets:   store.NewFallbackBuckets(store.NewRedisBuckets(ks), store.NewMemoryBuckets(hooks.evictions(StateBuckets)), hooks.storeError),
		Sums:      store.NewFallbackSums(store.NewRedisSums(ks), store.NewMemorySums(hooks.evictions(StateSums)), hooks.storeError),
		Profiles:  store.NewFallbackProfiles(store.NewRedisProfiles(ks), store.NewMemoryProfiles(hooks.evictions(StateProfiles)), hooks.storeError),
		Distinct:  store.NewFallbackDistinct(store.NewRedisDistinct(ks), store.NewMemoryDistinct(hooks.evictions(StateDistinct)), hooks.storeError),
		Risk:      store.NewFallbackRisk(store.NewRedisRisk(ks), store.NewMemoryRisk(0, hooks.evictions(StateRisk)), hooks.storeError),
		Decisions: decisions,
		Events:    events,
		Cache:     cache,
		Healthy:   counter.Healthy,
		Keyspace:  ks,
		// closed in reverse: flush events, stop the subscriber, then the client
		closers: []func() error{ks.Client.Close, decisions.Close, events.Close},
	}, nil
}
