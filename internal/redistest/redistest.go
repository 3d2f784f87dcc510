// Package redistest gives tests a real Redis: the shared one at
// VIGIL_REDIS_ADDR (default 127.0.0.1:6379), or a redis-server of their own.
// Each test works under its own key prefix and its keys are deleted at the
// end. Without any Redis the test is skipped loudly, or fails when
// VIGIL_REQUIRE_REDIS=1 (as in CI).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Addr is the shared Redis the tests use unless they start their own.
func Addr() string {
	if a := os.Getenv("VIGIL_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Client returns a client to a Redis and a fresh key prefix
// ("vigiltest:<random>:"); the prefix's keys are deleted at the end.
func Client(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	client := redis.NewClient(&redis.Options{Addr: Addr(), DialTimeout: time.Second, DialerRetries: 1})
	if client.Ping(context.Background()).Err() != nil {
		_ = client.Close()
		srv := StartServer(tb, 0)
		client = redis.NewClient(&redis.Options{Addr: srv.Addr})
	}
	prefix := "vigiltest:" + RandomHex(6) + ":"
	tb.Cleanup(func() {
		DeleteKeys(client, prefix)
		_ = client.Close()
	})
	return client, prefix
}

// Server is a redis-server started by a test.
type Server struct {
	Addr string
	Port int
	cmd  *exec.Cmd
}

// StartServer runs redis-server on port (0: a free one) without persistence
// and stops it at the end of the test.
func StartServer(tb testing.TB, port int) *Server {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "no Redis at "+Addr()+" and no redis-server in PATH")
	}
	if port == 0 {
		port = FreePort(tb)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port}
	s.cmd = exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", tb.TempDir())
	if err := s.cmd.Start(); err != nil {
		Unavailable(tb, "cannot start redis-server: "+err.Error())
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
			Unavailable(tb, "redis-server did not answer on "+s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit (idempotent).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Unavailable skips the test loudly, or fails it under VIGIL_REQUIRE_REDIS=1.
func Unavailable(tb testing.TB, why string) {
	tb.Helper()
	msg := "!!! REDIS UNAVAILABLE, REDIS TESTS NOT RUN: " + why + " (set VIGIL_REQUIRE_REDIS=1 to fail instead)"
	if os.Getenv("VIGIL_REQUIRE_REDIS") == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// FreePort returns a free port below Linux's ephemeral range: a client
// redialling a dead port inside that range can end up connected to itself
// (TCP simultaneous open) and read its own commands back as replies.
func FreePort(tb testing.TB) int {
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

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Keys lists the keys under prefix.
func Keys(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	tb.Helper()
	var keys []string
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("listing keys: %v", err)
	}
	return keys
}

// DeleteKeys removes every key under prefix.
func DeleteKeys(c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

// Private starts a redis-server of the test's own, which the test may kill
// and restart, and a client that gives up quickly while it is down.
func Private(tb testing.TB) (*Server, *redis.Client) {
	tb.Helper()
	srv := StartServer(tb, 0)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 1, DialerRetries: 1, ReadTimeout: 500 * time.Millisecond})
	tb.Cleanup(func() { _ = client.Close() })
	return srv, client
}
