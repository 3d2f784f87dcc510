package respond

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// TestBusReachesEverySinkInOrder: every sink sees every event; nil sinks
// are skipped.
func TestBusReachesEverySinkInOrder(t *testing.T) {
	var seen []string
	sink := func(name string) Sink {
		return SinkFunc(func(e detect.Event) { seen = append(seen, name+":"+e.ID) })
	}
	b := NewBus(sink("a"), nil, sink("b"))
	e := detect.NewEvent(detect.FailedLogin, time.Now())
	b.Publish(e)
	if len(seen) != 2 || seen[0] != "a:"+e.ID || seen[1] != "b:"+e.ID {
		t.Fatalf("sinks saw %v", seen)
	}
}

// TestQueuedSinkNeverBlocks: a stuck sink fills its queue, and then every
// further event is dropped and counted, without the publisher waiting.
func TestQueuedSinkNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var handled, dropped atomic.Int64
	q := Queue(func(detect.Event) {
		<-release
		handled.Add(1)
	}, 4, func() { dropped.Add(1) })
	start := time.Now()
	for i := 0; i < 100; i++ {
		q.Publish(detect.NewEvent(detect.FailedLogin, start))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("publishing to a stuck sink took %v", d)
	}
	// one event is being handled, four wait: the other 95 were dropped
	if got := dropped.Load(); got < 95 || got > 96 {
		t.Fatalf("dropped %d, want 95 or 96", got)
	}
	close(release)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if handled.Load()+dropped.Load() != 100 {
		t.Fatalf("handled %d + dropped %d != 100", handled.Load(), dropped.Load())
	}
	q.Publish(detect.NewEvent(detect.FailedLogin, start))
	if dropped.Load()+handled.Load() != 101 {
		t.Fatal("an event published after Close was neither handled nor counted")
	}
}

// TestQueuedSinkCloseRacesPublish: Close while publishers run never panics
// (a send on a closed queue) and loses no event uncounted.
func TestQueuedSinkCloseRacesPublish(t *testing.T) {
	var handled, dropped atomic.Int64
	q := Queue(func(detect.Event) { handled.Add(1) }, 16, func() { dropped.Add(1) })
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				q.Publish(detect.Event{})
			}
		}()
	}
	_ = q.Close()
	wg.Wait()
	if handled.Load()+dropped.Load() != 4000 {
		t.Fatalf("handled %d + dropped %d != 4000", handled.Load(), dropped.Load())
	}
}
