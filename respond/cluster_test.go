package respond

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// TestRedisStoreOnCluster runs two instances' stores on a real Redis
// Cluster: decisions and revocations made on one reach the other's cache,
// events appended on one are queried and tailed on the other, and a master
// killed under load loses no replicated decision.
func TestRedisStoreOnCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	var ha, hb hookCounts
	a, b := clusterStore(t, c.Addrs(), ha.hooks()), clusterStore(t, c.Addrs(), hb.hooks())
	t.Run("decisions propagate", func(t *testing.T) { clusterDecisions(t, a, b) })
	t.Run("events", func(t *testing.T) { clusterEvents(t, a, b) })
	t.Run("master killed under load", func(t *testing.T) {
		ctx := context.Background()
		now := time.Now()
		var kept []netip.Addr
		for i := range 20 {
			ip := netip.AddrFrom4([4]byte{10, 7, 0, byte(i)})
			kept = append(kept, ip)
			if _, _, err := a.Decisions.Impose(ctx, Decision{Kind: Block, Target: ip.String(), Source: "admin"}, time.Hour, time.Hour, now); err != nil {
				t.Fatal(err)
			}
		}
		c.Sync() // what WAIT 1 gives: the decisions are on the replicas
		var ops atomic.Int64
		stop, done := make(chan struct{}), make(chan struct{})
		go func() { // the load: logins counted, addresses blocked
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := detect.KeysFor(fmt.Sprintf("load%d", i%500), fmt.Sprintf("192.0.2.%d", i%250))
				if at, _, err := a.Counter.Reserve(ctx, k, detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute}, time.Now()); err == nil {
					_ = a.Counter.Release(ctx, at)
				}
				if i%10 == 0 {
					ip := netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)})
					_, _, _ = a.Decisions.Impose(ctx, Decision{Kind: Block, Target: ip.String(), Source: "auto"}, time.Minute, time.Minute, time.Now())
				}
				ops.Add(1)
				time.Sleep(200 * time.Microsecond)
			}
		}()
		t.Cleanup(func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			<-done
		})
		time.Sleep(300 * time.Millisecond)
		old, promoted := c.KillMaster(a.Keyspace.Key("decisions"))
		killed := time.Now().Add(-promoted)
		// the other instance enforces from its cache all along
		for _, ip := range kept {
			if _, ok := b.Cache.Blocked(ip, time.Now()); !ok {
				t.Errorf("%v no longer blocked on the other instance during the failover", ip)
			}
		}
		// Vigil's client follows the promoted replica: the decisions' slot answers
		recovered, ok := answering(func() error { return a.Keyspace.Client.HLen(ctx, a.Keyspace.Key("decisions")).Err() }, promoted+5*time.Second)
		close(stop)
		<-done
		t.Logf("killed %s (decisions' slot): promoted after %v; the client reaches the slot again %v after the kill; %d load rounds; store errors %v",
			old, promoted, promoted+recovered, ops.Load(), ha.snapshot())
		if !ok {
			t.Fatalf("the decisions' slot still fails %v after the kill (promotion %v): go-redis re-reads the slot map only "+
				"on MOVED or every ClusterStateReloadInterval (60 s by default); store.RedisOptions.Client should set ~1 s",
				time.Since(killed), promoted)
		}
		// a fresh instance loads the decisions from Redis: they survived
		fresh := clusterStore(t, c.Addrs(), Hooks{})
		for _, ip := range kept {
			if _, ok := fresh.Cache.Blocked(ip, time.Now()); !ok {
				t.Errorf("decision on %v lost in the failover", ip)
			}
		}
		// and propagation works again (pub/sub, or the 5 s resync)
		ip := netip.MustParseAddr("10.9.9.9")
		start := time.Now()
		_, _, _ = a.Decisions.Impose(ctx, Decision{Kind: Block, Target: ip.String(), Source: "admin"}, time.Hour, time.Hour, time.Now())
		if !eventually(7*time.Second, func() bool { _, ok := b.Cache.Blocked(ip, time.Now()); return ok }) {
			t.Fatal("a block made after the failover never reached the other instance")
		}
		t.Logf("a block made after the failover reached the other instance in %v", time.Since(start))
	})
}

