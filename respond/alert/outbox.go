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
	// Lease is when the lease that returned the job ends (zero for a job
	// that was not leased). Ack and Retry act only while it still holds:
	// once it ran out and another holder leased the job, the late holder's
	// Ack or Retry is ignored.
	Lease time.Time `json:"-"`
}

// Outbox is the durable queue between the dispatcher and the senders. A
// job is leased while it is being sent: if the sender's process dies, the
// lease runs out and the job is sent again (at-least-once; receivers
// deduplicate on the stable message ID).
type Outbox interface {
	// Put queues j on channel ch, due at j.Due. When the channel already
	// holds maxQueue jobs, a LOW j is not queued (PutFull) and a MEDIUM or
	// higher one takes the place of the oldest LOW job (PutEvicted; PutFull
	// if there is none), so LOW traffic never locks MEDIUM+ out. ttl > 0
	// makes the channel's queue expire that long after its last Put or
	// Retry, so the jobs of a channel nobody serves any more do not stay
	// forever.
	Put(ctx context.Context, ch string, j Job, maxQueue int, ttl time.Duration) (PutResult, error)
	// Lease returns up to n jobs due at now — MEDIUM and higher first, so
	// a backlog of LOW jobs never delays them, then oldest due first — and
	// hides them until until (their Due and Lease).
	Lease(ctx context.Context, ch string, now, until time.Time, n int) ([]Job, error)
	// Ack removes a delivered (or abandoned) job, unless j.Lease is set
	// and no longer holds (the job was leased again by someone else).
	Ack(ctx context.Context, ch string, j Job) error
	// Retry stores j (its attempts) and makes it due again at j.Due, under
	// the same lease condition as Ack. It never brings back a job that is
	// gone (acknowledged by another holder).
	Retry(ctx context.Context, ch string, j Job, ttl time.Duration) error
	// Next reports when the channel's earliest job is due (zero when it
	// is empty) and how many jobs it holds.
	Next(ctx context.Context, ch string) (time.Time, int, error)
	// FirstSeen remembers key on ch for window and reports whether it was
	// new, for deduplication.
	FirstSeen(ctx context.Context, ch, key string, window time.Duration) (bool, error)
	// Take removes every job of ch and returns them (due now), to move the
	// queue of a channel that was removed from the configuration.
	Take(ctx context.Context, ch string) ([]Job, error)
}

// PutResult says what Put did.
type PutResult int

const (
	PutFull    PutResult = iota // the queue was full: j was not queued
	PutOK                       // j was queued
	PutEvicted                  // j was queued in place of the oldest LOW job, which is gone
)

// DefaultMaxSeen bounds the dedup keys a MemoryOutbox remembers.
const DefaultMaxSeen = 100_000

// MemoryOutbox keeps jobs in this process: they survive a config reload
// (the Caddy glue shares one MemoryOutbox between configs) but not a
// restart. Use the Redis outbox for that.
type MemoryOutbox struct {
	mu        sync.Mutex
	queues    map[string]map[string]*Job
	expires   map[string]time.Time // ch -> when its queue expires
	seen      map[string]time.Time // ch + key -> expiry
	order     []seenRec            // seen in insertion order, for eviction
	maxSeen   int
	lastPurge time.Time
}

type seenRec struct {
	k   string
	exp time.Time
}

// NewMemoryOutbox returns an empty outbox.
func NewMemoryOutbox() *MemoryOutbox {
	return &MemoryOutbox{
		queues: map[string]map[string]*Job{}, expires: map[string]time.Time{},
		seen: map[string]time.Time{}, maxSeen: DefaultMaxSeen,
	}
}

// expire drops the queues whose TTL ran out. m.mu is held.
func (m *MemoryOutbox) expire(now time.Time) {
	for ch, exp := range m.expires {
		if now.After(exp) {
			delete(m.queues, ch)
			delete(m.expires, ch)
		}
	}
}

func (m *MemoryOutbox) touch(ch string, ttl time.Duration) {
	if ttl > 0 {
		m.expires[ch] = time.Now().Add(ttl)
	}
}

