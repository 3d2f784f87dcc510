package respond

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// sampleEvents returns n events a second apart, of mixed types, users and
// severities.
func sampleEvents(n int, base time.Time) []detect.Event {
	out := make([]detect.Event, n)
	for i := range out {
		t := detect.FailedLogin
		if i%2 == 1 {
			t = detect.SuccessfulLogin
		}
		if i%5 == 0 {
			t = detect.AccountLocked
		}
		e := detect.NewEvent(t, base.Add(time.Duration(i)*time.Second))
		e.User = fmt.Sprintf("user%d", i%3)
		e.IP = fmt.Sprintf("192.0.2.%d", i%4)
		e.Details = map[string]any{"n": float64(i)}
		out[i] = e
	}
	return out
}

func TestRedisEventsQuery(t *testing.T) {
	client, prefix := redistest.Client(t)
	ev := NewRedisEvents(store.NewKeyspace(client, prefix), 0, 0, Hooks{})
	defer ev.Close()
	mem := NewMemoryEvents(100) // the reference behaviour
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, e := range sampleEvents(25, base) {
		ev.Append(e)
		mem.Append(e)
	}
	ctx := context.Background()
	poll.True(t, 5*time.Second, "25 events in the stream", func() bool {
		return client.XLen(ctx, prefix+"events").Val() == 25
	})

	// three pages of 10, 10 and 5, newest first, no duplicates
	seen := map[string]bool{}
	var sizes []int
	var last time.Time
	f := EventFilter{Limit: 10}
	for page := 0; ; page++ {
		p, err := ev.Query(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(p.Events))
		for _, e := range p.Events {
			if seen[e.ID] {
				t.Fatalf("event %s returned twice", e.ID)
			}
			seen[e.ID] = true
			if !last.IsZero() && !e.Time.Before(last) {
				t.Fatalf("not newest first: %v after %v", e.Time, last)
			}
			last = e.Time
		}
		if p.Next == "" {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		f.Cursor = p.Next
	}
	if fmt.Sprint(sizes) != "[10 10 5]" || len(seen) != 25 {
		t.Fatalf("page sizes %v, %d distinct events", sizes, len(seen))
	}

	filters := []EventFilter{
		{Types: []detect.Type{detect.FailedLogin}},
		{Types: []detect.Type{detect.AccountLocked, detect.SuccessfulLogin}, Limit: 3},
		{User: " USER1 "},
		{IP: "192.0.2.3", MinSeverity: detect.Low},
		{MinSeverity: detect.Medium},
		{Since: base.Add(5 * time.Second), Until: base.Add(12 * time.Second)},
		{Since: base.Add(time.Hour)},
	}
	for _, f := range filters {
		got, err := ev.Query(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mem.Query(ctx, f)
		if ids(got.Events) != ids(want.Events) || (got.Next == "") != (want.Next == "") {
			t.Errorf("filter %+v: redis %s (next %q), memory %s (next %q)", f, ids(got.Events), got.Next, ids(want.Events), want.Next)
		}
	}
	if _, err := ev.Query(ctx, EventFilter{Cursor: "+ OR 1"}); err == nil {
		t.Fatal("a malformed cursor was accepted")
	}
}

func ids(es []detect.Event) string {
	s := ""
	for _, e := range es {
		s += e.ID[:6] + " "
	}
	return s
}

func TestRedisEventsScanLimit(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	stream := prefix + "events"
	// the only matching event is the oldest, behind more than one scan budget
	target := detect.NewEvent(detect.SystemIntrusion, time.Now())
	writeRaw(t, client, stream, "1-1", target)
	pipe := client.Pipeline()
	filler := detect.NewEvent(detect.FailedLogin, time.Now())
	for i := 0; i < QueryScanLimit+50; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("2-%d", i+1), Values: []any{"e", mustJSON(t, filler)}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	ev := NewRedisEvents(store.NewKeyspace(client, prefix), 0, 0, Hooks{})
	defer ev.Close()
	f := EventFilter{Types: []detect.Type{detect.SystemIntrusion}}
	p, err := ev.Query(ctx, f)
	if err != nil || len(p.Events) != 0 || p.Next == "" {
		t.Fatalf("first call: %d events, next %q, %v (want none and a cursor)", len(p.Events), p.Next, err)
	}
	f.Cursor = p.Next
	p, err = ev.Query(ctx, f)
	if err != nil || len(p.Events) != 1 || p.Events[0].ID != target.ID || p.Next != "" {
		t.Fatalf("second call: %+v, %v", p, err)
	}
}

func writeRaw(t *testing.T, c redis.UniversalClient, stream, id string, e detect.Event) {
	t.Helper()
	if err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, ID: id, Values: []any{"e", mustJSON(t, e)}}).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRedisEventsRetention(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	stream := prefix + "events"
	// MINID ~ only drops whole stream nodes, so write a few nodes' worth of
	// entries from 1970 (IDs are milliseconds); the length cap is far off
	node := streamNode(t, client)
	old := 3 * node
	pipe := client.Pipeline()
	e := detect.NewEvent(detect.FailedLogin, time.Unix(1, 0))
	for i := 0; i < old; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("%d-0", 1000+i), Values: []any{"e", mustJSON(t, e)}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	ev := NewRedisEvents(store.NewKeyspace(client, prefix), time.Hour, 0, Hooks{})
	fresh := detect.NewEvent(detect.IPBlocked, time.Now())
	ev.Append(fresh)
	ev.Close()
	n := client.XLen(ctx, stream).Val()
	if n > int64(node)+1 {
		t.Fatalf("stream holds %d entries after trimming %d old ones", n, old)
	}
	last := client.XRevRangeN(ctx, stream, "+", "-", 1).Val()
	if len(last) != 1 || last[0].Values["e"] != string(mustJSON(t, fresh)) {
		t.Fatalf("the new event is missing: %v", last)
	}
}

// TestRedisEventsCappedByLength: the stream is capped by length whether
// or not a retention also trims it by age (MAXLEN ~ drops whole nodes, so
// it may run up to one node past the cap).
func TestRedisEventsCappedByLength(t *testing.T) {
	for _, retention := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("retention=", retention), func(t *testing.T) {
			client, prefix := redistest.Client(t)
			ctx := context.Background()
			node := streamNode(t, client)
			ev := NewRedisEventsWith(store.NewKeyspace(client, prefix), RedisEventsOptions{Retention: retention, MaxLen: node}, Hooks{})
			events := sampleEvents(5*node, time.Now())
			for _, e := range events {
				ev.Append(e)
			}
			ev.Close()
			stream := prefix + "events"
			if n := client.XLen(ctx, stream).Val(); n < int64(node) || n > int64(2*node) {
				t.Fatalf("stream holds %d entries, cap %d (one node of slack)", n, node)
			}
			last := client.XRevRangeN(ctx, stream, "+", "-", 1).Val()
			if len(last) != 1 || last[0].Values["e"] != string(mustJSON(t, events[len(events)-1])) {
				t.Fatalf("the newest event is missing: %v", last)
			}
		})
	}
}

