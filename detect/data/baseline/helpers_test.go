package baseline

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"

	"github.com/redis/go-redis/v9"
)

// t0 starts window 0 of the tests (aligned to the hour).
var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

const testGroup = "/api/export/*"

// stores is the same suite's two backends: each entry returns two
// detect.Profiles sharing one state, as two instances of Vigil would.
var stores = []struct {
	name string
	open func(tb testing.TB) (detect.Profiles, detect.Profiles)
}{
	{"memory", func(testing.TB) (detect.Profiles, detect.Profiles) {
		m := store.NewMemoryProfiles(nil)
		return m, m
	}},
	{"redis", func(tb testing.TB) (detect.Profiles, detect.Profiles) {
		client, prefix := redistest.Client(tb)
		ks := store.NewKeyspace(client, prefix)
		tb.Cleanup(func() { checkKeysHashed(tb, client, prefix) })
		return store.NewRedisProfiles(ks), store.NewRedisProfiles(ks)
	}},
}

// eachStore runs fn against every backend.
func eachStore(t *testing.T, fn func(t *testing.T, p, other detect.Profiles)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			p, other := s.open(t)
			fn(t, p, other)
		})
	}
}

// checkKeysHashed: every key the suite wrote is a profile under a hash,
// never a user, group or claim value.
func checkKeysHashed(tb testing.TB, client redis.UniversalClient, prefix string) {
	tb.Helper()
	re := regexp.MustCompile(`^p:(vol|volpeer):[0-9a-f]{32}$`)
	for _, k := range redistest.Keys(tb, client, prefix) {
		if !re.MatchString(strings.TrimPrefix(k, prefix)) {
			tb.Errorf("key %q is not a hashed profile", k)
		}
	}
}

// newB builds Baselines with test defaults over p.
func newB(t testing.TB, p detect.Profiles, o Options) *Baselines {
	t.Helper()
	o.Profiles = p
	if o.Factor == 0 {
		o.Factor = 10
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at is a time inside window w (of length DefaultWindow).
func at(w int, off time.Duration) time.Time {
	return t0.Add(time.Duration(w)*DefaultWindow + off)
}

func user(name string) string { return detect.HashID("user", name) }

// add is Add that fails the test on an error.
func add(t testing.TB, b *Baselines, o Observation) Verdict {
	t.Helper()
	if o.Group == "" {
		o.Group = testGroup
	}
	v, err := b.Add(context.Background(), o)
	if err != nil {
		t.Fatalf("Add(%+v): %v", o, err)
	}
	return v
}

// history gives subject amount per window in windows [from, to), and
// fails on any anomaly.
func history(t testing.TB, b *Baselines, subject, peer string, amount int64, from, to int) {
	t.Helper()
	for w := from; w < to; w++ {
		if v := add(t, b, Observation{Subject: subject, Peer: peer, Amount: amount, At: at(w, time.Minute)}); v.Anomalous {
			t.Fatalf("window %d: steady history reported: %+v", w, v)
		}
	}
}