// Put implements Outbox.
func (m *MemoryOutbox) Put(_ context.Context, ch string, j Job, maxQueue int, ttl time.Duration) (PutResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(time.Now())
	q := m.queues[ch]
	if q == nil {
		q = map[string]*Job{}
		m.queues[ch] = q
	}
	res := PutOK
	if _, exists := q[j.ID]; !exists && maxQueue > 0 && len(q) >= maxQueue {
		// the queue is full only once in a while: a scan then is cheaper
		// than keeping an index
		var oldest *Job
		for _, o := range q {
			if isLow(o.Alert.Severity) && (oldest == nil || o.Queued.Before(oldest.Queued)) {
				oldest = o
			}
		}
		if isLow(j.Alert.Severity) || oldest == nil {
			return PutFull, nil
		}
		delete(q, oldest.ID)
		res = PutEvicted
	}
	j.Lease = time.Time{}
	q[j.ID] = &j
	m.touch(ch, ttl)
	return res, nil
}

// Lease implements Outbox.
func (m *MemoryOutbox) Lease(_ context.Context, ch string, now, until time.Time, n int) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(time.Now())
	var due []*Job
	for _, j := range m.queues[ch] {
		if !j.Due.After(now) {
			due = append(due, j)
		}
	}
	sort.Slice(due, func(a, b int) bool {
		if la, lb := isLow(due[a].Alert.Severity), isLow(due[b].Alert.Severity); la != lb {
			return lb
		}
		return due[a].Due.Before(due[b].Due)
	})
	if len(due) > n {
		due = due[:n]
	}
	out := make([]Job, len(due))
	for i, j := range due {
		j.Due = until
		out[i] = *j
		out[i].Lease = until
	}
	return out, nil
}

// holds reports whether j's lease (if any) is still the stored one. m.mu is
// held.
func (m *MemoryOutbox) holds(ch string, j Job) (*Job, bool) {
	cur := m.queues[ch][j.ID]
	if cur == nil {
		return nil, false
	}
	return cur, j.Lease.IsZero() || cur.Due.Equal(j.Lease)
}

// Ack implements Outbox.
func (m *MemoryOutbox) Ack(_ context.Context, ch string, j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.holds(ch, j); ok {
		delete(m.queues[ch], j.ID)
	}
	return nil
}

// Retry implements Outbox.
func (m *MemoryOutbox) Retry(_ context.Context, ch string, j Job, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.holds(ch, j); ok {
		j.Lease = time.Time{}
		m.queues[ch][j.ID] = &j
		m.touch(ch, ttl)
	}
	return nil
}

// Next implements Outbox.
func (m *MemoryOutbox) Next(_ context.Context, ch string) (time.Time, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(time.Now())
	var next time.Time
	for _, j := range m.queues[ch] {
		if next.IsZero() || j.Due.Before(next) {
			next = j.Due
		}
	}
	return next, len(m.queues[ch]), nil
}

// Take implements Outbox.
func (m *MemoryOutbox) Take(_ context.Context, ch string) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.expire(now)
	q := m.queues[ch]
	delete(m.queues, ch)
	delete(m.expires, ch)
	out := make([]Job, 0, len(q))
	for _, j := range q {
		j.Due = now
		out = append(out, *j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Queued.Before(out[b].Queued) })
	return out, nil
}

// FirstSeen implements Outbox. At most maxSeen keys are remembered: when
// full, expired keys are dropped and then the oldest, so a flood of
// distinct keys costs bounded memory (an evicted key is sent once more).
func (m *MemoryOutbox) FirstSeen(_ context.Context, ch, key string, window time.Duration) (bool, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	full := len(m.seen) >= m.maxSeen
	if (len(m.order) > 4096 || full) && now.Sub(m.lastPurge) > time.Second {
		m.purgeSeen(now)
	}
	k := ch + "\x00" + key
	if exp, ok := m.seen[k]; ok && now.Before(exp) {
		return false, nil
	}
	for len(m.seen) >= m.maxSeen && len(m.order) > 0 {
		r := m.order[0]
		m.order[0] = seenRec{}
		m.order = m.order[1:]
		if exp, ok := m.seen[r.k]; ok && exp.Equal(r.exp) {
			delete(m.seen, r.k)
		}
	}
	exp := now.Add(window)
	m.seen[k] = exp
	m.order = append(m.order, seenRec{k, exp})
	return true, nil
}

// purgeSeen drops expired keys and stale order records. m.mu is held.
func (m *MemoryOutbox) purgeSeen(now time.Time) {
	kept := make([]seenRec, 0, len(m.seen))
	for _, r := range m.order {
		exp, ok := m.seen[r.k]
		if !ok || !exp.Equal(r.exp) {
			continue // superseded or already gone
		}
		if now.After(exp) {
			delete(m.seen, r.k)
			continue
		}
		kept = append(kept, r)
	}
	m.order = kept
	m.lastPurge = now
}