// streamNode is the server's stream-node-max-entries, the granularity of
// approximate trimming.
func streamNode(t *testing.T, client redis.UniversalClient) int {
	t.Helper()
	if v, err := client.ConfigGet(context.Background(), "stream-node-max-entries").Result(); err == nil {
		if n, err := strconv.Atoi(v["stream-node-max-entries"]); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

func TestRedisEventsQueuedWhileDown(t *testing.T) {
	srv, client := redistest.Private(t)
	var h hookCounts
	prefix := "vigiltest:" + redistest.RandomHex(6) + ":"
	ev := NewRedisEvents(store.NewKeyspace(client, prefix), 0, 0, h.hooks())
	defer ev.Close()
	srv.Stop()
	for _, e := range sampleEvents(20, time.Now()) {
		ev.Append(e)
	}
	poll.True(t, 5*time.Second, "a failed write", func() bool { return h.errors("events_write") > 0 })
	redistest.StartServer(t, srv.Port)
	poll.True(t, 10*time.Second, "the queued events in the stream", func() bool {
		return client.XLen(context.Background(), prefix+"events").Val() == 20
	})
	if h.drops() != 0 {
		t.Fatalf("%d events dropped", h.drops())
	}
}

func TestRedisEventsNeverBlock(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t)), MaxRetries: -1, DialerRetries: 1})
	defer client.Close()
	var h hookCounts
	ev := NewRedisEvents(store.NewKeyspace(client, "vigiltest:"), 0, 4, h.hooks())
	start := time.Now()
	for _, e := range sampleEvents(1000, start) {
		ev.Append(e)
	}
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Fatalf("1000 appends took %v with Redis down", took)
	}
	// the bound counts the batch in the writer's hands too
	if h.drops() < 1000-4 {
		t.Fatalf("only %d drops counted; at most 4 events fit", h.drops())
	}
	start = time.Now()
	ev.Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if h.drops() != 1000 {
		t.Fatalf("%d drops counted after Close, want all 1000", h.drops())
	}
	ev.Append(detect.NewEvent(detect.FailedLogin, time.Now())) // after Close: dropped, no panic
}

func TestEventRing(t *testing.T) {
	var q eventRing
	dropped := 0
	for i := 0; i < 300; i++ {
		e := detect.Event{ID: strconv.Itoa(i)}
		if q.push(e, 100) {
			dropped++
		}
	}
	if q.n != 100 || dropped != 200 {
		t.Fatalf("n=%d dropped=%d", q.n, dropped)
	}
	got := q.front(3, nil)
	if got[0].ID != "200" || got[2].ID != "202" {
		t.Fatalf("front: %v", got)
	}
	q.pop(99)
	if got := q.front(5, nil); len(got) != 1 || got[0].ID != "299" {
		t.Fatalf("after pop: %v", got)
	}
}

func mustJSON(t *testing.T, e detect.Event) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
