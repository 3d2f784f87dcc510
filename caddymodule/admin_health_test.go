package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
	"github.com/vigilsec/vigil/respond"
)

func healthOf(t *testing.T, a *App) (int, respond.HealthReport) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := serveHealth(rec, httptest.NewRequest(http.MethodGet, "/vigil/health", nil), a); err != nil {
		t.Fatal(err)
	}
	var rep respond.HealthReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	return rec.Code, rep
}

func TestHealthMemory(t *testing.T) {
	a := testApp(t)
	a.Alerts = []AlertConfig{{Type: "webhook"}, {Type: "webhook"}, {Type: "slack"}}
	alertQueueDepth.WithLabelValues("slack").Set(4)
	defer alertQueueDepth.WithLabelValues("slack").Set(0)
	code, rep := healthOf(t, a)
	if code != http.StatusOK || rep.Status != "ok" || !rep.Store.Reachable || rep.Store.FallbackActive ||
		rep.Store.Type != "memory" || rep.Store.FailMode != "open" || rep.Store.LastResync != nil {
		t.Fatalf("%d %+v", code, rep)
	}
	if len(rep.Queues.Alerts) != 2 || rep.Queues.Alerts["slack"] != 4 {
		t.Fatalf("alert queues: %+v", rep.Queues.Alerts)
	}
}

// TestHealthRedis: 200 while Redis answers, 503 with the fail mode once it
// is gone, and how long the check takes is bounded by pingTimeout.
func TestHealthRedis(t *testing.T) {
	srv, _ := redistest.Private(t)
	ks, err := store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: "vigiltest:" + redistest.RandomHex(6) + ":"}.Open()
	if err != nil {
		t.Fatal(err)
	}
	st, err := respond.NewRedisStore(context.Background(), ks, respond.RedisStoreOptions{Retention: time.Hour}, respond.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a := &App{Store: &StoreConfig{Type: "redis", Addrs: []string{srv.Addr}}, FailMode: "closed",
		state: &sharedState{store: st}, logger: zap.NewNop()}
	a.buildCore()
	t.Cleanup(func() { _ = a.logSink.Close() })
	a.watchStore()
	t.Cleanup(a.unwatchStore)

	code, rep := healthOf(t, a)
	if code != http.StatusOK || rep.Status != "ok" || rep.Store.Address != srv.Addr || rep.Store.LatencyMS <= 0 {
		t.Fatalf("up: %d %+v", code, rep)
	}

	srv.Stop()
	start := time.Now()
	code, rep = healthOf(t, a)
	if took := time.Since(start); took > 2*pingTimeout {
		t.Fatalf("the health check took %s", took)
	}
	if code != http.StatusServiceUnavailable || rep.Store.Reachable || rep.Store.Error == "" ||
		rep.Status != "failing_closed" || rep.Message != msgStoreDownClosed {
		t.Fatalf("down: %d %+v", code, rep)
	}
}
