package respond

import (
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// batchQueue hands events from the request goroutines to one consumer in
// batches. A channel send per event wakes the consumer once per event (a
// futex and a reschedule, several microseconds of CPU on every failed
// login); here put only takes a mutex, and the consumer is woken when a
// batch starts or fills, then lingers so a trickle of events shares one
// wakeup and one write.
//
// The queue holds at most bound events, counting those the consumer has
// taken and not yet finished (a batch Redis refused, waiting to be retried),
// so the bound is what one sink can hold in memory during an outage. Beyond
// it the oldest queued event makes room for the new one, and each drop is
// counted.
type batchQueue struct {
	mu     sync.Mutex
	ring   eventRing
	held   int // taken by the consumer, not yet done with
	bound  int
	full   int // a batch this long wakes a lingering consumer
	closed bool

	wake    chan struct{} // capacity 1: a pending wakeup
	dropped func()        // may be nil
}

func newBatchQueue(bound, full int, dropped func()) *batchQueue {
	return &batchQueue{bound: max(bound, 1), full: max(full, 1), wake: make(chan struct{}, 1), dropped: dropped}
}

// put queues e; it never blocks. After close, e is dropped and counted.
func (q *batchQueue) put(e detect.Event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.drop()
		return
	}
	displaced := false
	if q.ring.n+q.held >= q.bound {
		if q.ring.n == 0 {
			// everything held is in the consumer's hands: the new event
			// is the one that cannot fit
			q.mu.Unlock()
			q.drop()
			return
		}
		q.ring.pop(1)
		displaced = true
	}
	q.ring.push(e, q.bound)
	n := q.ring.n
	q.mu.Unlock()
	if displaced {
		q.drop()
	}
	if n == 1 || n == q.full {
		q.signal()
	}
}

func (q *batchQueue) drop() {
	if q.dropped != nil {
		q.dropped()
	}
}

func (q *batchQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// wait blocks until an event is queued and then, unless a full batch is
// already there, lingers up to linger for more. It reports false when stop
// is closed first.
func (q *batchQueue) wait(stop <-chan struct{}, linger time.Duration) bool {
	if q.queued() == 0 {
		select {
		case <-q.wake:
		case <-stop:
			return false
		}
	}
	if linger <= 0 {
		return true
	}
	// a wakeup left from the batch's first event must not cut the linger short
	select {
	case <-q.wake:
	default:
	}
	if q.queued() >= q.full {
		return true
	}
	t := time.NewTimer(linger)
	defer t.Stop()
	select {
	case <-q.wake: // the batch filled
	case <-t.C:
	case <-stop:
		return false
	}
	return true
}

// take moves up to k of the oldest queued events to dst; they count against
// the bound until done.
func (q *batchQueue) take(k int, dst []detect.Event) []detect.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = q.ring.front(k, dst)
	taken := min(k, q.ring.n)
	q.ring.pop(taken)
	q.held += taken
	return dst
}

// done releases n taken events (written, or given up and counted).
func (q *batchQueue) done(n int) {
	q.mu.Lock()
	q.held -= n
	q.mu.Unlock()
}

// queued is how many events wait to be taken.
func (q *batchQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ring.n
}

// depth is everything the queue holds: queued and taken but not done.
func (q *batchQueue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ring.n + q.held
}

// close makes every later put a counted drop; what is queued stays for the
// consumer to finish.
func (q *batchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}
