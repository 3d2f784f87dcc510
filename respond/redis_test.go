package respond

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/store"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
)

// hookCounts records what the store reports through its Hooks.
type hookCounts struct {
	mu      sync.Mutex
	errs    map[string]int
	dropped int
}

func (h *hookCounts) hooks() Hooks {
	return Hooks{
		StoreError: func(op string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.errs == nil {
				h.errs = map[string]int{}
			}
			h.errs[op]++
		},
		EventDropped: func() {
			h.mu.Lock()
			h.dropped++
			h.mu.Unlock()
		},
	}
}

func (h *hookCounts) errors(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errs[op]
}

func (h *hookCounts) drops() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

func TestRedisStoreFailOpen(t *testing.T) {
	srv := redistest.StartServer(t, 0)
	var h hookCounts
	ctx := context.Background()
	prefix := "vigiltest:" + redistest.RandomHex(6) + ":"
	st, err := openRedisStore(store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: prefix}, h.hooks())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := detect.KeysFor("alice", "203.0.113.7")
	w := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute, Stuffing: time.Minute}
	for i := 1; i <= 3; i++ {
		_, c, err := st.Counter.Reserve(ctx, k, w, time.Now())
		if err != nil || c.Account != i {
			t.Fatalf("failure %d: %+v, %v", i, c, err)
		}
	}
	if !st.Healthy() {
		t.Fatal("unhealthy with Redis up")
	}

	srv.Stop()
	_, c, err := st.Counter.Reserve(ctx, k, w, time.Now())
	if err != nil || c.Account != 4 {
		// the memory fallback already held the three earlier failures
		t.Fatalf("with Redis down: %+v, %v (want 4 failures, no error)", c, err)
	}
	if st.Healthy() {
		t.Fatal("healthy with Redis down")
	}
	if h.errors("reserve") == 0 {
		t.Fatal("the store error hook was not called")
	}
	d, fresh, err := st.Decisions.Impose(ctx, Decision{Kind: Lock, Target: "alice", Source: "auto"}, time.Minute, time.Hour, time.Now())
	if err != nil || !fresh || d.Strike != 1 {
		t.Fatalf("impose with Redis down: %+v fresh=%v err=%v", d, fresh, err)
	}
	if _, locked := st.Cache.Locked("alice", time.Now()); !locked {
		t.Fatal("the lock imposed during the outage is not enforced locally")
	}
	if list, err := st.Decisions.List(ctx, time.Now()); err != nil || len(list) != 1 {
		t.Fatalf("list with Redis down: %v, %v", list, err)
	}
	st.Events.Append(detect.NewEvent(detect.AccountLocked, time.Now()))

	srv2 := redistest.StartServer(t, srv.Port)
	poll.True(t, 10*time.Second, "healthy again after an operation", func() bool {
		_, _, _ = st.Counter.Reserve(ctx, k, w, time.Now())
		return st.Healthy()
	})
	check := redis.NewClient(&redis.Options{Addr: srv2.Addr})
	defer check.Close()
	poll.True(t, 10*time.Second, "the outage's lock replayed into Redis", func() bool {
		return check.HExists(ctx, prefix+"decisions", DecisionKey(Lock, "alice")).Val()
	})
	poll.True(t, 10*time.Second, "the outage's event written", func() bool {
		return check.XLen(ctx, prefix+"events").Val() == 1
	})
}

func TestRedisStoreStartsWhileRedisDown(t *testing.T) {
	port := redistest.FreePort(t)
	var h hookCounts
	start := time.Now()
	st, err := openRedisStore(store.RedisOptions{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}, h.hooks())
	if err != nil {
		t.Fatalf("NewRedisStore must not fail when Redis is down: %v", err)
	}
	defer st.Close()
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("start took %v with Redis down", took)
	}
	if st.Healthy() {
		t.Fatal("healthy although Redis is down")
	}
	redistest.StartServer(t, port)
	// no login happens: the decision resync alone must notice the recovery
	poll.True(t, 10*time.Second, "healthy once Redis is up", st.Healthy)
}

func TestRedisStoreCloseStopsGoroutines(t *testing.T) {
	client, prefix := redistest.Client(t)
	st, err := openRedisStore(store.RedisOptions{Addrs: []string{client.Options().Addr}, Prefix: prefix}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	st.Events.Append(detect.NewEvent(detect.FailedLogin, time.Now()))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 2*time.Second, "the store's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "(*RedisDecisions).run") && !strings.Contains(stacks, "(*RedisEvents).run")
	})
	if n := client.XLen(context.Background(), prefix+"events").Val(); n != 1 {
		t.Fatalf("Close did not flush the queued event (stream holds %d)", n)
	}
}

// openRedisStore opens a Redis store as the vigil app does.
func openRedisStore(o store.RedisOptions, h Hooks) (*Store, error) {
	ks, err := o.Open()
	if err != nil {
		return nil, err
	}
	return NewRedisStore(context.Background(), ks, RedisStoreOptions{}, h)
}
