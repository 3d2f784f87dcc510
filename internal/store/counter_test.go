package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"

	"github.com/vigilsec/vigil/internal/redistest"
)

// counterStep is one operation of a scripted sequence, at a synthetic time.
type counterStep struct {
	at    time.Duration
	op    string // "fail", "success", "forget"
	user  string
	ip    string
	kind  detect.CounterKind
	windw detect.LoginWindows
}

func TestRedisCounterParity(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("perKeyScripts=%v", cluster), func(t *testing.T) {
			client, prefix := redistest.Client(t)
			rc := NewRedisCounter(NewKeyspace(client, prefix))
			rc.ks.Cluster = cluster // exercise the Redis Cluster path on one server
			mc := NewMemoryCounter(nil)
			ctx := context.Background()
			base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			w := detect.LoginWindows{Account: 10 * time.Second, IP: 20 * time.Second, Pair: 20 * time.Second, Stuffing: 15 * time.Second}
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
				{at: 13 * time.Second, op: "forget", ip: ip1, kind: detect.IPAccountsCount},
				{at: 14 * time.Second, op: "fail", user: "carol", ip: ip1, windw: w},
				{at: 15 * time.Second, op: "forget", user: "alice", kind: detect.AccountCounter},
				{at: 16 * time.Second, op: "fail", user: "alice", ip: ip1, windw: noStuff},
				{at: 17 * time.Second, op: "forget", ip: ip1, kind: detect.IPCounter},
				{at: 18 * time.Second, op: "forget", user: "alice", ip: ip1, kind: detect.PairCounter},
				{at: 40 * time.Second, op: "fail", user: "bob", ip: ip1, windw: w},
			}
			for i, s := range steps {
				k := detect.KeysFor(s.user, s.ip)
				now := base.Add(s.at)
				switch s.op {
				case "fail":
					got, err := failure(rc, ctx, k, s.windw, now)
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					want, _ := failure(mc, ctx, k, s.windw, now)
					if got != want {
						t.Fatalf("step %d (%s from %s at %v): redis %+v, memory %+v", i, s.user, s.ip, s.at, got, want)
					}
				case "success":
					// a success is reserved like any attempt, then settled
					ra, got, _ := rc.Reserve(ctx, k, w, now)
					ma, want, _ := mc.Reserve(ctx, k, w, now)
					if got != want {
						t.Fatalf("step %d (success reserved): redis %+v, memory %+v", i, got, want)
					}
					mustNil(t, rc.RecordSuccess(ctx, ra))
					mustNil(t, mc.RecordSuccess(ctx, ma))
				case "forget":
					key := k.Account
					switch s.kind {
					case detect.IPCounter, detect.IPAccountsCount:
						key = k.IP
					case detect.PairCounter:
						key = k.Pair
					}
					mustNil(t, rc.Forget(ctx, s.kind, key))
					mustNil(t, mc.Forget(ctx, s.kind, key))
				}
			}
			// keys are hashes, never the raw input, and all expire
			for _, key := range redistest.Keys(t, client, prefix) {
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
	client, prefix := redistest.Client(t)
	rc := NewRedisCounter(NewKeyspace(client, prefix))
	mc := NewMemoryCounter(nil)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w := detect.LoginWindows{Account: time.Hour, IP: time.Hour, Pair: time.Hour, Stuffing: time.Hour}
	var got, want detect.LoginCounts
	for i := 0; i < detect.MaxWindowEntries+25; i++ {
		// one IP, a new account each time: every counter of the IP grows
		k := detect.KeysFor(fmt.Sprintf("user%d", i%(detect.MaxWindowEntries+10)), "192.0.2.1")
		now := base.Add(time.Duration(i) * time.Millisecond)
		var err error
		if got, err = failure(rc, ctx, k, w, now); err != nil {
			t.Fatal(err)
		}
		want, _ = failure(mc, ctx, k, w, now)
		if got != want {
			t.Fatalf("attempt %d: redis %+v, memory %+v", i, got, want)
		}
	}
	if got.IP != detect.MaxWindowEntries || got.AccountsFromIP != detect.MaxWindowEntries {
		t.Fatalf("counts did not saturate at %d: %+v", detect.MaxWindowEntries, got)
	}
	ipKey := prefix + "c:ip:" + detect.KeysFor("x", "192.0.2.1").IP
	if n := client.ZCard(ctx, ipKey).Val(); n != detect.MaxWindowEntries {
		t.Fatalf("sorted set holds %d entries, want %d", n, detect.MaxWindowEntries)
	}
}

func TestRedisCounterRefusesRawKeys(t *testing.T) {
	client, prefix := redistest.Client(t)
	rc := NewRedisCounter(NewKeyspace(client, prefix))
	err := rc.Forget(context.Background(), detect.AccountCounter, "alice")
	if !errors.Is(err, errNotHashID) {
		t.Fatalf("Forget with a raw key: %v, want errNotHashID", err)
	}
	if keys := redistest.Keys(t, client, prefix); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
}

// failingCounter is a primary whose errors a test switches on and off.
type failingCounter struct{ err error }

func (f *failingCounter) Reserve(_ context.Context, k detect.LoginKeys, _ detect.LoginWindows, _ time.Time) (detect.Attempt, detect.LoginCounts, error) {
	return detect.Attempt{Keys: k, Member: "m"}, detect.LoginCounts{Account: 99}, f.err
}
func (f *failingCounter) Release(context.Context, detect.Attempt) error { return f.err }
func (f *failingCounter) Hold(context.Context, detect.CounterKind, string, time.Time) error {
	return f.err
}
func (f *failingCounter) RecordSuccess(context.Context, detect.Attempt) error      { return f.err }
func (f *failingCounter) Forget(context.Context, detect.CounterKind, string) error { return f.err }

func TestFallbackCounter(t *testing.T) {
	primary := &failingCounter{}
	var ops []string
	fc := NewFallbackCounter(primary, NewMemoryCounter(nil), func(op string) { ops = append(ops, op) })
	ctx := context.Background()
	k := detect.KeysFor("alice", "203.0.113.7")
	w := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute}
	now := time.Now()
	if c, _ := failure(fc, ctx, k, w, now); c.Account != 99 || !fc.Healthy() {
		t.Fatalf("healthy primary: %+v healthy=%v", c, fc.Healthy())
	}
	primary.err = errors.New("connection refused")
	c, err := failure(fc, ctx, k, w, now.Add(time.Second))
	if err != nil || c.Account != 2 {
		// the memory counter shadowed the first failure, so it counts 2
		t.Fatalf("fallback: %+v, %v", c, err)
	}
	if fc.Healthy() || len(ops) != 1 || ops[0] != "reserve" {
		t.Fatalf("healthy=%v ops=%v", fc.Healthy(), ops)
	}
	// down: one login operation per probeEvery tries the primary, the
	// others answer from memory at once; a manual unlock (Forget) always
	// tries, or the shared counts would keep the failures it cleared
	fc.probeAt.Store(0) // the probe interval has passed
	mustNil(t, fc.RecordSuccess(ctx, detect.Attempt{Keys: k}))
	mustNil(t, fc.RecordSuccess(ctx, detect.Attempt{Keys: k}))
	mustNil(t, fc.Forget(ctx, detect.IPCounter, k.IP))
	if len(ops) != 3 || ops[1] != "record_success" || ops[2] != "forget" {
		t.Fatalf("ops = %v, want [reserve record_success forget]: one probe, then the unlock", ops)
	}
	primary.err = nil
	mustNil(t, fc.Forget(ctx, detect.IPCounter, k.IP))
	if !fc.Healthy() {
		t.Fatal("not healthy after a success")
	}
	primary.err = context.Canceled
	_, _ = failure(fc, ctx, k, w, now)
	if !fc.Healthy() || len(ops) != 3 {
		t.Fatal("a cancelled request must not mark the store unhealthy")
	}
}

