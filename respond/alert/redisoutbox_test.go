package alert

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// TestRedisOutboxSurvivesRestart: alerts queued while the receiver is down
// are in Redis; the dispatcher is closed (the gateway stops) and a new one
// on a new client (the gateway restarted) delivers every one, once.
func TestRedisOutboxSurvivesRestart(t *testing.T) {
	client, prefix := redistest.Client(t)
	url, up := downReceiver(t)
	c := newCounts()
	route := func() []Route { return []Route{{Sender: webhook(t, url), Policy: Policy{Throttle: -1}}} }
	d1 := start(t, Options{Outbox: NewRedisOutbox(store.NewKeyspace(client, prefix)), Routes: route(), Hooks: c.hooks()})
	var ids []string
	for i := range 5 {
		e := event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i))
		ids = append(ids, e.ID)
		d1.Submit(e)
	}
	poll.Until(t, 5*time.Second, "each alert tried", func() (bool, string) { return atLeast(5)(c.get(c.failed, "webhook")) })
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	keys := redistest.Keys(t, client, prefix)
	var due string
	for _, k := range keys {
		if strings.HasSuffix(k, "}:due") {
			due = k
		}
		if strings.Contains(k, "198.51") || strings.Contains(k, "127.0.0.1") {
			t.Fatalf("raw input in a key: %s", k)
		}
	}
	if n, _ := client.ZCard(context.Background(), due).Result(); n != 5 {
		t.Fatalf("%d jobs in %q after the stop, want 5 (keys %v)", n, due, keys)
	}

	rc := up()
	fresh := redis.NewClient(&redis.Options{Addr: client.Options().Addr})
	t.Cleanup(func() { fresh.Close() })
	d := start(t, Options{Outbox: NewRedisOutbox(store.NewKeyspace(fresh, prefix)), Routes: route(), Hooks: c.hooks()})
	poll.Until(t, 10*time.Second, "delivered after the restart", func() (bool, string) { return atLeast(5)(c.get(c.sent, "webhook")) })
	settle(t, d)
	exactlyOnce(t, rc.requests(), ids)
	if n, _ := client.ZCard(context.Background(), due).Result(); n != 0 {
		t.Fatalf("%d jobs left in the outbox", n)
	}
}

// TestRedisDedupAcrossInstances: two gateways on one Redis report the same
// lockout; the receiver hears it once.
func TestRedisDedupAcrossInstances(t *testing.T) {
	client, prefix := redistest.Client(t)
	rc := newReceiver(t)
	c := newCounts()
	var ds []*Dispatcher
	for range 2 {
		ds = append(ds, start(t, Options{Outbox: NewRedisOutbox(store.NewKeyspace(client, prefix)), Routes: []Route{{Sender: webhook(t, rc.url())}}, Hooks: c.hooks()}))
	}
	for _, d := range ds {
		d.Submit(event(detect.AccountLocked, "alice", "203.0.113.7"))
	}
	poll.Until(t, 5*time.Second, "duplicate suppressed", func() (bool, string) { return atLeast(1)(c.get(c.dropped, "webhook/duplicate")) })
	poll.Until(t, 5*time.Second, "one sent", func() (bool, string) { return atLeast(1)(c.get(c.sent, "webhook")) })
	for _, d := range ds {
		settle(t, d)
	}
	if alerts, _ := received(t, rc); len(alerts) != 1 {
		t.Fatalf("receiver got %d lockout alerts, want 1", len(alerts))
	}
}

// TestRedisDownThenBack: while Redis is down alerts wait in memory; when it
// is back they go through the outbox to the receiver.
func TestRedisDownThenBack(t *testing.T) {
	srv := redistest.StartServer(t, 0)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	rc := newReceiver(t)
	c := newCounts()
	logs := &logRecorder{}
	d := start(t, Options{Outbox: NewRedisOutbox(store.NewKeyspace(client, "vigil:")), Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{Throttle: -1}}}, Hooks: c.hooks(), Logger: slog.New(logs)})
	srv.Stop()
	var ids []string
	for i := range 3 {
		e := event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i))
		ids = append(ids, e.ID)
		d.Submit(e)
	}
	poll.Until(t, 10*time.Second, "the router holds alerts while Redis is down", func() (bool, string) {
		return logs.logged("alert outbox unavailable; holding alerts in memory")
	})
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("%d alerts delivered without the outbox", n)
	}
	redistest.StartServer(t, srv.Port)
	poll.Until(t, 10*time.Second, "delivered once Redis is back", func() (bool, string) { return atLeast(3)(c.get(c.sent, "webhook")) })
	settle(t, d)
	exactlyOnce(t, rc.requests(), ids)
}
