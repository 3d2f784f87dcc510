package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
)

// TestReserveIsExactUnderConcurrency: 50 parallel attempts at one account
// with a limit of 5 (the login detector lets an attempt through when the
// count it reserved is within the limit): exactly 5 get through, on one
// instance and across two instances sharing Redis.
func TestReserveIsExactUnderConcurrency(t *testing.T) {
	client, prefix := redistest.Client(t)
	other := redis.NewClient(&redis.Options{Addr: client.Options().Addr})
	t.Cleanup(func() { _ = other.Close() })
	for name, counters := range map[string][]detect.LoginCounter{
		"memory": {NewMemoryCounter(nil)},
		"redis, two instances": {
			NewRedisCounter(NewKeyspace(client, prefix)),
			NewRedisCounter(NewKeyspace(other, prefix)),
		},
	} {
		t.Run(name, func(t *testing.T) {
			const limit = 5
			w := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute}
			var mu sync.Mutex
			through := 0
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					c := counters[i%len(counters)]
					k := detect.KeysFor("alice", fmt.Sprintf("198.51.100.%d", i))
					a, n, err := c.Reserve(context.Background(), k, w, time.Now())
					if err != nil {
						t.Error(err)
						return
					}
					if n.Account > limit {
						// refused before the upstream: not a failure
						if err := c.Release(context.Background(), a); err != nil {
							t.Error(err)
						}
						return
					}
					mu.Lock()
					through++
					mu.Unlock()
				}(i)
			}
			wg.Wait()
			if through != limit {
				t.Fatalf("%d attempts got through a limit of %d", through, limit)
			}
			// the refused attempts were released: the account holds the 5 that went through
			_, n, _ := counters[0].Reserve(context.Background(), detect.KeysFor("alice", "203.0.113.1"), w, time.Now())
			if n.Account != limit+1 {
				t.Fatalf("after the storm the account counts %d, want %d", n.Account, limit+1)
			}
		})
	}
}

// TestReleaseParity: memory and Redis agree after releases, and a release
// keeps the account among the address's distinct accounts.
func TestReleaseParity(t *testing.T) {
	client, prefix := redistest.Client(t)
	impls := []detect.LoginCounter{NewMemoryCounter(nil), NewRedisCounter(NewKeyspace(client, prefix))}
	w := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute, Stuffing: time.Minute}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var got [2]detect.LoginCounts
	for i, c := range impls {
		ctx := context.Background()
		k := detect.KeysFor("alice", "203.0.113.7")
		_, _, _ = c.Reserve(ctx, k, w, base)
		a, _, _ := c.Reserve(ctx, k, w, base.Add(time.Second))
		mustNil(t, c.Release(ctx, a))
		_, got[i], _ = c.Reserve(ctx, detect.KeysFor("bob", "203.0.113.7"), w, base.Add(2*time.Second))
	}
	want := detect.LoginCounts{Account: 1, IP: 2, Pair: 1, AccountsFromIP: 2}
	if got[0] != want || got[1] != want {
		t.Fatalf("memory %+v, redis %+v, want %+v", got[0], got[1], want)
	}
}

// TestMemoryCounterBounded: past its bound the counter evicts the least
// recently updated counters, reports them, and keeps counting the newest.
func TestMemoryCounterBounded(t *testing.T) {
	evicted := 0
	m := NewMemoryCounter(func(n int) { evicted += n })
	m.maxKeys = 1000
	w := detect.LoginWindows{IP: time.Hour}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for i := 0; i < 5000; i++ {
		_, _, _ = m.Reserve(ctx, detect.KeysFor("", fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)), w, base.Add(time.Duration(i)*time.Millisecond))
	}
	if m.Len() > 1000 || evicted == 0 {
		t.Fatalf("%d counters held (bound 1000), %d evicted", m.Len(), evicted)
	}
	k := detect.KeysFor("", "10.0.19.135") // the 4999th address
	if _, n, _ := m.Reserve(ctx, k, w, base.Add(5*time.Second)); n.IP != 2 {
		t.Fatalf("the newest address lost its count: %d", n.IP)
	}
}

// TestHoldRefusesUntilItEnds: a held counter answers over any limit
// without counting, then restarts from nothing once the hold ends.
func TestHoldRefusesUntilItEnds(t *testing.T) {
	client, prefix := redistest.Client(t)
	w := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute}
	now := time.Now()
	for name, c := range map[string]detect.LoginCounter{
		"memory": NewMemoryCounter(nil), "redis": NewRedisCounter(NewKeyspace(client, prefix)),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			k := detect.KeysFor("alice", "203.0.113.7")
			for i := 0; i < 3; i++ {
				_, _, _ = c.Reserve(ctx, k, w, now)
			}
			mustNil(t, c.Hold(ctx, detect.AccountCounter, k.Account, now.Add(10*time.Second)))
			_, n, err := c.Reserve(ctx, k, w, now.Add(time.Second))
			if err != nil || n.Account <= detect.MaxWindowEntries || n.IP != 4 {
				t.Fatalf("during the hold: %+v, %v", n, err)
			}
			_, n, _ = c.Reserve(ctx, k, w, now.Add(11*time.Second))
			if n.Account != 1 {
				t.Fatalf("after the hold the account counts %d, want 1 (a fresh start)", n.Account)
			}
		})
	}
}
