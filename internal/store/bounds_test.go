package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
	"github.com/vigilsec/vigil/respond"
)

// TestEveryRedisKeyHasTTL drives every part of the Redis store as the
// gateway wires it (respond.NewRedisStore) and then checks each key under
// the prefix: all expire on their own, except two whose entries are
// bounded otherwise, the events stream (trimmed by length and age) and the
// decisions hash (expired fields swept at each resync). A key family
// without a TTL would be memory that only grows. (It lives in package
// store_test because only respond sees every part: the decisions and
// strikes are respond's.)
func TestEveryRedisKeyHasTTL(t *testing.T) {
	client, prefix := redistest.Client(t)
	// the store closes its client: give it one of its own, so the test's
	// client still lists and deletes the keys at the end
	own := redis.NewClient(&redis.Options{Addr: client.Options().Addr})
	ctx := context.Background()
	st, err := respond.NewRedisStore(ctx, store.NewKeyspace(own, prefix), respond.RedisStoreOptions{Retention: time.Hour}, respond.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	login := detect.LoginWindows{Account: 15 * time.Minute, IP: 10 * time.Minute, Pair: 15 * time.Minute, Stuffing: 10 * time.Minute}
	for i := 0; i < 3; i++ {
		k := detect.KeysFor(fmt.Sprint("user", i), fmt.Sprint("192.0.2.", i))
		if _, _, err := st.Counter.Reserve(ctx, k, login, now); err != nil {
			t.Fatal(err)
		}
	}
	held := detect.KeysFor("held", "198.51.100.1")
	mustNil(t, st.Counter.Hold(ctx, detect.AccountCounter, held.Account, now.Add(time.Minute)))
	ip := detect.HashID("ip", "192.0.2.1")
	if _, err := st.Windows.Add(ctx, detect.Window{Kind: detect.ProbePaths, Within: time.Minute}, ip, detect.HashID("path", "/x"), now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Buckets.Pour(ctx, detect.Bucket{Kind: "probe", Capacity: 5, Leak: time.Second}, ip, detect.Drop{Weight: 1, Member: detect.HashID("path", "/y")}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Sums.Add(ctx, detect.Sum{Kind: "bytes", Within: time.Minute}, ip, 100, now); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Profiles.Update(ctx, "places", ip, time.Hour, func([]byte) []byte { return []byte("x") }); err != nil {
		t.Fatal(err)
	}
	// two strikes for one address (a strike key), a manual lock
	block := respond.Decision{Kind: respond.Block, Target: "203.0.113.9", Source: "auto"}
	for i := 0; i < 2; i++ {
		if _, _, err := st.Decisions.Impose(ctx, block, time.Millisecond, time.Hour, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	mustNil(t, st.Decisions.Put(ctx, respond.Decision{Kind: respond.Lock, Target: "alice", Source: "admin", Created: now, Until: now.Add(time.Hour)}))
	st.Events.Append(detect.NewEvent(detect.IPBlocked, now))
	poll.True(t, 5*time.Second, "the event in the stream", func() bool {
		return client.XLen(ctx, prefix+"events").Val() == 1
	})

	exempt := map[string]bool{prefix + "events": true, prefix + "decisions": true}
	families := map[string]bool{}
	for _, key := range redistest.Keys(t, client, prefix) {
		rest := strings.TrimPrefix(key, prefix)
		family, _, _ := strings.Cut(rest, ":")
		families[family] = true
		ttl := client.PTTL(ctx, key).Val()
		switch {
		case exempt[key]:
			if ttl != -1 {
				t.Errorf("%s: TTL %v; the docs say it has none", key, ttl)
			}
		case ttl <= 0:
			t.Errorf("%s has no TTL (%v)", key, ttl)
		}
	}
	// c: counters, w: windows, b: buckets, s: sums, p: profiles, strike
	for _, f := range []string{"c", "w", "b", "s", "p", "strike", "events", "decisions"} {
		if !families[f] {
			t.Errorf("no %q key was written: the test no longer covers it (families %v)", f, families)
		}
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
