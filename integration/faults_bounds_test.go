package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
)

// TestFaultRedisKilledBeyondBuffers: Redis is killed and more failed logins
// arrive than events_buffer and alerts_buffer hold. When Redis is back, the
// events and alerts that fitted reach the stream and the webhook, and every
// one left out is counted: the events missing from the stream are exactly
// vigil_events_dropped_total{sink="store"}, the alerts that never arrived
// exactly vigil_alerts_dropped_total{reason="outbox_unavailable"}.
func TestFaultRedisKilledBeyondBuffers(t *testing.T) {
	const eventsBuffer, alertsBuffer, logins = 20, 10, 50
	srv := redistest.StartServer(t, 0)
	h := newHookReceiver(t)
	global := redisAt(srv.Addr) + fmt.Sprintf(`
		fail_mode open
		events_buffer %d
		alerts_buffer %d
		alert webhook %s/hook {
			secret %s
			min_severity LOW
		}`, eventsBuffer, alertsBuffer, h.srv.URL, alertSecret)
	g := startGateway(t, gatewayConfig{Global: global, Policy: countOnlyPolicy})

	// the whole way works before the outage: stream and webhook
	wantFailedLogin(t, g.login("pre-0", "wrong"))
	poll.Until(t, 10*time.Second, "the alert of a login before the outage", func() (bool, string) {
		return len(h.alerts("FAILED_LOGIN", "pre-0")) == 1, h.summary()
	})
	g.waitEvents(q("type", "FAILED_LOGIN", "user", "pre-0"), "the event of a login before the outage", func(evs []event) bool { return len(evs) == 1 })

	srv.Stop()
	poll.True(t, 10*time.Second, "the store-down WARN line", func() bool { return strings.Contains(g.output(), logStoreDown) })
	for i := 0; i < logins; i++ {
		wantFailedLogin(t, g.login(fmt.Sprintf("out-%d", i), "wrong"))
	}
	redistest.StartServer(t, srv.Port)
	poll.True(t, 20*time.Second, "the store-up INFO line", func() bool { return strings.Contains(g.output(), logStoreUp) })

	outage := func(users map[string]bool) int {
		n := 0
		for u := range users {
			if strings.HasPrefix(u, "out-") {
				n++
			}
		}
		return n
	}
	var written int
	var droppedEvents float64
	poll.Until(t, 20*time.Second, "the outage's events in the stream or counted as dropped", func() (bool, string) {
		seen := map[string]bool{}
		for _, e := range g.events(q("type", "FAILED_LOGIN", "limit", "1000")) {
			seen[e.User] = true
		}
		written = outage(seen)
		droppedEvents, _ = metricValue(g.scrape(), "vigil_events_dropped_total", `sink="store"`)
		return written+int(droppedEvents) == logins, fmt.Sprintf("%d written, %g dropped of %d", written, droppedEvents, logins)
	})
	var delivered int
	var droppedAlerts float64
	poll.Until(t, 20*time.Second, "the outage's alerts delivered or counted as dropped", func() (bool, string) {
		h.mu.Lock()
		got := map[string]bool{}
		for _, a := range h.got {
			if u, ok := a["user"].(string); ok && a["type"] == "FAILED_LOGIN" {
				got[u] = true
			}
		}
		h.mu.Unlock()
		delivered = outage(got)
		droppedAlerts, _ = metricValue(g.scrape(), "vigil_alerts_dropped_total", `channel="webhook",reason="outbox_unavailable"`)
		return delivered+int(droppedAlerts) == logins, fmt.Sprintf("%d delivered, %g dropped of %d", delivered, droppedAlerts, logins)
	})
	t.Logf("%d failed logins while Redis was down: events %d written, %g dropped (events_buffer %d); alerts %d delivered, %g dropped (alerts_buffer %d)",
		logins, written, droppedEvents, eventsBuffer, delivered, droppedAlerts, alertsBuffer)
	// what fitted is exactly the bound: nothing more was held, nothing
	// that fitted was lost
	if written != eventsBuffer {
		t.Fatalf("%d of the outage's events reached the stream, want events_buffer = %d", written, eventsBuffer)
	}
	if delivered != alertsBuffer {
		t.Fatalf("%d of the outage's alerts were delivered, want alerts_buffer = %d", delivered, alertsBuffer)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.ids {
		if n != 1 {
			t.Fatalf("alert %s delivered %d times", id, n)
		}
	}
}
