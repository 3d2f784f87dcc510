package store

import (
	"context"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
)

const testBucket detect.BucketKind = "test"

// bucketStep is one pour (or forget) of a scripted sequence.
type bucketStep struct {
	at       time.Duration
	key      string
	weight   float64 // 0: forget
	member   string
	level    float64
	overflow bool
}

// TestBucketsParity runs one scripted sequence against the memory and the
// Redis implementations: both must give the same level and overflow at
// every step, leaks, distinct members and capacity edges included. The
// synthetic times stay within the keys' real TTLs.
func TestBucketsParity(t *testing.T) {
	client, prefix := redistest.Client(t)
	impls := []struct {
		name string
		b    detect.Buckets
	}{{"memory", NewMemoryBuckets(nil)}, {"redis", NewRedisBuckets(NewKeyspace(client, prefix))}}
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, b := detect.HashID("ip", "203.0.113.7"), detect.HashID("ip", "198.51.100.9")
	m := func(p string) string { return detect.HashID("path", p) }
	const s = time.Second
	// capacity 2, one unit leaks per second: memory of members 3s
	bucket := detect.Bucket{Kind: testBucket, Capacity: 2, Leak: s}
	steps := []bucketStep{
		{0, a, 1, m("/a"), 1, false},
		{0, a, 1, m("/a"), 1, false},            // the same member adds nothing
		{s / 2, a, 1, m("/b"), 1.5, false},      // 0.5 leaked
		{s / 2, b, 1, m("/a"), 1, false},        // keys are separate
		{s, a, 1, "", 2, false},                 // a drop without a member always pours
		{s, a, 0.25, m("/c"), 2.25, true},       // above the capacity: overflow
		{s, a, 1, m("/c"), 2.25, false},         // a member in the bucket never overflows
		{3 * s, a, 1, m("/d"), 1.25, false},     // 2s leaked
		{4 * s, a, 1, m("/a"), 1.25, false},     // /a (0s) is out of memory at 3s: counts again
		{4*s + s/4, a, 1, m("/a"), 1, false},    // and is in it again
		{20 * s, a, 1, m("/c"), 1, false},       // long idle: empty
		{20 * s, a, 0, "", 0, false},            // forget
		{20 * s, a, 2.5, m("/c"), 2.5, true},    // a single heavy drop overflows, forgotten /c counts
		{19 * s, a, 1, "", 4.5, true},           // a lagging clock sees a fuller bucket
		{30 * s, b, 1e-9, m("/e"), 1e-6, false}, // the smallest drop costs 1µs
	}
	for _, impl := range impls {
		for i, st := range steps {
			now := base.Add(st.at)
			if st.weight == 0 {
				if err := impl.b.Forget(ctx, testBucket, st.key); err != nil {
					t.Fatalf("%s step %d: %v", impl.name, i, err)
				}
				continue
			}
			level, over, err := impl.b.Pour(ctx, bucket, st.key, detect.Drop{Weight: st.weight, Member: st.member}, now)
			if err != nil || math.Abs(level-st.level) > 1e-9 || over != st.overflow {
				t.Fatalf("%s step %d: level %v overflow %v err %v; want %v %v", impl.name, i, level, over, err, st.level, st.overflow)
			}
		}
	}
	// the key lives as long as it matters: the bucket's 4.5 units from
	// a lagging clock, members 3s
	if ttl := client.PTTL(ctx, prefix+"b:test:"+a).Val(); ttl <= 0 || ttl > 5500*time.Millisecond {
		t.Fatalf("bucket key TTL %v, want (0, 5.5s]", ttl)
	}
	if n := len(client.HKeys(ctx, prefix+"b:test:"+a).Val()); n != 2 {
		t.Fatalf("bucket hash holds %d fields, want 2 (t and /c)", n)
	}
}

