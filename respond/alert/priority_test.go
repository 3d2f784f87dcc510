package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// TestFullQueueLetsMediumIn: a channel's queue is full of LOW jobs (the
// receiver is down). Another LOW alert is dropped; a MEDIUM one takes the
// place of the oldest LOW job, which is counted as dropped queue_full, and
// is delivered once the receiver is back.
func TestFullQueueLetsMediumIn(t *testing.T) {
	outboxes(t, func(t *testing.T, o Outbox) {
		rc := newReceiver(t)
		var up atomic.Bool
		var mu sync.Mutex
		got := map[string]int{} // ids delivered (answered 200)
		rc.setRespond(func(_ int, r *http.Request, w http.ResponseWriter) {
			if !up.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			mu.Lock()
			got[r.Header.Get("webhook-id")]++
			mu.Unlock()
		})
		c := newCounts()
		d := start(t, Options{Outbox: o, Hooks: c.hooks(), Routes: []Route{{Sender: webhook(t, rc.url()),
			Policy: Policy{MinSeverity: detect.Low, MaxQueue: 5, DedupWindow: -1}}}})
		ch := d.Channels()[0]
		low := map[string]bool{}
		for i := range 5 {
			e := event(detect.FailedLogin, fmt.Sprintf("user%d", i), "198.51.100.1")
			low[e.ID] = true
			d.Submit(e)
		}
		poll.Until(t, 5*time.Second, "queue full", func() (bool, string) { _, n := queued(t, o, ch); return n == 5, fmt.Sprint(n) })
		d.Submit(event(detect.FailedLogin, "late", "198.51.100.1"))
		poll.Until(t, 5*time.Second, "the 6th LOW dropped", func() (bool, string) { return atLeast(1)(c.get(c.dropped, "webhook/queue_full")) })
		lock := event(detect.AccountLocked, "alice", "203.0.113.7")
		d.Submit(lock)
		poll.Until(t, 5*time.Second, "a LOW job evicted", func() (bool, string) { return atLeast(2)(c.get(c.dropped, "webhook/queue_full")) })
		if _, n := queued(t, o, ch); n != 5 {
			t.Fatalf("%d jobs queued after the eviction, want 5", n)
		}
		up.Store(true)
		poll.Until(t, 5*time.Second, "delivered", func() (bool, string) { return atLeast(5)(c.get(c.sent, "webhook")) })
		settle(t, d)
		mu.Lock()
		defer mu.Unlock()
		lows := 0
		for id := range got {
			if low[id] {
				lows++
			}
		}
		if got[lock.ID] != 1 || lows != 4 || len(got) != 5 || c.get(c.dropped, "webhook/queue_full") != 2 {
			t.Fatalf("delivered %d distinct (lock %v, %d LOW), queue_full %d; want the lock, 4 LOW, 2 dropped",
				len(got), got[lock.ID] == 1, lows, c.get(c.dropped, "webhook/queue_full"))
		}
	})
}

// TestOutboxUrgentFirst: Lease hands out MEDIUM+ jobs before older LOW
// ones; a full queue evicts its oldest LOW job for a MEDIUM+ one only;
// Ack and Take leave no index behind.
func TestOutboxUrgentFirst(t *testing.T) {
	outboxes(t, func(t *testing.T, o Outbox) {
		ctx, ch := context.Background(), "webhook-00112233aabbccdd"
		t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		job := func(id string, sev detect.Severity, at time.Time) Job {
			a := FromEvent(event(detect.FailedLogin, id, "198.51.100.1"))
			a.Severity = sev
			return Job{ID: id, Alert: a, Queued: at, Due: at}
		}
		put := func(j Job, want PutResult) {
			t.Helper()
			if res, err := o.Put(ctx, ch, j, 4, time.Hour); res != want || err != nil {
				t.Fatalf("put %s: %v (%v), want %v", j.ID, res, err, want)
			}
		}
		for i := range 3 {
			put(job(fmt.Sprintf("low%d", i), detect.Low, t0.Add(time.Duration(i)*time.Second)), PutOK)
		}
		put(job("med", detect.Medium, t0.Add(10*time.Second)), PutOK)
		put(job("low9", detect.Low, t0.Add(11*time.Second)), PutFull)
		put(job("high", detect.High, t0.Add(12*time.Second)), PutEvicted) // low0 goes
		now := time.Now()
		got, err := o.Lease(ctx, ch, now, now.Add(time.Minute), 3)
		if err != nil || len(got) != 3 || got[0].ID != "med" || got[1].ID != "high" || got[2].ID != "low1" {
			t.Fatalf("leased %v (%v), want med, high, low1", ids(got), err)
		}
		rest, _ := o.Lease(ctx, ch, now, now.Add(time.Minute), 3)
		if len(rest) != 1 || rest[0].ID != "low2" {
			t.Fatalf("then leased %v, want low2", ids(rest))
		}
		for _, j := range append(got, rest...) {
			if err := o.Ack(ctx, ch, j); err != nil {
				t.Fatal(err)
			}
		}
		// with nothing LOW to evict, a MEDIUM+ job is refused too
		var meds []Job
		for i := range 4 {
			meds = append(meds, job(fmt.Sprint("med", i), detect.Medium, now))
			put(meds[i], PutOK)
		}
		put(job("crit", detect.Critical, now), PutFull)
		for _, j := range meds {
			if err := o.Ack(ctx, ch, j); err != nil {
				t.Fatal(err)
			}
		}
		if _, n := queued(t, o, ch); n != 0 {
			t.Fatalf("%d jobs left", n)
		}
		if r, ok := o.(*RedisOutbox); ok {
			for _, k := range r.scriptKeys(ch) {
				if n := r.client.Exists(ctx, k).Val(); n != 0 {
					t.Fatalf("%s left behind after every ack", k)
				}
			}
		}
	})
}

