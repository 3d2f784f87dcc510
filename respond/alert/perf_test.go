package alert

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// TestDeliveryLatency measures submit → received on loopback for a burst
// of alerts (no throttling), and checks nothing is slow or lost.
func TestDeliveryLatency(t *testing.T) {
	rc := newReceiver(t)
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	rc.setRespond(func(_ int, r *http.Request, _ http.ResponseWriter) {
		mu.Lock()
		arrived[r.Header.Get("webhook-id")] = time.Now()
		mu.Unlock()
	})
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{Throttle: -1, DedupWindow: -1}}}})
	const n = 200
	sent := map[string]time.Time{}
	for i := range n {
		e := event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i))
		sent[e.ID] = time.Now()
		d.Submit(e)
	}
	poll.Until(t, 10*time.Second, "all arrived", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived) == n, fmt.Sprint(len(arrived))
	})
	var lat []time.Duration
	for id, at := range arrived {
		lat = append(lat, at.Sub(sent[id]))
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("%d alerts, submit → received: p50 %s, p99 %s, max %s", n, p50, p99, lat[len(lat)-1])
	if p99 > 2*time.Second {
		t.Fatalf("p99 delivery latency %s on loopback", p99)
	}
}

// TestCloseStopsGoroutines: a dispatcher leaves no goroutine behind.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	rc := newReceiver(t)
	for range 5 {
		d, err := New(Options{Routes: []Route{{Sender: webhook(t, rc.url())}, {Sender: webhook(t, rc.url()+"2")}}})
		if err != nil {
			t.Fatal(err)
		}
		d.Submit(event(detect.AccountLocked, "alice", "203.0.113.7"))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		d.Submit(event(detect.AccountLocked, "alice", "203.0.113.7")) // after Close: ignored
	}
	rc.srv.CloseClientConnections()
	poll.Until(t, 5*time.Second, "goroutines back to the start", func() (bool, string) {
		httpClient.CloseIdleConnections()
		now := runtime.NumGoroutine()
		return now <= before+1, fmt.Sprintf("%d before, %d now", before, now) // +1: the receiver's server
	})
}

// BenchmarkSubmit is the request-path cost of alerting: a LOW event is
// filtered by one comparison, a MEDIUM one is queued.
func BenchmarkSubmit(b *testing.B) {
	d, err := New(Options{Routes: []Route{{Sender: &Webhook{URL: "http://127.0.0.1:1/x", key: []byte("0123456789abcdef")}}}, Queue: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	low := event(detect.FailedLogin, "alice", "203.0.113.7")
	med := event(detect.AccountLocked, "alice", "203.0.113.7")
	b.Run("low", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d.Submit(low)
		}
	})
	b.Run("medium", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d.Submit(med)
		}
	})
}
