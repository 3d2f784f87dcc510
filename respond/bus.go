package respond

import (
	"sync"

	"github.com/vigilsec/vigil/detect"
)

// Sink is one consumer of security events: the log, metrics, the store's
// event log, alert channels, Caddy events, later the audit chain. Publish
// must never block: a sink with slow work owns a bounded queue (see Queue).
type Sink interface {
	Publish(e detect.Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(e detect.Event)

// Publish implements Sink.
func (f SinkFunc) Publish(e detect.Event) { f(e) }

// Bus hands every event to every sink, in the order they were added. It
// holds no queue of its own: publishing costs one call per sink.
type Bus struct {
	sinks []Sink
}

// NewBus returns a bus over sinks (nil sinks are skipped).
func NewBus(sinks ...Sink) *Bus {
	b := &Bus{}
	for _, s := range sinks {
		if s != nil {
			b.sinks = append(b.sinks, s)
		}
	}
	return b
}

// Publish implements Sink.
func (b *Bus) Publish(e detect.Event) {
	for _, s := range b.sinks {
		s.Publish(e)
	}
}

// QueuedSink gives a sink whose work may wait (a log file on a slow disk)
// a bounded queue and a goroutine of its own: Publish only queues, and a
// full queue drops the event and counts the drop.
type QueuedSink struct {
	queue   chan detect.Event
	handle  func(detect.Event)
	dropped func()
	mu      sync.RWMutex // Publish holds it shared, so Close never closes the queue under a send
	closed  bool
	done    chan struct{}
}

// Queue starts handle's goroutine behind a queue of size events; dropped
// (may be nil) is told of every event that did not fit.
func Queue(handle func(detect.Event), size int, dropped func()) *QueuedSink {
	q := &QueuedSink{queue: make(chan detect.Event, size), handle: handle, dropped: dropped, done: make(chan struct{})}
	go q.run()
	return q
}

// Publish implements Sink.
func (q *QueuedSink) Publish(e detect.Event) {
	q.mu.RLock()
	sent := false
	if !q.closed {
		select {
		case q.queue <- e:
			sent = true
		default:
		}
	}
	q.mu.RUnlock()
	if !sent && q.dropped != nil {
		q.dropped()
	}
}

func (q *QueuedSink) run() {
	defer close(q.done)
	for e := range q.queue {
		q.handle(e)
	}
}

// Close handles what is queued and stops the goroutine. Events published
// after Close are dropped and counted.
func (q *QueuedSink) Close() error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.queue)
	}
	q.mu.Unlock()
	<-q.done
	return nil
}
