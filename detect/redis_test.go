package detect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The helpers below are duplicated in respond/redis_test.go: test files of
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

func scanKeys(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	tb.Helper()
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		tb.Fatalf("listing keys: %v", err)
	}
	return keys
}

func deleteKeys(tb testing.TB, c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

// counterStep is one operation of a scripted sequence, at a synthetic time.
type counterStep struct {
	at    time.Duration
	op    string // "fail", "success", "forget"
	user  string
	ip    string
	kind  CounterKind
	windw LoginWindows
}

func TestRedisCounterParity(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("perKeyScripts=%v", cluster), func(t *testing.T) {
			client, prefix := redisForTest(t)
			rc := NewRedisCounter(client, prefix)
			rc.cluster = cluster // exercise the Redis Cluster path on one server
			mc := NewMemoryCounter()
			ctx := context.Background()
			base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			w := LoginWindows{Account: 10 * time.Second, IP: 20 * time.Second, Pair: 20 * time.Second, Stuffing: 15 * time.Second}
			noStuff := w
			noStuff.Stuffing = 0
			const ip1, ip2 = "203.0.113.7", "198.51.100.9"
			steps := []counterStep{
				{at: 0, op: "fail", user: "alice", ip: ip1, windw: w},
				{at: time.Second, op: "fail", user: "alice", ip: ip1, windw: w},
				{at: 2 * time.Second, op: "fail", user: "bob", ip: ip1, windw: w},
				{at: 3 * time.Second, op: "fail", user: "' OR 1=1", ip: ip1, windw: w},
				{at: 4 * time.Second, op: "fail", user: "alice", ip: ip2, windw: w},
				// the first failure is exactly one window old: out (t <= now-window)
				{at: 10 * time.Second, op: "fail", user: "alice", ip: ip1, windw: w},
				// one millisecond inside the window: still in
				{at: 10*time.Second + 999*time.Millisecond, op: "fail", user: "alice", ip: ip2, windw: w},
				{at: 11 * time.Second, op: "success", user: "alice", ip: ip1},
				{at: 12 * time.Second, op: "fail", user: "alice", ip: ip1, windw: w},
				{at: 13 * time.Second, op: "forget", ip: ip1, kind: IPAccountsCount},
				{at: 14 * time.Second, op: "fail", user: "carol", ip: ip1, windw: w},
				{at: 15 * time.Second, op: "forget", user: "alice", kind: AccountCounter},
				{at: 16 * time.Second, op: "fail", user: "alice", ip: ip1, windw: noStuff},
				{at: 17 * time.Second, op: "forget", ip: ip1, kind: IPCounter},
				{at: 18 * time.Second, op: "forget", user: "alice", ip: ip1, kind: PairCounter},
				{at: 40 * time.Second, op: "fail", user: "bob", ip: ip1, windw: w},
			}
			for i, s := range steps {
				k := KeysFor(s.user, s.ip)
				now := base.Add(s.at)
				switch s.op {
				case "fail":
					got, err := rc.RecordFailure(ctx, k, s.windw, now)
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					want, _ := mc.RecordFailure(ctx, k, s.windw, now)
					if got != want {
						t.Fatalf("step %d (%s from %s at %v): redis %+v, memory %+v", i, s.user, s.ip, s.at, got, want)
					}
				case "success":
					mustNil(t, rc.RecordSuccess(ctx, k))
					mustNil(t, mc.RecordSuccess(ctx, k))
				case "forget":
					key := k.Account
					switch s.kind {
					case IPCounter, IPAccountsCount:
						key = k.IP
					case PairCounter:
						key = k.Pair
					}
					mustNil(t, rc.Forget(ctx, s.kind, key))
					mustNil(t, mc.Forget(ctx, s.kind, key))
				}
			}
			// keys are hashes, never the raw input, and all expire
			for _, key := range scanKeys(t, client, prefix) {
				for _, raw := range []string{"alice", "bob", "carol", "' OR 1=1", "OR 1=1", ip1, ip2} {
					if strings.Contains(key, raw) {
						t.Errorf("key %q contains raw input %q", key, raw)
					}
				}
				if ttl := client.PTTL(ctx, key).Val(); ttl <= 0 {
					t.Errorf("key %q has no TTL (%v)", key, ttl)
				}
			}
		})
	}
}