func ids(jobs []Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// TestRedisTakeClearsIndexes: taking a channel's queue removes its index
// keys too.
func TestRedisTakeClearsIndexes(t *testing.T) {
	client, prefix := redistest.Client(t)
	o := NewRedisOutbox(store.NewKeyspace(client, prefix))
	ctx, ch, now := context.Background(), "slack-00112233aabbccdd", time.Now()
	for i, sev := range []detect.Severity{detect.Low, detect.High} {
		a := FromEvent(event(detect.FailedLogin, "", "198.51.100.1"))
		a.Severity = sev
		if res, _ := o.Put(ctx, ch, Job{ID: fmt.Sprint(i), Alert: a, Queued: now, Due: now}, 10, time.Hour); res != PutOK {
			t.Fatal("put")
		}
	}
	jobs, err := o.Take(ctx, ch)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("took %d (%v)", len(jobs), err)
	}
	if keys := redistest.Keys(t, client, prefix); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

// TestPendingPrefersMedium: while the outbox is down the held puts of all
// channels share one bound; at the bound a MEDIUM put takes the place of
// the oldest LOW one and a LOW put is dropped.
func TestPendingPrefersMedium(t *testing.T) {
	c := newCounts()
	d, err := New(Options{Routes: []Route{{Sender: webhook(t, "http://127.0.0.1:1/x")}}, Hooks: c.hooks(), Deferred: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	r := d.routes[0]
	job := func(sev detect.Severity) Job {
		a := FromEvent(event(detect.FailedLogin, "", "198.51.100.1"))
		a.Severity = sev
		return Job{ID: a.ID, Alert: a}
	}
	for range defaultPending {
		d.hold(r, job(detect.Low))
	}
	oldest := d.pending[0].j.ID
	med := job(detect.Medium)
	d.hold(r, med)
	d.hold(r, job(detect.Low))
	if len(d.pending) != defaultPending || d.pending[len(d.pending)-1].j.ID != med.ID || d.pending[0].j.ID == oldest {
		t.Fatalf("pending %d, last %s, first still the oldest LOW: %v", len(d.pending), d.pending[len(d.pending)-1].j.ID, d.pending[0].j.ID == oldest)
	}
	if n := c.get(c.dropped, "webhook/outbox_unavailable"); n != 2 {
		t.Fatalf("dropped %d, want 2 (the evicted LOW and the late LOW)", n)
	}
}

// TestLowEventsQueueApart: a flood of LOW events fills only the LOW queue;
// a MEDIUM event submitted after it is still taken.
func TestLowEventsQueueApart(t *testing.T) {
	rc := newReceiver(t)
	c := newCounts()
	d, err := New(Options{Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{MinSeverity: detect.Low}}},
		Queue: 4, Hooks: c.hooks(), Schedule: fastSchedule, Deferred: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	for i := range 10 {
		d.Submit(event(detect.FailedLogin, fmt.Sprint(i), "198.51.100.1"))
	}
	lock := event(detect.AccountLocked, "alice", "203.0.113.7")
	d.Submit(lock)
	if n := c.get(c.dropped, "webhook/queue_full"); n != 6 || len(d.in) != 1 {
		t.Fatalf("dropped %d, MEDIUM queue %d; want 6 LOW dropped and the lock queued", n, len(d.in))
	}
	d.Start()
	poll.Until(t, 5*time.Second, "delivered", func() (bool, string) { return len(rc.requests()) == 5, fmt.Sprint(len(rc.requests())) })
}

// TestWindowsBounded: however many (type, severity) pairs arrive, a
// channel keeps at most maxWindows windows plus one overflow window per
// severity; ended windows are dropped; their digests still account for
// every alert held back.
func TestWindowsBounded(t *testing.T) {
	o := NewMemoryOutbox()
	d, err := New(Options{Outbox: o, Deferred: true, Routes: []Route{{Sender: webhook(t, "http://127.0.0.1:1/x"),
		Policy: Policy{MinSeverity: detect.Low, Throttle: 1, DedupWindow: -1, MaxQueue: 1 << 20}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	r := d.routes[0]
	const types, each = 100, 3
	for i := range types {
		for sev := detect.Low; sev <= detect.Critical; sev++ {
			for range each {
				e := event(detect.Type(fmt.Sprintf("TYPE_%03d", i)), "", "198.51.100.1")
				e.Severity = sev
				d.route(e)
			}
		}
	}
	if n := len(r.wins); n > maxWindows+4 {
		t.Fatalf("%d windows open, bound %d", n, maxWindows+4)
	}
	for sev := detect.Low; sev <= detect.Critical; sev++ {
		if r.wins[winKey{"", sev}] == nil {
			t.Fatalf("no overflow window for %s", sev)
		}
	}
	d.closeWindows(time.Now().Add(time.Hour), false)
	if len(r.wins) != 0 {
		t.Fatalf("%d windows left after they ended", len(r.wins))
	}
	jobs, _ := o.Take(context.Background(), r.id)
	sent, held := 0, 0
	for _, j := range jobs {
		if j.Alert.Type != DigestType {
			sent++
			continue
		}
		held += j.Alert.Details["suppressed"].(int)
	}
	if sent+held != types*4*each {
		t.Fatalf("%d sent + %d held, want %d", sent, held, types*4*each)
	}
}

// TestDigestParts: a window that held more ids than one body carries
// sends several digests, each within MaxBody and uncut, each describing
// its own share; beyond maxDigestIDs the ids are counted only.
func TestDigestParts(t *testing.T) {
	w := &window{}
	now := time.Now()
	w.admit(now, 0)
	const n = maxDigestIDs + 50
	for range n {
		w.hold(FromEvent(event(detect.FailedLogin, "", "198.51.100.1")), reasonThrottled, now)
	}
	parts := w.digests(now, "webhook-00112233aabbccdd", winKey{detect.FailedLogin, detect.Low})
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	total, listed := 0, 0
	for i, p := range parts {
		b := p.Body()
		var back Alert
		if err := json.Unmarshal(b, &back); err != nil || back.Truncated || len(b) > MaxBody {
			t.Fatalf("part %d: %d bytes, truncated %v (%v)", i+1, len(b), back.Truncated, err)
		}
		ids := back.Details["event_ids"].([]any)
		s := int(back.Details["suppressed"].(float64))
		omitted := int(back.Details["event_ids_omitted"].(float64))
		if s != len(ids)+omitted || back.Details["by_reason"].(map[string]any)["throttled"] != float64(s) {
			t.Fatalf("part %d: suppressed %d for %d ids + %d omitted: %v", i+1, s, len(ids), omitted, back.Details["by_reason"])
		}
		total, listed = total+s, listed+len(ids)
		if back.DedupKey != "vigil-digest-webhook-00112233aabbccdd-FAILED_LOGIN-LOW" || back.Severity != detect.Low {
			t.Fatalf("part %d: dedup_key %s, severity %s", i+1, back.DedupKey, back.Severity)
		}
	}
	if total != n || listed != maxDigestIDs {
		t.Fatalf("suppressed %d (want %d), listed %d (want %d)", total, n, listed, maxDigestIDs)
	}
}

// TestUrgentJumpsLowBacklog: behind a slow receiver (a SIEM taking 2ms an
// alert) 300 LOW alerts wait on the channel; an ACCOUNT_LOCKED queued
// after them is leased before them, so it waits for the batch in flight,
// not for the backlog.
func TestUrgentJumpsLowBacklog(t *testing.T) {
	outboxes(t, func(t *testing.T, o Outbox) {
		rc := slowReceiver(t, 2*time.Millisecond)
		d := start(t, Options{Outbox: o, Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{MinSeverity: detect.Low}}}})
		for i := range 300 {
			d.Submit(event(detect.FailedLogin, fmt.Sprint("user", i), "198.51.100.1"))
		}
		// the backlog is in the outbox before the lock is submitted
		poll.Until(t, 5*time.Second, "backlog queued", func() (bool, string) {
			_, n := queued(t, o, d.Channels()[0])
			return len(d.low) == 0 && n >= 200, fmt.Sprint(n)
		})
		lock := event(detect.AccountLocked, "alice", "203.0.113.7")
		before := len(rc.requests())
		d.Submit(lock)
		pos := func() int {
			for i, r := range rc.requests() {
				if r.Header.Get("webhook-id") == lock.ID {
					return i
				}
			}
			return -1
		}
		poll.Until(t, 10*time.Second, "lock delivered", func() (bool, string) { return pos() >= 0, fmt.Sprint(len(rc.requests())) })
		// at most the batch in flight (and one leased meanwhile) goes first
		t.Logf("the lock was delivery %d of 301, %d after it was submitted", pos()+1, pos()+1-before)
		if p := pos(); p-before > 2*leaseBatch {
			t.Fatalf("the lock was delivery %d, %d after it was submitted: it waited behind the LOW backlog", p+1, p+1-before)
		}
	})
}
