package respond

import (
	"errors"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Hooks let the Caddy layer count what the store does without the store
// knowing about Prometheus. Any field may be nil.
type Hooks struct {
	StoreError    func(op string)        // a store operation failed (Redis unreachable…)
	EventDropped  func()                 // an event could not be queued or written
	DecisionCount func(kind Kind, n int) // active decisions of a kind after a change
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
// kept across config reloads.
type Store struct {
	Counter detect.LoginCounter
	// Windows counts distinct members in sliding windows (probe paths per
	// IP, permission violations per user and IP).
	Windows   detect.WindowCounter
	Decisions DecisionStore
	Events    EventLog
	Cache     *DecisionCache
	// Healthy reports whether the backing store answers; always true for
	// memory. fail_mode closed refuses logins while it is false.
	Healthy func() bool

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
	cache := NewDecisionCache(hooks.DecisionCount)
	stop := make(chan struct{})
	go expireLoop(cache, time.Second, stop)
	return &Store{
		Counter:   detect.NewMemoryCounter(),
		Windows:   detect.NewMemoryWindows(),
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