func clusterStore(t *testing.T, addrs []string, h Hooks) *Store {
	t.Helper()
	ks, err := store.RedisOptions{Addrs: addrs, Cluster: true, Prefix: "vigil:"}.Open()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewRedisStore(context.Background(), ks, RedisStoreOptions{Retention: time.Hour}, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// clusterDecisions imposes blocks on a and measures when b's cache holds
// them; then lifts and revocations.
func clusterDecisions(t *testing.T, a, b *Store) {
	ctx := context.Background()
	var delays []time.Duration
	for i := range 200 {
		ip := netip.AddrFrom4([4]byte{10, 6, byte(i >> 8), byte(i)})
		start := time.Now()
		if _, _, err := a.Decisions.Impose(ctx, Decision{Kind: Block, Target: ip.String(), Source: "admin"}, time.Hour, time.Hour, start); err != nil {
			t.Fatal(err)
		}
		if !eventually(6*time.Second, func() bool { _, ok := b.Cache.Blocked(ip, time.Now()); return ok }) {
			t.Fatalf("block %d never reached the other instance", i)
		}
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	p50, p99 := delays[len(delays)/2], delays[len(delays)*99/100]
	t.Logf("block on one instance enforced on the other (impose included): p50 %v, p99 %v, max %v", p50, p99, delays[len(delays)-1])
	// the 10 ms p99 budget is measured (logged above, docs/scaling.md),
	// not asserted: a busy or race-built host says nothing about it; every
	// block arriving through pub/sub, not the 5 s resync, is what is held
	if worst := delays[len(delays)-1]; worst > 2*time.Second {
		t.Errorf("a block took %v to reach the other instance", worst)
	}
	ip := netip.AddrFrom4([4]byte{10, 6, 0, 0})
	if was, err := a.Decisions.Lift(ctx, Block, ip.String(), time.Now()); !was || err != nil {
		t.Fatalf("lift: %v %v", was, err)
	}
	if !eventually(6*time.Second, func() bool { _, ok := b.Cache.Blocked(ip, time.Now()); return !ok }) {
		t.Fatal("a lift never reached the other instance")
	}
	now := time.Now()
	_ = a.Decisions.Put(ctx, Decision{Kind: RevokeUser, Target: "alice", Source: "admin", Created: now, Until: now.Add(time.Hour)})
	_ = a.Decisions.Put(ctx, Decision{Kind: RevokeJTI, Target: "jti-1", Source: "admin", Created: now, Until: now.Add(time.Hour)})
	alice := detect.AccountKey("Alice")
	if !eventually(6*time.Second, func() bool {
		_, user := b.Cache.SessionRevoked(alice, "", now.Add(-time.Minute), time.Now())
		_, jti := b.Cache.SessionRevoked("", "jti-1", time.Time{}, time.Now())
		return user && jti
	}) {
		t.Fatal("revocations never reached the other instance")
	}
}

// clusterEvents appends on a and queries and tails on b.
func clusterEvents(t *testing.T, a, b *Store) {
	ctx := context.Background()
	_, cursor, err := b.Events.Tail(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		e := detect.NewEvent(detect.FailedLogin, time.Now())
		e.User, e.IP = fmt.Sprintf("u%d", i%3), "203.0.113.5"
		a.Events.Append(e)
	}
	evs, _ := tailAll(t, b.Events, cursor, 30)
	if len(evs) != 30 {
		t.Fatalf("tailed %d of 30 events", len(evs))
	}
	page, err := b.Events.Query(ctx, EventFilter{User: "u1", Types: []detect.Type{detect.FailedLogin}})
	if err != nil || len(page.Events) != 10 {
		t.Fatalf("query: %d events, %v", len(page.Events), err)
	}
}

func eventually(limit time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(20 * time.Microsecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// answering waits until op has succeeded for 500 ms in a row, or limit;
// it returns when the successes began and whether they did.
func answering(op func() error, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	var since time.Time
	for time.Since(start) < limit {
		if op() != nil {
			since = time.Time{}
		} else if since.IsZero() {
			since = time.Now()
		} else if time.Since(since) > 500*time.Millisecond {
			return since.Sub(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

func (h *hookCounts) snapshot() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.errs)
}
