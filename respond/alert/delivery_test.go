package alert

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// downReceiver reserves a loopback port with nothing listening on it; up
// starts a receiver there.
func downReceiver(t *testing.T) (url string, up func() *receiver) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook", func() *receiver {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("re-listening on %s: %v", addr, err)
		}
		rc := &receiver{}
		rc.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(rc.serve)}}
		rc.srv.Start()
		t.Cleanup(rc.srv.Close)
		return rc
	}
}

// exactlyOnce checks that every id arrived exactly once.
func exactlyOnce(t *testing.T, reqs []request, ids []string) {
	t.Helper()
	got := map[string]int{}
	for _, r := range reqs {
		got[r.Header.Get("webhook-id")]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("alert %s arrived %d times, want once", id, got[id])
		}
	}
	if len(got) != len(ids) {
		t.Errorf("receiver saw %d distinct ids, want %d", len(got), len(ids))
	}
}

// TestReceiverDownThenBack: alerts queued while nothing listens are all
// delivered, once each, when the receiver comes back.
func TestReceiverDownThenBack(t *testing.T) {
	url, up := downReceiver(t)
	c := newCounts()
	d := start(t, Options{
		Routes: []Route{{Sender: webhook(t, url), Policy: Policy{Throttle: -1}}},
		Hooks:  c.hooks(),
	})
	var ids []string
	for i := range 10 {
		e := event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i))
		ids = append(ids, e.ID)
		d.Submit(e)
	}
	poll.Until(t, 5*time.Second, "every alert failed at least twice", func() (bool, string) {
		return atLeast(20)(c.get(c.failed, "webhook"))
	})
	rc := up()
	poll.Until(t, 10*time.Second, "all delivered", func() (bool, string) {
		return atLeast(10)(c.get(c.sent, "webhook"))
	})
	settle(t, d)
	exactlyOnce(t, rc.requests(), ids)
	for _, r := range rc.requests() {
		independentVerify(t, testSecret, r)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	rc := newReceiver(t)
	rc.setRespond(func(n int, _ *http.Request, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url())}}})
	d.Submit(event(detect.IPBlocked, "", "198.51.100.1"))
	poll.Until(t, 5*time.Second, "second attempt", func() (bool, string) { return len(rc.requests()) == 2, "" })
	reqs := rc.requests()
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 950*time.Millisecond {
		t.Fatalf("retried %s after a Retry-After of 1s", gap)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	rc := newReceiver(t)
	rc.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	c := newCounts()
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{DedupWindow: -1}}}, Hooks: c.hooks()})
	d.Submit(event(detect.IPBlocked, "", "198.51.100.1"))
	poll.Until(t, 5*time.Second, "gone", func() (bool, string) { return atLeast(1)(c.get(c.dropped, "webhook/gone")) })
	d.Submit(event(detect.IPBlocked, "", "198.51.100.2"))
	poll.Until(t, 5*time.Second, "later alerts dropped", func() (bool, string) {
		return atLeast(1)(c.get(c.dropped, "webhook/disabled"))
	})
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("a disabled endpoint got %d requests, want 1", n)
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 404, 413} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			rc := newReceiver(t)
			rc.setRespond(func(_ int, _ *http.Request, w http.ResponseWriter) { w.WriteHeader(status) })
			c := newCounts()
			d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url())}}, Hooks: c.hooks()})
			d.Submit(event(detect.IPBlocked, "", "198.51.100.1"))
			poll.Until(t, 5*time.Second, "rejected", func() (bool, string) {
				return atLeast(1)(c.get(c.dropped, "webhook/rejected"))
			})
			settle(t, d)
			if n := len(rc.requests()); n != 1 {
				t.Fatalf("%d answered %d times, want 1 (no retry)", status, n)
			}
		})
	}
}

// TestSlowReceiverTimesOut: an attempt that outlasts the timeout fails and
// is retried; once the receiver is fast again the alert arrives.
func TestSlowReceiverTimesOut(t *testing.T) {
	rc := newReceiver(t)
	release := make(chan struct{})
	rc.setRespond(func(n int, r *http.Request, _ http.ResponseWriter) {
		if n <= 2 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	t.Cleanup(func() { close(release) })
	c := newCounts()
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{Timeout: 100 * time.Millisecond}}}, Hooks: c.hooks()})
	started := time.Now()
	d.Submit(event(detect.IPBlocked, "", "198.51.100.1"))
	poll.Until(t, 5*time.Second, "delivered after two timeouts", func() (bool, string) {
		return c.get(c.sent, "webhook") == 1, fmt.Sprint(c.get(c.failed, "webhook"))
	})
	if f := c.get(c.failed, "webhook"); f != 2 {
		t.Fatalf("%d failed attempts, want 2 timeouts", f)
	}
	if el := time.Since(started); el > 2*time.Second {
		t.Fatalf("took %s: the timeout did not cut the slow attempts", el)
	}
}

// TestUnreachableGivesUpAfterMaxAge: nothing listens; the alert is retried
// until max_age, then dropped as expired.
func TestUnreachableGivesUpAfterMaxAge(t *testing.T) {
	url, _ := downReceiver(t)
	c := newCounts()
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, url), Policy: Policy{MaxAge: 300 * time.Millisecond}}}, Hooks: c.hooks()})
	d.Submit(event(detect.IPBlocked, "", "198.51.100.1"))
	poll.Until(t, 5*time.Second, "expired", func() (bool, string) {
		return atLeast(1)(c.get(c.dropped, "webhook/expired"))
	})
	if f := c.get(c.failed, "webhook"); f < 2 {
		t.Fatalf("%d attempts before giving up, want several", f)
	}
	// and a host that does not resolve fails the same way, without panicking
	bad, err := NewWebhook("http://does-not-exist.invalid/hook", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	d2 := start(t, Options{Routes: []Route{{Sender: bad, Policy: Policy{MaxAge: 100 * time.Millisecond}}}, Hooks: c.hooks()})
	d2.Submit(event(detect.IPBlocked, "", "198.51.100.1"))
	poll.Until(t, 5*time.Second, "expired", func() (bool, string) {
		return atLeast(2)(c.get(c.dropped, "webhook/expired"))
	})
}

// TestDeferredStart: a deferred dispatcher (a configuration only being
// validated) keeps what it is given and sends nothing until Start.
func TestDeferredStart(t *testing.T) {
	rc := newReceiver(t)
	d, err := New(Options{Routes: []Route{{Sender: webhook(t, rc.url())}}, Schedule: fastSchedule, Deferred: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	d.Submit(event(detect.AccountLocked, "alice", "203.0.113.7"))
	if n := len(d.in); n != 1 {
		t.Fatalf("a deferred dispatcher routed the event (queue %d, want 1 waiting)", n)
	}
	d.Start()
	poll.Until(t, 5*time.Second, "delivered after Start", func() (bool, string) { return len(rc.requests()) == 1, "" })
}