func TestRedisCounterSaturates(t *testing.T) {
	client, prefix := redisForTest(t)
	rc := NewRedisCounter(client, prefix)
	mc := NewMemoryCounter()
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w := LoginWindows{Account: time.Hour, IP: time.Hour, Pair: time.Hour, Stuffing: time.Hour}
	var got, want LoginCounts
	for i := 0; i < MaxWindowEntries+25; i++ {
		// one IP, a new account each time: every counter of the IP grows
		k := KeysFor(fmt.Sprintf("user%d", i%(MaxWindowEntries+10)), "192.0.2.1")
		now := base.Add(time.Duration(i) * time.Millisecond)
		var err error
		if got, err = rc.RecordFailure(ctx, k, w, now); err != nil {
			t.Fatal(err)
		}
		want, _ = mc.RecordFailure(ctx, k, w, now)
		if got != want {
			t.Fatalf("attempt %d: redis %+v, memory %+v", i, got, want)
		}
	}
	if got.IP != MaxWindowEntries || got.AccountsFromIP != MaxWindowEntries {
		t.Fatalf("counts did not saturate at %d: %+v", MaxWindowEntries, got)
	}
	ipKey := prefix + "c:ip:" + KeysFor("x", "192.0.2.1").IP
	if n := client.ZCard(ctx, ipKey).Val(); n != MaxWindowEntries {
		t.Fatalf("sorted set holds %d entries, want %d", n, MaxWindowEntries)
	}
}

func TestRedisCounterRefusesRawKeys(t *testing.T) {
	client, prefix := redisForTest(t)
	rc := NewRedisCounter(client, prefix)
	err := rc.Forget(context.Background(), AccountCounter, "alice")
	if !errors.Is(err, errNotHashID) {
		t.Fatalf("Forget with a raw key: %v, want errNotHashID", err)
	}
	if keys := scanKeys(t, client, prefix); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
}

// failingCounter is a primary whose errors a test switches on and off.
type failingCounter struct{ err error }

func (f *failingCounter) RecordFailure(context.Context, LoginKeys, LoginWindows, time.Time) (LoginCounts, error) {
	return LoginCounts{Account: 99}, f.err
}
func (f *failingCounter) RecordSuccess(context.Context, LoginKeys) error    { return f.err }
func (f *failingCounter) Forget(context.Context, CounterKind, string) error { return f.err }

func TestFallbackCounter(t *testing.T) {
	primary := &failingCounter{}
	var ops []string
	fc := NewFallbackCounter(primary, NewMemoryCounter(), func(op string) { ops = append(ops, op) })
	ctx := context.Background()
	k := KeysFor("alice", "203.0.113.7")
	w := LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute}
	now := time.Now()
	if c, _ := fc.RecordFailure(ctx, k, w, now); c.Account != 99 || !fc.Healthy() {
		t.Fatalf("healthy primary: %+v healthy=%v", c, fc.Healthy())
	}
	primary.err = errors.New("connection refused")
	c, err := fc.RecordFailure(ctx, k, w, now.Add(time.Second))
	if err != nil || c.Account != 2 {
		// the memory counter shadowed the first failure, so it counts 2
		t.Fatalf("fallback: %+v, %v", c, err)
	}
	if fc.Healthy() || len(ops) != 1 || ops[0] != "record_failure" {
		t.Fatalf("healthy=%v ops=%v", fc.Healthy(), ops)
	}
	mustNil(t, fc.RecordSuccess(ctx, k))
	mustNil(t, fc.Forget(ctx, IPCounter, k.IP))
	if len(ops) != 3 {
		t.Fatalf("ops = %v", ops)
	}
	primary.err = nil
	mustNil(t, fc.Forget(ctx, IPCounter, k.IP))
	if !fc.Healthy() {
		t.Fatal("not healthy after a success")
	}
	primary.err = context.Canceled
	_, _ = fc.RecordFailure(ctx, k, w, now)
	if !fc.Healthy() || len(ops) != 3 {
		t.Fatal("a cancelled request must not mark the store unhealthy")
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// benchmarkRecordFailure spreads attempts over 1000 accounts and 50 IPs, as
// a stuffing run would, with the windows of a typical policy.
func benchmarkRecordFailure(b *testing.B, c LoginCounter) {
	keys := make([]LoginKeys, 1000)
	for i := range keys {
		keys[i] = KeysFor(fmt.Sprintf("user%d", i), fmt.Sprintf("10.0.%d.%d", i%50/256, i%50))
	}
	w := LoginPolicy{
		Lockout:          Ban{Failures: 5, Within: 15 * time.Minute, Base: time.Minute},
		BlockIP:          Ban{Failures: 50, Within: 10 * time.Minute, Base: time.Minute},
		StuffingAccounts: 20, StuffingWithin: 10 * time.Minute,
	}.Windows()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := c.RecordFailure(ctx, keys[i%len(keys)], w, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisCounterRecordFailure(b *testing.B) {
	client, prefix := redisForTest(b)
	benchmarkRecordFailure(b, NewRedisCounter(client, prefix))
}

func BenchmarkMemoryCounterRecordFailure(b *testing.B) {
	benchmarkRecordFailure(b, NewMemoryCounter())
}
