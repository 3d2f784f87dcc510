package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// blackhole accepts TCP connections and never answers: a Redis behind a
// dropped route or a hung server.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// TestBlackholedRedisNeitherStallsNorDrops: with Redis not answering, the
// router pays the outbox timeout once, not twice per event, so a burst is
// routed at once instead of at a few events a second (and dropped as
// queue_full); Close then takes about ShutdownTimeout, not minutes, and
// counts what could not be queued as dropped "shutdown".
func TestBlackholedRedisNeitherStallsNorDrops(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: blackhole(t), ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	rc := newReceiver(t)
	c := newCounts()
	d, err := New(Options{Outbox: NewRedisOutbox(store.NewKeyspace(client, "vigil:")), Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{Throttle: -1}}},
		Hooks: c.hooks(), Schedule: fastSchedule, Poll: 50 * time.Millisecond, ShutdownTimeout: time.Second, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	const n = 40
	for i := range n {
		d.Submit(event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i)))
	}
	// before the fix: 2 timeouts of 2s per event, 160s for the burst
	poll.Until(t, 12*time.Second, "burst routed", func() (bool, string) {
		return len(d.in) == 0, fmt.Sprintf("%d events waiting", len(d.in))
	})
	began := time.Now()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// ShutdownTimeout, plus an outbox timeout for a worker's call in flight
	if took := time.Since(began); took > time.Second+opTimeout+time.Second {
		t.Fatalf("Close took %s with Redis not answering", took)
	}
	shutdown, unavailable, full := c.get(c.dropped, "webhook/shutdown"), c.get(c.dropped, "webhook/outbox_unavailable"), c.get(c.dropped, "webhook/queue_full")
	if shutdown+unavailable != n || full != 0 {
		t.Fatalf("dropped: shutdown %d, outbox_unavailable %d, queue_full %d; want the %d alerts counted as shutdown", shutdown, unavailable, full, n)
	}
	if len(rc.requests()) != 0 {
		t.Fatal("an alert was delivered without going through the outbox")
	}
}

// slowReceiver answers 200 after a delay (a slow SIEM) and records ids.
func slowReceiver(t *testing.T, delay time.Duration) *receiver {
	rc := newReceiver(t)
	rc.setRespond(func(_ int, r *http.Request, _ http.ResponseWriter) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	})
	return rc
}

// TestLeaseCoversEveryAttempt: two instances share an outbox and a slow
// receiver. Before the fix one leased 16 jobs for one timeout + slack and
// sent them one after the other; the later ones were sent after the lease
// ran out, when the other instance had leased them too: duplicates.
func TestLeaseCoversEveryAttempt(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			var ob func() Outbox
			if name == "memory" {
				m := NewMemoryOutbox()
				ob = func() Outbox { return m }
			} else {
				client, prefix := redistest.Client(t)
				ob = func() Outbox { return NewRedisOutbox(store.NewKeyspace(client, prefix)) }
			}
			rc := slowReceiver(t, 100*time.Millisecond)
			c := newCounts()
			pol := Policy{Throttle: -1, DedupWindow: -1, Timeout: 250 * time.Millisecond}
			var ds []*Dispatcher
			for range 2 {
				ds = append(ds, start(t, Options{Outbox: ob(), Routes: []Route{{Sender: webhook(t, rc.url()), Policy: pol}},
					// a slack of 16 × 100 ms would cover the batch; 1.5 s
					// covers about half, so the release path runs too, and
					// leaves a filing of the outcome 750 ms even on a
					// machine stalled by other work
					Hooks: c.hooks(), LeaseSlack: 1500 * time.Millisecond}))
			}
			var ids []string
			for i := range leaseBatch {
				e := event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i))
				ids = append(ids, e.ID)
				ds[0].Submit(e)
			}
			poll.Until(t, 15*time.Second, "all delivered", func() (bool, string) { return atLeast(leaseBatch)(c.get(c.sent, "webhook")) })
			for _, d := range ds {
				settle(t, d)
			}
			for _, d := range ds {
				_ = d.Close() // attempts in flight end
			}
			exactlyOnce(t, rc.requests(), ids)
		})
	}
}

