package respond

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// TestBatchQueueBoundCountsTakenEvents: what the consumer holds counts
// against the bound, the oldest queued event makes room for a new one, and
// every event is either taken or counted as dropped.
func TestBatchQueueBoundCountsTakenEvents(t *testing.T) {
	dropped := 0
	q := newBatchQueue(5, 100, func() { dropped++ })
	put := func(from, to int) {
		for i := from; i < to; i++ {
			q.put(detect.Event{ID: strconv.Itoa(i)})
		}
	}
	put(0, 3)
	held := q.take(2, nil) // 0 1
	put(3, 8)              // 3 and 4 fit; 5, 6, 7 displace 2, 3, 4
	if dropped != 3 || q.depth() != 5 || q.queued() != 3 {
		t.Fatalf("dropped %d, depth %d, queued %d; want 3, 5, 3", dropped, q.depth(), q.queued())
	}
	if got := idList(q.take(10, nil)); got != "5 6 7" {
		t.Fatalf("queued %q, want the newest: 5 6 7", got)
	}
	// the consumer holds all five: a new event cannot fit at all
	put(8, 9)
	if dropped != 4 || q.depth() != 5 {
		t.Fatalf("dropped %d, depth %d with the bound in the consumer's hands", dropped, q.depth())
	}
	q.done(len(held) + 3)
	put(9, 10)
	if dropped != 4 || q.depth() != 1 {
		t.Fatalf("after done: dropped %d, depth %d", dropped, q.depth())
	}
	q.close()
	put(10, 11)
	if dropped != 5 || q.queued() != 1 {
		t.Fatalf("after close: dropped %d, queued %d; a put after close is counted, what was queued stays", dropped, q.queued())
	}
}

// TestBatchQueueWaitsForAFullBatch: a lingering consumer is woken when the
// batch fills, with every event put meanwhile, not once per event.
func TestBatchQueueWaitsForAFullBatch(t *testing.T) {
	q := newBatchQueue(100, 10, nil)
	stop := make(chan struct{})
	got := make(chan []detect.Event)
	go func() {
		if !q.wait(stop, time.Hour) {
			got <- nil
			return
		}
		got <- q.take(100, nil)
	}()
	for i := 0; i < 10; i++ {
		q.put(detect.Event{ID: strconv.Itoa(i)})
	}
	if b := <-got; len(b) != 10 {
		t.Fatalf("the consumer woke with %d events, want the full batch of 10", len(b))
	}
}

// TestBatchQueueWaitEnds: a linger ends with what is queued, and stop ends
// a wait for the first event.
func TestBatchQueueWaitEnds(t *testing.T) {
	q := newBatchQueue(100, 10, nil)
	stop := make(chan struct{})
	q.put(detect.Event{ID: "a"})
	if !q.wait(stop, time.Millisecond) {
		t.Fatal("wait reported stop")
	}
	if b := q.take(10, nil); len(b) != 1 {
		t.Fatalf("took %d events, want 1", len(b))
	}
	q.done(1)
	close(stop)
	if q.wait(stop, time.Hour) {
		t.Fatal("wait on an empty queue did not end with stop")
	}
}

func idList(es []detect.Event) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.ID
	}
	return strings.Join(s, " ")
}
