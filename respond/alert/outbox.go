package alert

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Job is an alert waiting for delivery on one channel. Its ID is the
// message ID receivers see on every attempt.
type Job struct {
	ID       string    `json:"id"`
	Alert    Alert     `json:"alert"`
	Attempts int       `json:"attempts"` // failed attempts so far
	Queued   time.Time `json:"queued"`
	Due      time.Time `json:"-"` // kept as the queue's sort key
}

// Outbox is the durable queue between the dispatcher and the senders. A
// job is leased while it is being sent: if the sender's process dies, the
// lease runs out and the job is sent again (at-least-once; receivers
// deduplicate on the stable message ID).
type Outbox interface {
	// Put queues j on channel ch, due at j.Due. It reports false when the
	// channel already holds maxQueue jobs.
	Put(ctx context.Context, ch string, j Job, maxQueue int) (bool, error)
	// Lease returns up to n jobs due at now, oldest due first, and hides
	// them until until.
	Lease(ctx context.Context, ch string, now, until time.Time, n int) ([]Job, error)
	// Ack removes a delivered (or abandoned) job.
	Ack(ctx context.Context, ch, id string) error
	// Retry stores j (its attempts) and makes it due again at j.Due.
	Retry(ctx context.Context, ch string, j Job) error
	// Next reports when the channel's earliest job is due (zero when it
	// is empty) and how many jobs it holds.
	Next(ctx context.Context, ch string) (time.Time, int, error)
	// FirstSeen remembers key on ch for window and reports whether it was
	// new, for deduplication.
	FirstSeen(ctx context.Context, ch, key string, window time.Duration) (bool, error)
}

// MemoryOutbox keeps jobs in this process: they survive a config reload
// (the Caddy glue shares one MemoryOutbox between configs) but not a
// restart. Use the Redis outbox for that.
type MemoryOutbox struct {
	mu        sync.Mutex
	queues    map[string]map[string]*Job
	seen      map[string]time.Time // ch + key -> expiry
	lastPurge time.Time
}

// NewMemoryOutbox returns an empty outbox.
func NewMemoryOutbox() *MemoryOutbox {
	return &MemoryOutbox{queues: map[string]map[string]*Job{}, seen: map[string]time.Time{}}
}

// Put implements Outbox.
func (m *MemoryOutbox) Put(_ context.Context, ch string, j Job, maxQueue int) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[ch]
	if q == nil {
		q = map[string]*Job{}
		m.queues[ch] = q
	}
	if _, exists := q[j.ID]; !exists && maxQueue > 0 && len(q) >= maxQueue {
		return false, nil
	}
	q[j.ID] = &j
	return true, nil
}

// Lease implements Outbox.
func (m *MemoryOutbox) Lease(_ context.Context, ch string, now, until time.Time, n int) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []*Job
	for _, j := range m.queues[ch] {
		if !j.Due.After(now) {
			due = append(due, j)
		}
	}
	sort.Slice(due, func(a, b int) bool { return due[a].Due.Before(due[b].Due) })
	if len(due) > n {
		due = due[:n]
	}
	out := make([]Job, len(due))
	for i, j := range due {
		out[i] = *j
		j.Due = until
	}
	return out, nil
}

// Ack implements Outbox.
func (m *MemoryOutbox) Ack(_ context.Context, ch, id string) error {
	m.mu.Lock()
	delete(m.queues[ch], id)
	m.mu.Unlock()
	return nil
}

// Retry implements Outbox.
func (m *MemoryOutbox) Retry(_ context.Context, ch string, j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q := m.queues[ch]; q != nil {
		q[j.ID] = &j
	}
	return nil
}

// Next implements Outbox.
func (m *MemoryOutbox) Next(_ context.Context, ch string) (time.Time, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	for _, j := range m.queues[ch] {
		if next.IsZero() || j.Due.Before(next) {
			next = j.Due
		}
	}
	return next, len(m.queues[ch]), nil
}

// FirstSeen implements Outbox.
func (m *MemoryOutbox) FirstSeen(_ context.Context, ch, key string, window time.Duration) (bool, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) > 4096 && now.Sub(m.lastPurge) > time.Second {
		for k, exp := range m.seen {
			if now.After(exp) {
				delete(m.seen, k)
			}
		}
		m.lastPurge = now
	}
	k := ch + "\x00" + key
	if exp, ok := m.seen[k]; ok && now.Before(exp) {
		return false, nil
	}
	m.seen[k] = now.Add(window)
	return true, nil
}
