package respond

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/store"
)

// RedisEvents is the EventLog of the Redis store: the stream
// "<prefix>events", one entry per event with the event's JSON in field "e".
// Append only queues; one writer goroutine adds the queued events in
// pipelined batches, so the request path never waits for Redis. Events are
// batched across requests: the writer lingers up to eventLinger after the
// first event of a batch, so at a few hundred failed logins a second one
// XADD pipeline carries several events instead of one round trip each.
// While Redis is unreachable the writer holds up to the queue bound in
// memory (dropping the oldest beyond it, counted as dropped events) and
// retries with backoff.
//
// The stream is capped by length always (every XADD carries MAXLEN ~) and
// by age when a retention is set (an XTRIM MINID ~ ends each batch's
// pipeline: one XADD can carry only one trimming strategy, and the length
// cap is the one that bounds Redis's memory on every entry). Both trims are
// approximate: Redis drops whole stream nodes (stream-node-max-entries, 100
// by default), so the stream may run up to a node past either cap. The
// stream has no TTL: these trims are its bound.
type RedisEvents struct {
	client    redis.UniversalClient
	stream    string
	retention time.Duration
	maxLen    int64
	hooks     Hooks

	queue *batchQueue
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

const (
	// DefaultEventQueue bounds the events waiting to be written.
	DefaultEventQueue = 10000
	// StreamMaxLen is the default length cap of the stream, with or
	// without a retention: about 1 KB per event, so about 1 GB of Redis.
	StreamMaxLen = 1_000_000
	// QueryScanLimit is the most stream entries one Query reads; a sparse
	// filter over a long stream returns a short page with Next set instead
	// of holding Redis and the admin API for long.
	QueryScanLimit = 10000

	eventBatch     = 256             // XADDs per pipeline
	eventFlushWait = 2 * time.Second // how long Close may spend flushing
	maxWritePause  = 5 * time.Second // longest retry backoff
	// eventLinger is how long the writer waits for more events before
	// writing a batch that is not full: events reach the stream (and the
	// dashboards of other instances) this much later, in exchange for one
	// round trip per batch instead of one per event.
	eventLinger = 20 * time.Millisecond
	// idClockSlack widens a Since bound on stream IDs: IDs are Redis's clock
	// at write time, which trails the event's time but may be skewed.
	idClockSlack = 5 * time.Minute
)

// RedisEventsOptions tune a RedisEvents.
type RedisEventsOptions struct {
	Retention time.Duration // > 0: trim entries older than it (MINID ~)
	MaxLen    int           // cap at about this many entries (MAXLEN ~); <= 0: StreamMaxLen
	Queue     int           // events held while waiting to be written; <= 0: DefaultEventQueue
}

// NewRedisEvents starts the writer with the default length cap. retention
// > 0 also trims entries older than it. queue <= 0 means DefaultEventQueue.
func NewRedisEvents(ks store.Keyspace, retention time.Duration, queue int, hooks Hooks) *RedisEvents {
	return NewRedisEventsWith(ks, RedisEventsOptions{Retention: retention, Queue: queue}, hooks)
}

// NewRedisEventsWith starts the writer.
func NewRedisEventsWith(ks store.Keyspace, opts RedisEventsOptions, hooks Hooks) *RedisEvents {
	if opts.Queue <= 0 {
		opts.Queue = DefaultEventQueue
	}
	if opts.MaxLen <= 0 {
		opts.MaxLen = StreamMaxLen
	}
	r := &RedisEvents{
		client: ks.Client, stream: ks.Key("events"), retention: opts.Retention, maxLen: int64(opts.MaxLen),
		hooks: hooks, queue: newBatchQueue(opts.Queue, eventBatch, hooks.eventDropped),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// Append implements EventLog. It never blocks: beyond the bound (or on a
// closed log) an event is dropped and counted.
func (r *RedisEvents) Append(e detect.Event) {
	r.queue.put(e)
}

// Close writes what is queued, for at most two seconds, and stops the
// writer; events it could not write are counted as dropped. It does not
// close the client.
func (r *RedisEvents) Close() error {
	r.once.Do(func() {
		r.queue.close()
		close(r.stop)
		<-r.done
	})
	return nil
}

// run is the writer goroutine. batch holds the events taken from the queue
// and not yet written: after a failure they are retried first, in order.
func (r *RedisEvents) run() {
	defer close(r.done)
	batch := make([]detect.Event, 0, eventBatch)
	var pause time.Duration
	for {
		if len(batch) == 0 {
			if !r.queue.wait(r.stop, eventLinger) {
				r.flushOnClose(batch)
				return
			}
			batch = r.queue.take(eventBatch, batch)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := r.write(ctx, batch)
		cancel()
		r.queue.done(n)
		batch = batch[:copy(batch, batch[n:])]
		if err == nil {
			pause = 0
			continue
		}
		// Redis is unreachable: wait before retrying (Append keeps queueing)
		pause = min(max(2*pause, 100*time.Millisecond), maxWritePause)
		if !sleepUntil(r.stop, pause) {
			r.flushOnClose(batch)
			return
		}
	}
}

// sleepUntil waits for d and reports false if stop closed first.
func sleepUntil(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// flushOnClose writes the held batch and what is queued, for at most
// eventFlushWait, and counts the rest as dropped.
func (r *RedisEvents) flushOnClose(batch []detect.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), eventFlushWait)
	defer cancel()
	for ctx.Err() == nil {
		if len(batch) == 0 {
			if batch = r.queue.take(eventBatch, batch); len(batch) == 0 {
				return
			}
		}
		n, err := r.write(ctx, batch)
		r.queue.done(n)
		batch = batch[:copy(batch, batch[n:])]
		if err != nil && !sleepCtx(ctx, 100*time.Millisecond) {
			break
		}
	}
	for {
		for range batch {
			r.hooks.eventDropped()
		}
		r.queue.done(len(batch))
		if batch = r.queue.take(eventBatch, batch[:0]); len(batch) == 0 {
			return
		}
	}
}

// write XADDs a batch in one pipeline, trimmed by length on each XADD and
// by age at the end, and returns how many events, from the front, are done
// with (written, or unencodable and counted as dropped). Stopping at the
// first failure keeps the stream in event order.
func (r *RedisEvents) write(ctx context.Context, batch []detect.Event) (int, error) {
	args := redis.XAddArgs{Stream: r.stream, Approx: true, MaxLen: r.maxLen}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	for i, e := range batch {
		b, err := json.Marshal(e)
		if err != nil {
			continue // e.g. a detail that JSON cannot hold: cmds[i] stays nil
		}
		a := args
		a.Values = []any{"e", b}
		cmds[i] = pipe.XAdd(ctx, &a)
	}
	var trim *redis.IntCmd
	if r.retention > 0 && pipe.Len() > 0 {
		minID := strconv.FormatInt(max(0, time.Now().Add(-r.retention).UnixMilli()), 10)
		trim = pipe.XTrimMinIDApprox(ctx, r.stream, minID, 0)
	}
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx) // errors are read per command
	}
	for i, c := range cmds {
		if c == nil {
			r.hooks.eventDropped()
			continue
		}
		if err := c.Err(); err != nil {
			r.hooks.storeError("events_write")
			return i, err
		}
	}
	if trim != nil && trim.Err() != nil {
		// the events are in: the next batch trims again
		r.hooks.storeError("events_trim")
	}
	return len(batch), nil
}

// Query implements EventLog, newest first. The cursor is a stream ID: the
// next page continues strictly below it.
func (r *RedisEvents) Query(ctx context.Context, f EventFilter) (EventPage, error) {
	limit := f.PageLimit()
	start, end := "+", "-"
	if f.Cursor != "" {
		if !validStreamID(f.Cursor) {
			return EventPage{}, fmt.Errorf("invalid cursor %q", f.Cursor)
		}
		start = "(" + f.Cursor
	}
	if !f.Since.IsZero() {
		// an event is written after it happens, so its ID is not older
		end = strconv.FormatInt(max(0, f.Since.Add(-idClockSlack).UnixMilli()), 10)
	}
	var page EventPage
	var lastReturned, lastScanned string
	scanned, batch := 0, limit+1
	for scanned < QueryScanLimit {
		n := min(batch, QueryScanLimit-scanned)
		msgs, err := r.client.XRevRangeN(ctx, r.stream, start, end, int64(n)).Result()
		if err != nil {
			return EventPage{}, fmt.Errorf("events query: %w", err)
		}
		for _, m := range msgs {
			scanned++
			lastScanned = m.ID
			e, ok := decodeStreamEvent(m)
			if !ok || !f.Match(e) {
				continue
			}
			if len(page.Events) == limit {
				// one more match exists: the next page starts below the last one returned
				page.Next = lastReturned
				return page, nil
			}
			page.Events = append(page.Events, e)
			lastReturned = m.ID
		}
		if len(msgs) < n {
			return page, nil // reached the oldest entry
		}
		start = "(" + lastScanned
		batch = min(2*batch, 1000)
	}
	page.Next = lastScanned // scan budget spent: the caller may continue
	return page, nil
}

func decodeStreamEvent(m redis.XMessage) (detect.Event, bool) {
	var e detect.Event
	s, ok := m.Values["e"].(string)
	return e, ok && json.Unmarshal([]byte(s), &e) == nil
}

// validStreamID accepts "<ms>-<seq>", the only cursor Query hands out.
func validStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	return ok && isDigits(ms) && isDigits(seq) && len(s) <= 41
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// sleepCtx waits for d and reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