// outboxes runs f on a memory and a Redis outbox.
func outboxes(t *testing.T, f func(t *testing.T, o Outbox)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemoryOutbox()) })
	t.Run("redis", func(t *testing.T) {
		client, prefix := redistest.Client(t)
		f(t, NewRedisOutbox(store.NewKeyspace(client, prefix)))
	})
}

func queued(t *testing.T, o Outbox, ch string) (time.Time, int) {
	t.Helper()
	next, n, err := o.Next(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return next, n
}

// TestLateHolderLosesTheJob: A's lease ran out and B leased the job. A's
// late Ack must not remove B's job, and A's late Retry must neither
// reschedule it nor bring it back once B acknowledged it.
func TestLateHolderLosesTheJob(t *testing.T) {
	outboxes(t, func(t *testing.T, o Outbox) {
		ctx, ch := context.Background(), "webhook-0011223344556677"
		t0 := time.Now().Truncate(time.Millisecond)
		j := Job{ID: "job1", Alert: FromEvent(event(detect.IPBlocked, "", "198.51.100.1")), Queued: t0, Due: t0}
		if res, err := o.Put(ctx, ch, j, 10, time.Hour); res != PutOK || err != nil {
			t.Fatalf("put: %v %v", res, err)
		}
		a, err := o.Lease(ctx, ch, t0, t0.Add(time.Second), 4)
		if err != nil || len(a) != 1 {
			t.Fatalf("A leased %d jobs (%v)", len(a), err)
		}
		b, err := o.Lease(ctx, ch, t0.Add(2*time.Second), t0.Add(3*time.Second), 4)
		if err != nil || len(b) != 1 {
			t.Fatalf("B leased %d jobs after A's lease ran out (%v)", len(b), err)
		}
		if err := o.Ack(ctx, ch, a[0]); err != nil {
			t.Fatal(err)
		}
		if _, n := queued(t, o, ch); n != 1 {
			t.Fatal("A's late ack removed the job B holds")
		}
		late := a[0]
		late.Attempts, late.Due = 1, t0.Add(time.Hour)
		if err := o.Retry(ctx, ch, late, time.Hour); err != nil {
			t.Fatal(err)
		}
		if next, _ := queued(t, o, ch); !next.Equal(t0.Add(3 * time.Second)) {
			t.Fatalf("A's late retry rescheduled B's job to %s", next)
		}
		if err := o.Ack(ctx, ch, b[0]); err != nil {
			t.Fatal(err)
		}
		if err := o.Retry(ctx, ch, late, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, n := queued(t, o, ch); n != 0 {
			t.Fatal("A's late retry brought back a job B acknowledged")
		}
		// the holder itself can still retry and ack
		if res, _ := o.Put(ctx, ch, j, 10, time.Hour); res != PutOK {
			t.Fatal("put")
		}
		c, _ := o.Lease(ctx, ch, t0.Add(4*time.Second), t0.Add(5*time.Second), 4)
		if len(c) != 1 {
			t.Fatalf("leased %d", len(c))
		}
		c[0].Due = t0.Add(6 * time.Second)
		if err := o.Retry(ctx, ch, c[0], time.Hour); err != nil {
			t.Fatal(err)
		}
		if next, n := queued(t, o, ch); n != 1 || !next.Equal(t0.Add(6*time.Second)) {
			t.Fatalf("holder's retry: %d jobs due %s", n, next)
		}
	})
}

// TestQueuesExpire: a channel's queue expires ttl after its last put or
// retry, so the jobs of a channel nobody serves any more do not stay.
func TestQueuesExpire(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		client, prefix := redistest.Client(t)
		o := NewRedisOutbox(store.NewKeyspace(client, prefix))
		ctx, ch := context.Background(), "slack-0011223344556677"
		now := time.Now()
		a := FromEvent(event(detect.IPBlocked, "", "198.51.100.1"))
		if res, err := o.Put(ctx, ch, Job{ID: "a", Alert: a, Queued: now, Due: now}, 10, time.Hour); res != PutOK || err != nil {
			t.Fatal(res, err)
		}
		for _, k := range o.keys(ch) {
			ttl, err := client.PTTL(ctx, k).Result()
			if err != nil || ttl <= 0 || ttl > time.Hour {
				t.Fatalf("%s: TTL %s (%v), want (0, 1h]", k, ttl, err)
			}
		}
		jobs, err := o.Lease(ctx, ch, now, now.Add(time.Minute), 1)
		if len(jobs) != 1 {
			t.Fatal("lease", err)
		}
		client.Persist(ctx, o.keys(ch)[0])
		if err := o.Retry(ctx, ch, jobs[0], 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if ttl := client.PTTL(ctx, o.keys(ch)[0]).Val(); ttl <= time.Hour {
			t.Fatalf("retry left TTL %s, want about 2h", ttl)
		}
	})
	t.Run("memory", func(t *testing.T) {
		o := NewMemoryOutbox()
		ctx := context.Background()
		now := time.Now()
		if res, _ := o.Put(ctx, "slack-1", Job{ID: "a", Queued: now, Due: now}, 10, 20*time.Millisecond); res != PutOK {
			t.Fatal("put")
		}
		if res, _ := o.Put(ctx, "slack-2", Job{ID: "b", Queued: now, Due: now}, 10, time.Hour); res != PutOK {
			t.Fatal("put")
		}
		poll.Until(t, 5*time.Second, "queue expired", func() (bool, string) {
			_, n := queued(t, o, "slack-1")
			return n == 0, fmt.Sprint(n)
		})
		if _, n := queued(t, o, "slack-2"); n != 1 {
			t.Fatal("the other channel's queue expired too")
		}
	})
}

// TestAdoptOrphanedQueue: the jobs of a channel the new dispatcher lacks
// move to its only channel of the same kind and are delivered (same id);
// with no (or several) such channels they are counted as "orphaned".
func TestAdoptOrphanedQueue(t *testing.T) {
	o := NewMemoryOutbox()
	url, _ := downReceiver(t)
	c := newCounts()
	pol := Policy{Throttle: -1, DedupWindow: -1}
	old := start(t, Options{Outbox: o, Routes: []Route{{Sender: webhook(t, url), Policy: pol}}, Hooks: c.hooks(),
		Schedule: []time.Duration{0, time.Hour}})
	e := event(detect.AccountLocked, "alice", "203.0.113.7")
	old.Submit(e)
	poll.Until(t, 5*time.Second, "first attempt failed", func() (bool, string) { return atLeast(1)(c.get(c.failed, "webhook")) })
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t)
	d := start(t, Options{Outbox: o, Routes: []Route{{Sender: webhook(t, rc.url()), Policy: pol}}, Hooks: c.hooks()})
	d.Adopt(context.Background(), old.Channels())
	poll.Until(t, 5*time.Second, "moved and delivered", func() (bool, string) { return atLeast(1)(c.get(c.sent, "webhook")) })
	settle(t, d)
	exactlyOnce(t, rc.requests(), []string{e.ID})
	if _, n := queued(t, o, old.Channels()[0]); n != 0 {
		t.Fatalf("%d jobs left on the old channel", n)
	}

	// two webhooks: ambiguous, counted
	old2 := start(t, Options{Outbox: o, Routes: []Route{{Sender: webhook(t, url), Policy: pol}}, Hooks: c.hooks(),
		Schedule: []time.Duration{0, time.Hour}})
	old2.Submit(event(detect.AccountLocked, "bob", "203.0.113.8"))
	poll.Until(t, 5*time.Second, "first attempt failed", func() (bool, string) { return atLeast(2)(c.get(c.failed, "webhook")) })
	_ = old2.Close()
	two := start(t, Options{Outbox: o, Hooks: c.hooks(), Routes: []Route{
		{Sender: webhook(t, rc.url()+"/a"), Policy: pol}, {Sender: webhook(t, rc.url()+"/b"), Policy: pol}}})
	two.Adopt(context.Background(), old2.Channels())
	if got := c.get(c.dropped, "webhook/orphaned"); got != 1 {
		t.Fatalf("orphaned %d, want 1", got)
	}
	if _, n := queued(t, o, old2.Channels()[0]); n != 0 {
		t.Fatalf("%d jobs left on the old channel", n)
	}
}

