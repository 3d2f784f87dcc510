package respond

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/internal/store"
)

// What a health report needs from the store: whether Redis answers now, how
// fast, whether the store is serving from its local fallback, and how much
// work waits for it. These only read: a health check must never change the
// state it reports.

// Ping asks the backing store whether it answers, for as long as ctx allows
// (a health check gives it a short deadline: a dead server must not hold
// the caller for the client's dial timeout). It reports how long the answer
// took. The memory store always answers.
func (s *Store) Ping(ctx context.Context) (time.Duration, error) {
	if s.Keyspace.Client == nil {
		return 0, nil
	}
	start := time.Now()
	err := s.Keyspace.Client.Ping(ctx).Err()
	return time.Since(start), err
}

// Fallback is the login counter that tracks the store's health, or nil for
// the memory store, whose health never changes.
func (s *Store) Fallback() *store.FallbackCounter {
	f, _ := s.Counter.(*store.FallbackCounter)
	return f
}

// EventsPending is how many events wait to be written to the store's event
// log: zero for the memory log, which appends at once.
func (s *Store) EventsPending() int {
	if r, ok := s.Events.(*RedisEvents); ok {
		return r.Depth()
	}
	return 0
}

// Depth is how many events wait to be written to Redis: those Append has
// queued and the batch the writer holds (during an outage, everything that
// waits for Redis to come back).
func (r *RedisEvents) Depth() int { return r.queue.depth() }

// Depth is how many events wait in the queue for the sink's goroutine.
func (q *QueuedSink) Depth() int { return q.queue.queued() }
