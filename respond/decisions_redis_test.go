package respond

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

func newTestDecisions(t testing.TB, client redis.UniversalClient, prefix string, h Hooks) (*RedisDecisions, *DecisionCache) {
	t.Helper()
	cache := NewDecisionCache(nil)
	rd, err := NewRedisDecisions(context.Background(), store.NewKeyspace(client, prefix), cache, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Close() })
	return rd, cache
}

func TestRedisDecisionsEscalation(t *testing.T) {
	client, prefix := redistest.Client(t)
	rd, cache := newTestDecisions(t, client, prefix, Hooks{})
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lock := Decision{Kind: Lock, Target: "Alice", Reason: "brute force <script>", Source: "auto"}
	steps := []struct {
		at     time.Duration
		fresh  bool
		strike int
		length time.Duration
	}{
		{0, true, 1, time.Second},
		{500 * time.Millisecond, false, 1, time.Second}, // still active: no new strike
		{2 * time.Second, true, 2, 2 * time.Second},
		{5 * time.Second, true, 3, 4 * time.Second},
		{10 * time.Second, true, 4, 4 * time.Second}, // capped at max
		{11 * time.Second, false, 4, 4 * time.Second},
		{15 * time.Second, true, 5, 4 * time.Second},
	}
	for i, s := range steps {
		d, fresh, err := rd.Impose(ctx, lock, time.Second, 4*time.Second, base.Add(s.at))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		created := d.Until.Add(-s.length)
		if fresh != s.fresh || d.Strike != s.strike || d.Until.Sub(d.Created) != s.length {
			t.Fatalf("step %d: fresh=%v strike=%d length=%v, want %v %d %v (created %v)",
				i, fresh, d.Strike, d.Until.Sub(d.Created), s.fresh, s.strike, s.length, created)
		}
		// stored and answered under the account's canonical name
		if d.Reason != lock.Reason || d.Target != "alice" || d.Source != "auto" {
			t.Fatalf("step %d: fields lost: %+v", i, d)
		}
		if _, ok := cache.Get(Lock, "alice", base.Add(s.at)); !ok {
			t.Fatalf("step %d: the local cache does not hold the lock", i)
		}
	}
	strikeKey := prefix + "strike:" + lock.Key() + ":{" + prefix + "decisions}"
	if ttl := client.PTTL(ctx, strikeKey).Val(); ttl <= 23*time.Hour {
		t.Fatalf("strike TTL %v, want StrikeMemory (24h)", ttl)
	}
	var stored Decision
	if err := json.Unmarshal([]byte(client.HGet(ctx, prefix+"decisions", lock.Key()).Val()), &stored); err != nil || stored.Strike != 5 {
		t.Fatalf("stored decision %+v, %v", stored, err)
	}

	was, err := rd.Lift(ctx, Lock, "alice", base.Add(16*time.Second))
	if err != nil || !was {
		t.Fatalf("lift: %v %v", was, err)
	}
	if client.Exists(ctx, strikeKey).Val() != 0 {
		t.Fatal("lift kept the strikes")
	}
	d, fresh, _ := rd.Impose(ctx, lock, time.Second, 4*time.Second, base.Add(17*time.Second))
	if !fresh || d.Strike != 1 || d.Until.Sub(d.Created) != time.Second {
		t.Fatalf("after lift: %+v fresh=%v, want a first strike of 1s", d, fresh)
	}
	if was, _ := rd.Lift(ctx, Lock, "alice", base.Add(time.Hour)); was {
		t.Fatal("lift of an expired lock reported it active")
	}
}