// countingCounter counts the calls that reach a failing primary.
type countingCounter struct {
	failingCounter
	calls int
}

func (c *countingCounter) Reserve(ctx context.Context, k detect.LoginKeys, w detect.LoginWindows, now time.Time) (detect.Attempt, detect.LoginCounts, error) {
	c.calls++
	return c.failingCounter.Reserve(ctx, k, w, now)
}

// TestFallbackCounterProbesWhileDown: while the primary is down, a burst of
// logins costs one try of the primary (one client timeout with a frozen
// Redis), not one per login, and every login is still counted locally;
// once the probe interval has passed the next login tries again, and a
// success makes the counter healthy.
func TestFallbackCounterProbesWhileDown(t *testing.T) {
	primary := &countingCounter{failingCounter: failingCounter{err: errors.New("i/o timeout")}}
	fc := NewFallbackCounter(primary, NewMemoryCounter(nil), nil)
	ctx := context.Background()
	k := detect.KeysFor("alice", "203.0.113.7")
	w := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute}
	now := time.Now()
	var c detect.LoginCounts
	for i := 0; i < 100; i++ {
		a, counts, err := fc.Reserve(ctx, k, w, now)
		if err != nil || a.Member != "" {
			t.Fatalf("reserve %d while down: member %q, error %v (want a local answer)", i, a.Member, err)
		}
		c = counts
	}
	if primary.calls != 1 || fc.Healthy() || c.Account != 100 {
		t.Fatalf("100 logins while down: %d tries of the primary (want 1), healthy %v, local account count %d (want 100)", primary.calls, fc.Healthy(), c.Account)
	}
	fc.probeAt.Store(0) // the probe interval has passed
	primary.err = nil
	if _, counts, _ := fc.Reserve(ctx, k, w, now); counts.Account != 99 || !fc.Healthy() || primary.calls != 2 {
		t.Fatalf("after the interval: tries %d, healthy %v, count %d (want the primary's 99)", primary.calls, fc.Healthy(), counts.Account)
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
func benchmarkRecordFailure(b *testing.B, c detect.LoginCounter) {
	keys := make([]detect.LoginKeys, 1000)
	for i := range keys {
		keys[i] = detect.KeysFor(fmt.Sprintf("user%d", i), fmt.Sprintf("10.0.%d.%d", i%50/256, i%50))
	}
	// lockout within 15m, block_ip within 10m, stuffing within 10m
	w := detect.LoginWindows{Account: 15 * time.Minute, IP: 10 * time.Minute, Pair: 15 * time.Minute, Stuffing: 10 * time.Minute}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := failure(c, ctx, keys[i%len(keys)], w, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisCounterRecordFailure(b *testing.B) {
	client, prefix := redistest.Client(b)
	benchmarkRecordFailure(b, NewRedisCounter(NewKeyspace(client, prefix)))
}

func BenchmarkMemoryCounterRecordFailure(b *testing.B) {
	benchmarkRecordFailure(b, NewMemoryCounter(nil))
}

// failure reserves an attempt that then stays a failure.
func failure(c detect.LoginCounter, ctx context.Context, k detect.LoginKeys, w detect.LoginWindows, now time.Time) (detect.LoginCounts, error) {
	_, counts, err := c.Reserve(ctx, k, w, now)
	return counts, err
}
