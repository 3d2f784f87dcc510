package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/internal/redistest"
)

// distinctImpls returns the memory and Redis distinct counters, and the
// Redis client and prefix for inspecting keys.
func distinctImpls(t *testing.T) ([]struct {
	name string
	d    query.Distinct
}, Keyspace) {
	client, prefix := redistest.Client(t)
	ks := NewKeyspace(client, prefix)
	return []struct {
		name string
		d    query.Distinct
	}{{"memory", NewMemoryDistinct(nil)}, {"redis", NewRedisDistinct(ks)}}, ks
}

// TestDistinctAccuracy adds 5,000 distinct members (each twice) to both
// implementations: the estimates stay within HyperLogLog's error of the
// truth along the way (±3 % at 5,000; MemoryDistinct is exact up to
// exactMembers, where limits are usually set, and Redis's sparse encoding
// nearly so), and of each other.
func TestDistinctAccuracy(t *testing.T) {
	impls, _ := distinctImpls(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := detect.HashID("subject", "alice")
	final := map[string]int64{}
	for _, impl := range impls {
		for i := 1; i <= 5000; i++ {
			m := detect.HashID("id", fmt.Sprint(i))
			n, err := impl.d.Add(ctx, query.Span{Kind: "enum", Within: time.Hour}, key, m, now)
			if err != nil {
				t.Fatal(err)
			}
			// a repeat is not a new member; MemoryDistinct's count may run
			// ahead of its last estimate by 1/64 (see its doc)
			again, _ := impl.d.Add(ctx, query.Span{Kind: "enum", Within: time.Hour}, key, m, now)
			if again < n-int64(i)/64-1 || again > n+int64(i)/64+1 {
				t.Fatalf("%s: a repeated member changed the count %d -> %d", impl.name, n, again)
			}
			tol := math.Max(2, 0.03*float64(i))
			if math.Abs(float64(n-int64(i))) > tol {
				t.Fatalf("%s: %d members estimated at %d", impl.name, i, n)
			}
			final[impl.name] = n
		}
	}
	if diff := math.Abs(float64(final["memory"] - final["redis"])); diff > 0.03*5000 {
		t.Fatalf("memory %d and redis %d disagree", final["memory"], final["redis"])
	}
	t.Logf("5000 members: memory %d, redis %d", final["memory"], final["redis"])
}

// TestDistinctSlides checks the bucket grid: with a 4s window the buckets
// are 1s wide, and a member counts until its bucket has wholly left the
// window (between 4s and 5s after it was added).
func TestDistinctSlides(t *testing.T) {
	impls, _ := distinctImpls(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // on the 1s grid
	key := detect.HashID("subject", "bob")
	const w, s = 4 * time.Second, time.Second
	steps := []struct {
		at     time.Duration
		member string
		want   int64
	}{
		{0, "a", 1},
		{s / 2, "b", 2},
		{s, "c", 3},
		{3 * s, "a", 3},
		{5*s - time.Microsecond, "d", 4}, // the bucket of 0s still counts
		{5 * s, "d", 3},                  // now it left: a (3s), c (1s), d
		{6 * s, "e", 3},                  // c left: a, d, e
		{20 * s, "f", 1},                 // everything left
		// a clock a whole ring behind the slot it lands in: counted from
		// what is there, nothing added
		{15 * s, "g", 0},
		{20 * s, "f", 1},
	}
	for _, impl := range impls {
		for i, st := range steps {
			n, err := impl.d.Add(ctx, query.Span{Kind: "enum", Within: w}, key, detect.HashID("m", st.member), base.Add(st.at))
			if err != nil || n != st.want {
				t.Fatalf("%s step %d (%s at %v): got %d, %v; want %d", impl.name, i, st.member, st.at, n, err, st.want)
			}
		}
		if n, _ := impl.d.Add(ctx, query.Span{Kind: "enum", Within: time.Microsecond}, key, detect.HashID("m", "x"), base); n != 0 {
			t.Fatalf("%s: a window too short to count gave %d", impl.name, n)
		}
		if err := impl.d.Forget(ctx, "enum", key); err != nil {
			t.Fatal(err)
		}
		if n, _ := impl.d.Add(ctx, query.Span{Kind: "enum", Within: w}, key, detect.HashID("m", "f"), base.Add(20*s)); n != 1 {
			t.Fatalf("%s: after Forget: %d", impl.name, n)
		}
	}
}

// TestDistinctSlidesLarge slides a window over more members than
// MemoryDistinct counts exactly, so both count with HyperLogLogs.
func TestDistinctSlidesLarge(t *testing.T) {
	impls, _ := distinctImpls(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := detect.HashID("subject", "carol")
	const w, s = 4 * time.Second, time.Second
	near := func(got, want int64) bool { return math.Abs(float64(got-want)) <= math.Max(1, 0.03*float64(want)) }
	for _, impl := range impls {
		add := func(at time.Duration, prefix string, n int) int64 {
			var got int64
			for i := 0; i < n; i++ {
				var err error
				if got, err = impl.d.Add(ctx, query.Span{Kind: "enum", Within: w}, key, detect.HashID(prefix, fmt.Sprint(i)), base.Add(at)); err != nil {
					t.Fatal(err)
				}
			}
			return got
		}
		for _, st := range []struct {
			at     time.Duration
			prefix string
			n      int
			want   int64
		}{
			{0, "a", 1500, 1500},
			{2 * s, "b", 1000, 2500},
			{2 * s, "a", 1500, 2500}, // repeats
			{5 * s, "c", 1, 2501},    // the bucket of 0s left; the repeats live on
			{7 * s, "c", 2, 2},       // and the one of 2s
		} {
			if got := add(st.at, st.prefix, st.n); !near(got, st.want) {
				t.Fatalf("%s: %d %s-members at %v: count %d, want about %d", impl.name, st.n, st.prefix, st.at, got, st.want)
			}
		}
	}
}

// TestDistinctRedisKeys checks the key layout: every key expires within a
// window plus a bucket, all keys of one subject share one hash tag (one
// Cluster slot, so the script never meets CROSSSLOT), different subjects
// have different tags, Forget leaves nothing, and no client text can
// become a key.
func TestDistinctRedisKeys(t *testing.T) {
	client, prefix := redistest.Client(t)
	ks := NewKeyspace(client, prefix)
	r := NewRedisDistinct(ks)
	ctx := context.Background()
	now := time.Now()
	a, b := detect.HashID("s", "a"), detect.HashID("s", "b")
	for i := 0; i < 6; i++ { // six buckets: the ring wraps
		at := now.Add(time.Duration(i) * 15 * time.Second)
		for _, k := range []string{a, b} {
			if _, err := r.Add(ctx, query.Span{Kind: "enum", Within: time.Minute}, k, detect.HashID("m", fmt.Sprint(i)), at); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := redistest.Keys(t, client, prefix)
	if len(keys) != 2*(distinctSlots+1) {
		t.Fatalf("%d keys: %v", len(keys), keys)
	}
	for _, key := range keys {
		rest := strings.TrimPrefix(key, prefix)
		if !strings.HasPrefix(rest, "d:enum:{"+a+"}:") && !strings.HasPrefix(rest, "d:enum:{"+b+"}:") {
			t.Errorf("key %q is not under its subject's hash tag", key)
		}
		if strings.Count(rest, "{") != 1 {
			t.Errorf("key %q has more than one tag", key)
		}
		if ttl := client.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 75*time.Second {
			t.Errorf("key %q has TTL %v, want (0, 75s]", key, ttl)
		}
	}
	if err := r.Forget(ctx, "enum", a); err != nil {
		t.Fatal(err)
	}
	if left := redistest.Keys(t, client, prefix); len(left) != distinctSlots+1 {
		t.Fatalf("after Forget: %v", left)
	}
	for _, bad := range [][3]string{{"enum", "/etc/passwd", a}, {"enum", a, "alice"}, {"Enum", a, a}, {"en}um", a, a}, {"", a, a}} {
		if _, err := r.Add(ctx, query.Span{Kind: bad[0], Within: time.Minute}, bad[1], bad[2], now); err == nil {
			t.Errorf("Add(%q, %q, %q) accepted", bad[0], bad[1], bad[2])
		}
	}
	if err := r.Forget(ctx, "enum", "x"); !errors.Is(err, errNotHashID) {
		t.Errorf("Forget of a non-hash: %v", err)
	}
}

// TestDistinctBounds fills a small memory counter: stale keys go first
// and are not reported, then the least recently updated half of live ones,
// reported to the hook.
func TestDistinctBounds(t *testing.T) {
	evicted := 0
	m := NewMemoryDistinct(func(n int) { evicted += n })
	m.maxKeys = 20
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		_, _ = m.Add(ctx, query.Span{Kind: "enum", Within: time.Second}, detect.HashID("old", fmt.Sprint(i)), "m", now)
	}
	later := now.Add(time.Minute)
	for i := 0; i < 20; i++ {
		_, _ = m.Add(ctx, query.Span{Kind: "enum", Within: time.Hour}, detect.HashID("new", fmt.Sprint(i)), "m", later.Add(time.Duration(i)*time.Millisecond))
	}
	if evicted != 0 || m.Len() != 20 {
		t.Fatalf("stale keys: evicted %d live, %d held", evicted, m.Len())
	}
	for i := 0; i < 200; i++ {
		_, _ = m.Add(ctx, query.Span{Kind: "enum", Within: time.Hour}, detect.HashID("flood", fmt.Sprint(i)), "m", later.Add(time.Second+time.Duration(i)*time.Millisecond))
		if m.Len() > m.maxKeys {
			t.Fatalf("%d keys held, bound %d", m.Len(), m.maxKeys)
		}
	}
	if evicted == 0 {
		t.Fatal("live keys evicted without a report")
	}
}

// failing is a primary that is always down.
type failing struct{}

func (failing) Add(context.Context, query.Span, string, string, time.Time) (int64, error) {
	return 0, errors.New("down")
}
func (failing) Forget(context.Context, string, string) error { return errors.New("down") }

// TestFallbackDistinct: while the primary fails, the shadowing memory
// answers and each failure is reported once per operation.
func TestFallbackDistinct(t *testing.T) {
	var ops []string
	f := NewFallbackDistinct(failing{}, nil, func(op string) { ops = append(ops, op) })
	ctx := context.Background()
	now := time.Now()
	key := detect.HashID("s", "a")
	for i := 1; i <= 3; i++ {
		n, err := f.Add(ctx, query.Span{Kind: "enum", Within: time.Minute}, key, detect.HashID("m", fmt.Sprint(i)), now)
		if err != nil || n != int64(i) {
			t.Fatalf("add %d: %d, %v", i, n, err)
		}
	}
	if err := f.Forget(ctx, "enum", key); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ops, ",") != "distinct_add,distinct_add,distinct_add,distinct_forget" {
		t.Fatalf("reported %v", ops)
	}
	// a healthy primary answers for itself
	client, prefix := redistest.Client(t)
	g := NewFallbackDistinct(NewRedisDistinct(NewKeyspace(client, prefix)), nil, func(op string) { t.Errorf("failure %s", op) })
	if n, err := g.Add(ctx, query.Span{Kind: "enum", Within: time.Minute}, key, detect.HashID("m", "1"), now); err != nil || n != 1 {
		t.Fatalf("redis: %d, %v", n, err)
	}
}
