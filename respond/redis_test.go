package respond

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
)

// The helpers below are duplicated in detect/redis_test.go: test files of
// two packages cannot share code without a new package.

// redisForTest returns a client to a Redis for tests and a key prefix of its
// own, and deletes the prefix's keys at the end. It uses VIGIL_REDIS_ADDR
// (default 127.0.0.1:6379), else starts a redis-server from PATH, else skips
// the test (fails it when VIGIL_REQUIRE_REDIS=1).
func redisForTest(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	addr := os.Getenv("VIGIL_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, DialerRetries: 1})
	if pingErr := client.Ping(context.Background()).Err(); pingErr != nil {
		_ = client.Close()
		srv := startRedisServer(tb, 0)
		client = redis.NewClient(&redis.Options{Addr: srv.Addr})
	}
	prefix := "vigiltest:" + randomHex(6) + ":"
	tb.Cleanup(func() {
		deleteKeys(tb, client, prefix)
		_ = client.Close()
	})
	return client, prefix
}

// testRedisServer is a redis-server this test started.
type testRedisServer struct {
	Addr string
	Port int
	cmd  *exec.Cmd
}

// startRedisServer runs redis-server on port (0: a free one) without
// persistence and stops it at the end of the test.
func startRedisServer(tb testing.TB, port int) *testRedisServer {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		skipNoRedis(tb, "no Redis at VIGIL_REDIS_ADDR/127.0.0.1:6379 and no redis-server in PATH")
	}
	if port == 0 {
		port = freePort(tb)
	}
	s := &testRedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port}
	s.cmd = exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", tb.TempDir())
	if err := s.cmd.Start(); err != nil {
		skipNoRedis(tb, "cannot start redis-server: "+err.Error())
	}
	tb.Cleanup(s.Stop)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			return s
		}
		if time.Now().After(deadline) {
			s.Stop()
			skipNoRedis(tb, "redis-server did not answer on "+s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit (idempotent).
func (s *testRedisServer) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

func skipNoRedis(tb testing.TB, why string) {
	tb.Helper()
	msg := "!!! REDIS UNAVAILABLE, REDIS TESTS NOT RUN: " + why + " (set VIGIL_REQUIRE_REDIS=1 to fail instead)"
	if os.Getenv("VIGIL_REQUIRE_REDIS") == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// freePort returns a free port below Linux's ephemeral range: a client
// redialling a dead port inside that range can end up connected to itself
// (TCP simultaneous open) and read its own commands back as replies.
func freePort(tb testing.TB) int {
	tb.Helper()
	for i := 0; i < 100; i++ {
		var b [2]byte
		_, _ = rand.Read(b[:])
		port := 20000 + (int(b[0])<<8|int(b[1]))%12000
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port
		}
	}
	tb.Fatal("no free port found")
	return 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func deleteKeys(tb testing.TB, c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

// eventually polls cond until it holds, failing the test after within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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
	srv := startRedisServer(t, 0)
	var h hookCounts
	ctx := context.Background()
	prefix := "vigiltest:" + randomHex(6) + ":"
	store, err := NewRedisStore(ctx, RedisOptions{Addrs: []string{srv.Addr}, Prefix: prefix}, h.hooks())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	k := detect.KeysFor("alice", "203.0.113.7")
	w := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute, Stuffing: time.Minute}
	for i := 1; i <= 3; i++ {
		c, err := store.Counter.RecordFailure(ctx, k, w, time.Now())
		if err != nil || c.Account != i {
			t.Fatalf("failure %d: %+v, %v", i, c, err)
		}
	}
	if !store.Healthy() {
		t.Fatal("unhealthy with Redis up")
	}

	srv.Stop()
	c, err := store.Counter.RecordFailure(ctx, k, w, time.Now())
	if err != nil || c.Account != 4 {
		// the memory fallback already held the three earlier failures
		t.Fatalf("with Redis down: %+v, %v (want 4 failures, no error)", c, err)
	}
	if store.Healthy() {
		t.Fatal("healthy with Redis down")
	}
	if h.errors("record_failure") == 0 {
		t.Fatal("the store error hook was not called")
	}
	d, fresh, err := store.Decisions.Impose(ctx, Decision{Kind: Lock, Target: "alice", Source: "auto"}, time.Minute, time.Hour, time.Now())
	if err != nil || !fresh || d.Strike != 1 {
		t.Fatalf("impose with Redis down: %+v fresh=%v err=%v", d, fresh, err)
	}
	if _, locked := store.Cache.Locked("alice", time.Now()); !locked {
		t.Fatal("the lock imposed during the outage is not enforced locally")
	}
	if list, err := store.Decisions.List(ctx, time.Now()); err != nil || len(list) != 1 {
		t.Fatalf("list with Redis down: %v, %v", list, err)
	}
	store.Events.Append(detect.NewEvent(detect.AccountLocked, time.Now()))

	srv2 := startRedisServer(t, srv.Port)
	eventually(t, 10*time.Second, "healthy again after an operation", func() bool {
		_, _ = store.Counter.RecordFailure(ctx, k, w, time.Now())
		return store.Healthy()
	})
	check := redis.NewClient(&redis.Options{Addr: srv2.Addr})
	defer check.Close()
	eventually(t, 10*time.Second, "the outage's lock replayed into Redis", func() bool {
		return check.HExists(ctx, prefix+"decisions", DecisionKey(Lock, "alice")).Val()
	})
	eventually(t, 10*time.Second, "the outage's event written", func() bool {
		return check.XLen(ctx, prefix+"events").Val() == 1
	})
}

func TestRedisStoreStartsWhileRedisDown(t *testing.T) {
	port := freePort(t)
	var h hookCounts
	start := time.Now()
	store, err := NewRedisStore(context.Background(), RedisOptions{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}, h.hooks())
	if err != nil {
		t.Fatalf("NewRedisStore must not fail when Redis is down: %v", err)
	}
	defer store.Close()
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("start took %v with Redis down", took)
	}
	if store.Healthy() {
		t.Fatal("healthy although Redis is down")
	}
	startRedisServer(t, port)
	// no login happens: the decision resync alone must notice the recovery
	eventually(t, 10*time.Second, "healthy once Redis is up", store.Healthy)
}

func TestRedisOptions(t *testing.T) {
	bad := []RedisOptions{
		{},
		{URL: "http://example.com"},
		{URL: "redis://localhost:6379", Addrs: []string{"localhost:6379"}},
		{Addrs: []string{"a:1", "b:2"}},
		{Addrs: []string{"a:1"}, Cluster: true, SentinelMaster: "m"},
		{Addrs: []string{"no-port"}},
		{Addrs: []string{"a:1"}, Cluster: true, DB: 2},
		{URL: "redis://localhost:6379", Cluster: true},
		{Addrs: []string{"a:1"}, EventsRetention: -time.Second},
	}
	for _, o := range bad {
		if s, err := NewRedisStore(context.Background(), o, Hooks{}); err == nil {
			s.Close()
			t.Errorf("%+v: no error", o)
		}
	}
	c, err := RedisOptions{URL: "rediss://user:pw@127.0.0.1:6380/3"}.Client()
	if err != nil {
		t.Fatal(err)
	}
	opt := c.(*redis.Client).Options()
	if opt.TLSConfig == nil || opt.TLSConfig.MinVersion != tls.VersionTLS12 || opt.DB != 3 ||
		opt.ReadTimeout != 500*time.Millisecond || opt.DialTimeout != 2*time.Second {
		t.Errorf("rediss URL options: %+v", opt)
	}
	c.Close()
	c, _ = RedisOptions{Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, Cluster: true, TLS: true}.Client()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Errorf("cluster options gave %T", c)
	}
	c.Close()
	c, _ = RedisOptions{Addrs: []string{"127.0.0.1:26379"}, SentinelMaster: "mymaster"}.Client()
	if _, ok := c.(*redis.Client); !ok {
		t.Errorf("sentinel options gave %T", c)
	}
	c.Close()
}

func TestRedisStoreCloseStopsGoroutines(t *testing.T) {
	client, prefix := redisForTest(t)
	store, err := NewRedisStore(context.Background(), RedisOptions{Addrs: []string{client.Options().Addr}, Prefix: prefix}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	store.Events.Append(detect.NewEvent(detect.FailedLogin, time.Now()))
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "the store's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "(*RedisDecisions).run") && !strings.Contains(stacks, "(*RedisEvents).run")
	})
	if n := client.XLen(context.Background(), prefix+"events").Val(); n != 1 {
		t.Fatalf("Close did not flush the queued event (stream holds %d)", n)
	}
}
