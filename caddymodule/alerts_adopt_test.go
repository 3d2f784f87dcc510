package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// TestAlertsFollowChangedChannel: an alert queued for a webhook whose URL
// then changes in a reload is delivered to the new URL (before, it stayed
// in the outbox forever, never sent and never counted); when the new
// configuration has no single channel of that kind, it is counted as
// dropped "orphaned".
func TestAlertsFollowChangedChannel(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable) // retried, in 5s
	}))
	defer down.Close()
	var mu sync.Mutex
	ids := map[string]int{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		ids[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer up.Close()
	store := StoreConfig{Type: "memory"}
	failed := func() float64 { return counterValue(alertsFailed.WithLabelValues("webhook")) }

	queue := func(url string) (*App, string) {
		t.Helper()
		old := &App{Alerts: []AlertConfig{{Type: "webhook", URL: url, Secret: goodSecret}}}
		if err := old.provisionAlerts(store); err != nil {
			t.Fatal(err)
		}
		old.alerts.Start() // as App.Start does
		f0 := failed()
		e := detect.NewEvent(detect.AccountLocked, time.Now())
		e.User, e.IP = "alice", "203.0.113.7"
		old.alerts.Submit(e)
		poll.True(t, 5*time.Second, "first attempt failed", func() bool { return failed() > f0 })
		return old, e.ID
	}

	old, id := queue(down.URL + "/old")
	changed := &App{Alerts: []AlertConfig{{Type: "webhook", URL: up.URL + "/new", Secret: goodSecret}}}
	if err := changed.provisionAlerts(store); err != nil {
		t.Fatal(err)
	}
	changed.alerts.Start() // as App.Start does
	defer changed.cleanupAlerts()
	if err := old.cleanupAlerts(); err != nil { // the reload finishes
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "queued alert delivered to the new URL", func() bool { mu.Lock(); defer mu.Unlock(); return ids[id] == 1 })

	orphaned := func() float64 { return counterValue(alertsDropped.WithLabelValues("webhook", "orphaned")) }
	o0 := orphaned()
	old2, _ := queue(down.URL + "/old2")
	two := &App{Alerts: []AlertConfig{
		{Type: "webhook", URL: up.URL + "/a", Secret: goodSecret},
		{Type: "webhook", URL: up.URL + "/b", Secret: goodSecret},
	}}
	if err := two.provisionAlerts(store); err != nil {
		t.Fatal(err)
	}
	two.alerts.Start() // as App.Start does
	defer two.cleanupAlerts()
	if err := old2.cleanupAlerts(); err != nil {
		t.Fatal(err)
	}
	if got := orphaned() - o0; got != 1 {
		t.Fatalf("orphaned alerts counted: %v, want 1", got)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