func TestRedisDecisionsPropagate(t *testing.T) {
	clientA, prefix := redistest.Client(t)
	clientB := redis.NewClient(&redis.Options{Addr: clientA.Options().Addr})
	defer clientB.Close()
	a, _ := newTestDecisions(t, clientA, prefix, Hooks{})
	_, cacheB := newTestDecisions(t, clientB, prefix, Hooks{})
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.9")

	start := time.Now()
	if _, _, err := a.Impose(ctx, Decision{Kind: Block, Target: ip.String(), Source: "auto"}, time.Minute, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 2*time.Second, "the block on the other instance", func() bool {
		_, ok := cacheB.Blocked(ip, time.Now())
		return ok
	})
	t.Logf("block propagated in %v", time.Since(start))

	if _, err := a.Lift(ctx, Block, ip.String(), time.Now()); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 2*time.Second, "the unblock on the other instance", func() bool {
		_, ok := cacheB.Blocked(ip, time.Now())
		return !ok
	})

	now := time.Now()
	mustPut(t, a, Decision{Kind: Block, Target: "10.0.0.0/8", Source: "admin", Created: now, Until: now.Add(time.Hour)})
	mustPut(t, a, Decision{Kind: Lock, Target: "bob", Source: "admin", Created: now, Until: now.Add(time.Hour)})
	poll.True(t, 2*time.Second, "the CIDR block and the lock on the other instance", func() bool {
		_, blocked := cacheB.Blocked(netip.MustParseAddr("10.1.2.3"), time.Now())
		_, locked := cacheB.Locked("BOB", time.Now())
		return blocked && locked
	})

	// an instance that starts later loads everything before it returns
	_, cacheC := newTestDecisions(t, clientB, prefix, Hooks{})
	if _, locked := cacheC.Locked("bob", time.Now()); !locked {
		t.Fatal("a new instance did not load the existing lock")
	}
	list, err := a.List(ctx, time.Now())
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
}

func mustPut(t *testing.T, rd *RedisDecisions, d Decision) {
	t.Helper()
	if err := rd.Put(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

func TestRedisDecisionsResyncSweepsExpired(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	now := time.Now()
	expired := Decision{Kind: Block, Target: "192.0.2.1", Source: "auto", Created: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}
	active := Decision{Kind: Block, Target: "192.0.2.2", Source: "auto", Created: now, Until: now.Add(time.Hour)}
	for _, d := range []Decision{expired, active} {
		v, _ := json.Marshal(storedDecision{Decision: d, UntilUS: d.Until.UnixMicro()})
		client.HSet(ctx, prefix+"decisions", d.Key(), v)
	}
	client.HSet(ctx, prefix+"decisions", "block:garbage", "{not json")

	_, cache := newTestDecisions(t, client, prefix, Hooks{})
	if got := client.HKeys(ctx, prefix+"decisions").Val(); len(got) != 1 || got[0] != active.Key() {
		t.Fatalf("fields after the first resync: %v", got)
	}
	if list := cache.List(time.Now()); len(list) != 1 || list[0].Target != active.Target {
		t.Fatalf("cache after the first resync: %+v", list)
	}
}

func TestRedisDecisionsFailOpenReplays(t *testing.T) {
	srv, client := redistest.Private(t)
	var h hookCounts
	prefix := "vigiltest:" + redistest.RandomHex(6) + ":"
	rd, cache := newTestDecisions(t, client, prefix, h.hooks())
	ctx := context.Background()
	now := time.Now()
	mustPut(t, rd, Decision{Kind: Lock, Target: "carol", Source: "admin", Created: now, Until: now.Add(time.Hour)})

	srv.Stop()
	ip := "198.51.100.4"
	d, fresh, err := rd.Impose(ctx, Decision{Kind: Block, Target: ip, Source: "auto"}, time.Minute, time.Hour, time.Now())
	if err != nil || !fresh || d.Until.Sub(d.Created) != time.Minute {
		t.Fatalf("impose while down: %+v %v %v", d, fresh, err)
	}
	if _, _, err := rd.Impose(ctx, Decision{Kind: Block, Target: ip}, time.Minute, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if was, err := rd.Lift(ctx, Lock, "carol", time.Now()); err != nil || !was {
		t.Fatalf("lift while down: %v %v", was, err)
	}
	if h.errors("impose") != 2 || h.errors("lift") != 1 {
		t.Fatalf("store errors: %v", h.errs)
	}
	if _, ok := cache.Blocked(netip.MustParseAddr(ip), time.Now()); !ok {
		t.Fatal("the block made while Redis is down is not enforced")
	}

	redistest.StartServer(t, srv.Port) // an empty server: the outage's writes must be replayed
	poll.True(t, 10*time.Second, "the outage's block replayed into Redis", func() bool {
		return client.HExists(ctx, prefix+"decisions", DecisionKey(Block, ip)).Val()
	})
	if _, ok := cache.Blocked(netip.MustParseAddr(ip), time.Now()); !ok {
		t.Fatal("the resync after the outage dropped the block")
	}
	if _, locked := cache.Locked("carol", time.Now()); locked {
		t.Fatal("the lift made during the outage was undone")
	}
}
