package respond

import (
	"sync"
	"time"

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
// a bounded queue and a goroutine of its own: Publish only queues, and
// beyond the bound the oldest queued event is dropped and counted. The
// goroutine is woken once per batch (see batchQueue), not once per event.
type QueuedSink struct {
	queue  *batchQueue
	handle func(detect.Event)
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

const (
	sinkBatch = 64
	// sinkLinger is how long a sink's goroutine waits for more events
	// after the first of a batch: a log line is written this much later.
	sinkLinger = 10 * time.Millisecond
)

// Queue starts handle's goroutine behind a queue of size events; dropped
// (may be nil) is told of every event that did not fit.
func Queue(handle func(detect.Event), size int, dropped func()) *QueuedSink {
	q := &QueuedSink{queue: newBatchQueue(size, sinkBatch, dropped), handle: handle, stop: make(chan struct{}), done: make(chan struct{})}
	go q.run()
	return q
}

// Publish implements Sink.
func (q *QueuedSink) Publish(e detect.Event) {
	q.queue.put(e)
}

func (q *QueuedSink) run() {
	defer close(q.done)
	batch := make([]detect.Event, 0, sinkBatch)
	for q.queue.wait(q.stop, sinkLinger) {
		batch = q.handleBatch(batch)
	}
	// Close: handle what is still queued
	for batch = q.handleBatch(batch); len(batch) > 0; batch = q.handleBatch(batch) {
	}
}

// handleBatch handles up to sinkBatch queued events and returns the batch
// it used (empty when nothing was queued).
func (q *QueuedSink) handleBatch(batch []detect.Event) []detect.Event {
	batch = q.queue.take(sinkBatch, batch[:0])
	for i := range batch {
		q.handle(batch[i])
		batch[i] = detect.Event{}
	}
	q.queue.done(len(batch))
	return batch
}

// Close handles what is queued and stops the goroutine. Events published
// after Close are dropped and counted.
func (q *QueuedSink) Close() error {
	q.once.Do(func() {
		q.queue.close()
		close(q.stop)
	})
	<-q.done
	return nil
}