// TestBucketsMemberBound: a bucket remembers at most MaxBucketMembers, the
// oldest forgotten first, in both stores alike.
func TestBucketsMemberBound(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := detect.HashID("ip", "a")
	// a large bucket that leaks slowly: nothing overflows, members last
	bucket := detect.Bucket{Kind: testBucket, Capacity: 1000, Leak: time.Minute}
	for name, bs := range map[string]detect.Buckets{"memory": NewMemoryBuckets(nil), "redis": NewRedisBuckets(NewKeyspace(client, prefix))} {
		pour := func(i int, at time.Duration) float64 {
			l, _, err := bs.Pour(ctx, bucket, key, detect.Drop{Weight: 1, Member: detect.HashID("m", strconv.Itoa(i))}, base.Add(at))
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		n := detect.MaxBucketMembers + 8
		var last float64
		for i := 0; i < n; i++ {
			last = pour(i, time.Duration(i)*time.Millisecond)
		}
		// member 0 was forgotten (the oldest), member n-1 is remembered
		if l := pour(n-1, time.Duration(n)*time.Millisecond); l > last {
			t.Fatalf("%s: a remembered member poured again (%v > %v)", name, l, last)
		}
		if l := pour(0, time.Duration(n+1)*time.Millisecond); l <= last {
			t.Fatalf("%s: a forgotten member did not pour (%v <= %v)", name, l, last)
		}
	}
	if n := len(client.HKeys(ctx, prefix+"b:test:"+key).Val()); n != detect.MaxBucketMembers+1 {
		t.Fatalf("redis bucket holds %d fields, want %d members and t", n, detect.MaxBucketMembers)
	}
}

func TestBucketsRefuseBadInput(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx, now := context.Background(), time.Now()
	key := detect.HashID("ip", "a")
	b := detect.Bucket{Kind: testBucket, Capacity: 2, Leak: time.Second}
	red := NewRedisBuckets(NewKeyspace(client, prefix))
	for name, bs := range map[string]detect.Buckets{"memory": NewMemoryBuckets(nil), "redis": red} {
		for _, w := range []float64{0, -1, math.NaN(), math.Inf(1), 1e300} {
			if _, _, err := bs.Pour(ctx, b, key, detect.Drop{Weight: w}, now); !errors.Is(err, errBadDrop) {
				t.Errorf("%s: weight %v: %v", name, w, err)
			}
		}
		if _, _, err := bs.Pour(ctx, detect.Bucket{Kind: testBucket, Capacity: -1, Leak: time.Second}, key, detect.Drop{Weight: 1}, now); !errors.Is(err, errBadDrop) {
			t.Errorf("%s: negative capacity: %v", name, err)
		}
		// a bucket without a leak is off
		if l, over, err := bs.Pour(ctx, detect.Bucket{Kind: testBucket, Capacity: 0}, key, detect.Drop{Weight: 5}, now); l != 0 || over || err != nil {
			t.Errorf("%s: disabled bucket: %v %v %v", name, l, over, err)
		}
	}
	// client input never becomes a Redis key or field
	if _, _, err := red.Pour(ctx, b, "/etc/passwd", detect.Drop{Weight: 1}, now); !errors.Is(err, errNotHashID) {
		t.Fatalf("raw key: %v", err)
	}
	if _, _, err := red.Pour(ctx, b, key, detect.Drop{Weight: 1, Member: "t"}, now); !errors.Is(err, errNotHashID) {
		t.Fatalf("raw member: %v", err)
	}
	if err := red.Forget(ctx, testBucket, "x"); !errors.Is(err, errNotHashID) {
		t.Fatalf("raw key forgotten: %v", err)
	}
}

// TestFallbackBuckets: with Redis unreachable, pours go on in memory and
// each failure is reported.
func TestFallbackBuckets(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	var failures []string
	f := NewFallbackBuckets(NewRedisBuckets(NewKeyspace(dead, "")), nil, func(op string) { failures = append(failures, op) })
	ctx, now := context.Background(), time.Now()
	key := detect.HashID("ip", "a")
	b := detect.Bucket{Kind: testBucket, Capacity: 1, Leak: time.Minute}
	var over bool
	for i := 0; i < 2; i++ {
		var err error
		if _, over, err = f.Pour(ctx, b, key, detect.Drop{Weight: 1, Member: detect.HashID("p", strconv.Itoa(i))}, now); err != nil {
			t.Fatal(err)
		}
	}
	if !over || f.Memory().Len() != 1 {
		t.Fatalf("the second pour did not overflow in memory (%v, %d keys)", over, f.Memory().Len())
	}
	if err := f.Forget(ctx, testBucket, key); err != nil || f.Memory().Len() != 0 {
		t.Fatalf("forget: %v, %d keys", err, f.Memory().Len())
	}
	if len(failures) != 3 || failures[0] != "bucket_pour" || failures[2] != "bucket_forget" {
		t.Fatalf("failures reported: %v", failures)
	}
}

// TestMemoryBucketsBounded: a flood of distinct addresses stays within the
// bound, and live buckets evicted to stay there are counted.
func TestMemoryBucketsBounded(t *testing.T) {
	evicted := 0
	m := NewMemoryBuckets(func(n int) { evicted += n })
	m.maxKeys = 1000
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := detect.Bucket{Kind: testBucket, Capacity: 5, Leak: time.Hour}
	for i := 0; i < 5000; i++ {
		if _, _, err := m.Pour(ctx, b, detect.HashID("ip", strconv.Itoa(i)), detect.Drop{Weight: 1}, base.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if m.Len() > m.maxKeys+1 {
			t.Fatalf("%d keys after %d pours", m.Len(), i+1)
		}
	}
	if evicted == 0 {
		t.Fatal("no eviction reported")
	}
	// buckets that no longer matter are swept, not evicted
	m2 := NewMemoryBuckets(func(n int) { evicted += n })
	short := detect.Bucket{Kind: testBucket, Capacity: 5, Leak: time.Millisecond}
	for i := 0; i < 5000; i++ {
		_, _, _ = m2.Pour(ctx, short, detect.HashID("ip", strconv.Itoa(i)), detect.Drop{Weight: 1}, base.Add(time.Duration(i)*time.Second))
	}
	if m2.Len() > 4096 {
		t.Fatalf("stale buckets kept: %d", m2.Len())
	}
}

func BenchmarkMemoryBucketsPour(b *testing.B) {
	m := NewMemoryBuckets(nil)
	ctx, now := context.Background(), time.Now()
	key, member := detect.HashID("ip", "a"), detect.HashID("path", "/x")
	bk := detect.Bucket{Kind: testBucket, Capacity: 10, Leak: time.Second}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _, _ = m.Pour(ctx, bk, key, detect.Drop{Weight: 1, Member: member}, now)
	}
}

func BenchmarkRedisBucketsPour(b *testing.B) {
	client, prefix := redistest.Client(b)
	r := NewRedisBuckets(NewKeyspace(client, prefix))
	ctx, now := context.Background(), time.Now()
	key := detect.HashID("ip", "a")
	bk := detect.Bucket{Kind: testBucket, Capacity: 1e6, Leak: time.Minute}
	members := make([]string, 64)
	for i := range members {
		members[i] = detect.HashID("path", strconv.Itoa(i))
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.Pour(ctx, bk, key, detect.Drop{Weight: 1, Member: members[i%len(members)]}, now); err != nil {
			b.Fatal(err)
		}
	}
}
