package respond

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/store"
)

// RedisEvents is the EventLog of the Redis store: the stream
// "<prefix>events", one entry per event with the event's JSON in field "e".
// Append only queues; one writer goroutine adds the queued events in
// pipelined batches, so the request path never waits for Redis. While Redis
// is unreachable the writer holds up to the queue bound in memory (dropping
// the oldest beyond it, counted as dropped events) and retries with backoff.
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
	bound     int
	hooks     Hooks

	queue   chan detect.Event // Append -> writer
	backlog eventRing         // writer only: taken from the queue, not yet written
	// backlogLen mirrors backlog.n for Depth, which runs on other goroutines
	backlogLen atomic.Int64
	closed     atomic.Bool
	stop       chan struct{}
	done       chan struct{}
	once       sync.Once
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
	// idClockSlack widens a Since bound on stream IDs: IDs are Redis's clock
	// at write time, which trails the event's time but may be skewed.
	idClockSlack = 5 * time.Minute
)

// RedisEventsOptions tune a RedisEvents.
type RedisEventsOptions struct {
	Retention time.Duration // > 0: trim entries older than it (MINID ~)
	MaxLen    int           // cap at about this many entries (MAXLEN ~); <= 0: StreamMaxLen
	Queue     int           // events waiting to be written; <= 0: DefaultEventQueue
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
		bound: opts.Queue, hooks: hooks, queue: make(chan detect.Event, opts.Queue),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// Append implements EventLog. It never blocks: a full queue (or a closed
// log) drops the event and counts it.
func (r *RedisEvents) Append(e detect.Event) {
	if r.closed.Load() {
		r.hooks.eventDropped()
		return
	}
	select {
	case r.queue <- e:
	default:
		r.hooks.eventDropped()
	}
}

// Close writes what is queued, for at most two seconds, and stops the
// writer; events it could not write are counted as dropped. It does not
// close the client.
func (r *RedisEvents) Close() error {
	r.once.Do(func() {
		r.closed.Store(true)
		close(r.stop)
		<-r.done
	})
	return nil
}

// run is the writer goroutine.
func (r *RedisEvents) run() {
	defer close(r.done)
	batch := make([]detect.Event, 0, eventBatch)
	var pause time.Duration
	for {
		r.backlogLen.Store(int64(r.backlog.n))
		if r.backlog.n == 0 {
			select {
			case e := <-r.queue:
				r.push(e)
				// linger briefly so a burst shares one pipeline: a round
				// trip per event would cost more CPU than the event itself
				if !r.collectUntil(eventLinger, eventBatch) {
					r.flushOnClose()
					return
				}
			case <-r.stop:
				r.flushOnClose()
				return
			}
		}
		r.drain()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		batch = r.backlog.front(eventBatch, batch[:0])
		n, err := r.write(ctx, batch)
		cancel()
		r.backlog.pop(n)
		if err == nil {
			pause = 0
			continue
		}
		// Redis is unreachable: keep collecting while waiting to retry
		pause = min(max(2*pause, 100*time.Millisecond), maxWritePause)
		if !r.collect(pause) {
			r.flushOnClose()
			return
		}
	}
}

// push adds an event to the backlog, counting the oldest it displaces.
func (r *RedisEvents) push(e detect.Event) {
	if r.backlog.push(e, r.bound) {
		r.hooks.eventDropped()
	}
}

// drain moves whatever is queued into the backlog without waiting.
func (r *RedisEvents) drain() {
	for {
		select {
		case e := <-r.queue:
			r.push(e)
		default:
			return
		}
	}
}

// eventLinger is how long the writer waits for more events before writing
// a batch that is not full.
const eventLinger = 2 * time.Millisecond

// collect waits for d while still taking events off the queue; it reports
// false when Close was called.
func (r *RedisEvents) collect(d time.Duration) bool {
	return r.collectUntil(d, 0)
}

// collectUntil is collect that also returns early once the backlog holds
// full events (0: no early return).
func (r *RedisEvents) collectUntil(d time.Duration, full int) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for full == 0 || r.backlog.n < full {
		select {
		case e := <-r.queue:
			r.push(e)
		case <-t.C:
			return true
		case <-r.stop:
			return false
		}
	}
	return true
}

func (r *RedisEvents) flushOnClose() {
	ctx, cancel := context.WithTimeout(context.Background(), eventFlushWait)
	defer cancel()
	r.drain()
	batch := make([]detect.Event, 0, eventBatch)
	for r.backlog.n > 0 && ctx.Err() == nil {
		batch = r.backlog.front(eventBatch, batch[:0])
		n, err := r.write(ctx, batch)
		r.backlog.pop(n)
		if err != nil && !sleepCtx(ctx, 100*time.Millisecond) {
			break
		}
	}
	for ; r.backlog.n > 0; r.backlog.pop(1) {
		r.hooks.eventDropped()
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