// TestMaxAgeFullyUsed: retries go on until max_age, the last one due at
// max_age, instead of stopping when the next scheduled step would pass it.
func TestMaxAgeFullyUsed(t *testing.T) {
	rc := newReceiver(t)
	rc.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	c := newCounts()
	const maxAge = 600 * time.Millisecond
	start(t, Options{Schedule: []time.Duration{0, 50 * time.Millisecond, 300 * time.Millisecond}, Hooks: c.hooks(),
		Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{Throttle: -1, MaxAge: maxAge, Timeout: 200 * time.Millisecond}}}}).
		Submit(event(detect.IPBlocked, "", "198.51.100.1"))
	poll.Until(t, 5*time.Second, "given up", func() (bool, string) { return atLeast(1)(c.get(c.dropped, "webhook/expired")) })
	reqs := rc.requests()
	span := reqs[len(reqs)-1].At.Sub(reqs[0].At)
	if span < maxAge-50*time.Millisecond {
		t.Fatalf("last of %d attempts %s after the first; max_age %s was cut short", len(reqs), span, maxAge)
	}
}

// TestSlackUserTextIsVerbatim: bare URLs, #channel and @channel in user
// input are neither linked nor parsed as mentions.
func TestSlackUserTextIsVerbatim(t *testing.T) {
	const hostile = "@channel https://evil.example #general"
	msg := SlackMessage(FromEvent(event(detect.CredentialStuffing, hostile, "203.0.113.7")))
	b, _ := json.Marshal(msg)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	var objs int
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				objs++
				if x["verbatim"] != true {
					t.Errorf("mrkdwn text object without verbatim: %v", x)
				}
			}
			for _, val := range x {
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	walk(m["blocks"])
	if objs == 0 {
		t.Fatal("no mrkdwn objects")
	}
	text := m["text"].(string)
	for _, bad := range []string{"@channel", "#general", "https://evil"} {
		if strings.Contains(text, bad) {
			t.Errorf("fallback text carries %q as typed: %q", bad, text)
		}
	}
	if !strings.Contains(text, "@\u2060channel") || !strings.Contains(text, "#\u2060general") {
		t.Errorf("fallback text lost the user's text: %q", text)
	}
}

// TestMemoryDedupBounded: a flood of distinct dedup keys keeps the memory
// outbox's dedup map at its cap; the newest keys are still recognised.
func TestMemoryDedupBounded(t *testing.T) {
	o := NewMemoryOutbox()
	o.maxSeen = 100
	ctx := context.Background()
	for i := range 1000 {
		if first, _ := o.FirstSeen(ctx, "ch", fmt.Sprint(i), time.Hour); !first {
			t.Fatalf("key %d reported as seen", i)
		}
	}
	if len(o.seen) > 100 || len(o.order) > 200 {
		t.Fatalf("dedup map holds %d keys (%d records), cap 100", len(o.seen), len(o.order))
	}
	if first, _ := o.FirstSeen(ctx, "ch", "999", time.Hour); first {
		t.Fatal("the newest key was forgotten")
	}
	if first, _ := o.FirstSeen(ctx, "ch", "0", time.Hour); !first {
		t.Fatal("the oldest key was kept over the cap")
	}
}
