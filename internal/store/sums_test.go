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

	"github.com/vigilsec/vigil/internal/redistest"
)

const testSum detect.SumKind = "bytes"

// sumStep is one operation of a scripted sequence, at a synthetic time.
type sumStep struct {
	at     time.Duration
	op     string // "add", "sum", "forget"
	key    string
	v      int64
	window time.Duration
	want   int64
}

// TestSumsParity runs one scripted sequence against the memory and the
// Redis implementations: both must give the expected sum at every step.
// With a 64s window the buckets are exactly 1s wide. Windows are long in
// real time too, so that Redis expiry cannot strike while the test runs.
func TestSumsParity(t *testing.T) {
	client, prefix := redistest.Client(t)
	impls := []struct {
		name string
		s    detect.SumWindow
	}{{"memory", NewMemorySums(nil)}, {"redis", NewRedisSums(NewKeyspace(client, prefix))}}
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // a multiple of 56.25s
	a, b := detect.HashID("ip", "203.0.113.7"), detect.HashID("ip", "198.51.100.9")
	c, d := detect.HashID("ip", "c"), detect.HashID("ip", "d")
	const w, s = 64 * time.Second, time.Second
	steps := []sumStep{
		{0, "add", a, 5, w, 5},
		{s / 2, "add", a, 3, w, 8}, // same bucket as t=0
		{s, "add", a, 2, w, 10},
		{2 * s, "add", b, 7, w, 7}, // keys are separate
		{s, "add", a, 0, w, 10},
		{64*s - time.Microsecond, "sum", a, 0, w, 10},
		// the bucket starting at 0 is exactly one window old: out
		{64 * s, "sum", a, 0, w, 2},
		// a value at 64.5s lands in the bucket starting at 64s, so the
		// bucket of 0.5s (start 0) is out while the one of 1s is in
		{64*s + s/2, "add", a, 1, w, 3},
		{65 * s, "sum", a, 0, w, 1},
		// a lagging clock: the bucket of 64s is ahead of it and does not
		// count, the one of 1s does again
		{63 * s, "sum", a, 0, w, 2},
		{65 * s, "forget", a, 0, 0, 0},
		{65 * s, "sum", a, 0, w, 0},
		{65 * s, "add", a, 4, 0, 0}, // a disabled window stores nothing
		{65 * s, "add", a, 4, time.Nanosecond, 0},
		{65 * s, "sum", a, 0, w, 0},
		// saturation inside one bucket, then across buckets
		{100 * s, "add", c, math.MaxInt64 - 1, w, math.MaxInt64 - 1},
		{100 * s, "add", c, 5, w, math.MaxInt64},
		{100 * s, "add", c, math.MaxInt64, w, math.MaxInt64},
		{101 * s, "add", c, 1, w, math.MaxInt64},
		{101 * s, "sum", c, 0, w, math.MaxInt64},
		{164 * s, "sum", c, 0, w, 1},
		// around 2^53, where doubles stop holding every integer
		{170 * s, "add", d, 1<<53 - 1, w, 1<<53 - 1},
		{171 * s, "add", d, 1, w, 1 << 53},
		{171 * s, "add", d, 1, w, 1<<53 + 1},
		{172 * s, "add", d, 2, w, 1<<53 + 3},
		// an hour-long window: 56.25s buckets on the epoch's grid, so the
		// value of 200s sits in the bucket of 168.75s and leaves with it
		{200 * s, "add", b, 1, time.Hour, 8},
		{time.Hour + 2*s - time.Microsecond, "sum", b, 0, time.Hour, 8},
		{time.Hour + 2*s, "sum", b, 0, time.Hour, 1},
		{time.Hour + 168750*time.Millisecond - time.Microsecond, "sum", b, 0, time.Hour, 1},
		{time.Hour + 168750*time.Millisecond, "sum", b, 0, time.Hour, 0},
	}
	for _, impl := range impls {
		for i, s := range steps {
			now := base.Add(s.at)
			var got int64
			var err error
			switch s.op {
			case "add":
				got, err = impl.s.Add(ctx, detect.Sum{Kind: testSum, Within: s.window}, s.key, s.v, now)
			case "sum":
				got, err = impl.s.Sum(ctx, detect.Sum{Kind: testSum, Within: s.window}, s.key, now)
			case "forget":
				err = impl.s.Forget(ctx, testSum, s.key)
			}
			if err != nil || got != s.want {
				t.Fatalf("%s step %d (%s %d at %v): got %d, %v; want %d", impl.name, i, s.op, s.v, s.at, got, err, s.want)
			}
		}
		if _, err := impl.s.Add(ctx, detect.Sum{Kind: testSum, Within: w}, a, -1, base); !errors.Is(err, errNegativeValue) {
			t.Fatalf("%s: negative value: %v", impl.name, err)
		}
	}
	for _, key := range redistest.Keys(t, client, prefix) {
		if ttl := client.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("key %q has TTL %v, want (0, 1h]", key, ttl)
		}
		if !strings.HasPrefix(key, prefix+"s:bytes:") {
			t.Errorf("key %q is not a sum key", key)
		}
	}
}

// TestSumsTrimParity fills a key with 1s buckets under a 64s window and
// then adds under a long one: the fine buckets are all inside the long
// window, so only the bucket bound keeps the key small, oldest first.
func TestSumsTrimParity(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := detect.HashID("ip", "trim")
	mem, red := NewMemorySums(nil), NewRedisSums(NewKeyspace(client, prefix))
	for i := 0; i < 100; i++ {
		now := base.Add(time.Duration(i) * time.Second)
		m, _ := mem.Add(ctx, detect.Sum{Kind: testSum, Within: 64 * time.Second}, key, int64(i), now)
		r, err := red.Add(ctx, detect.Sum{Kind: testSum, Within: 64 * time.Second}, key, int64(i), now)
		if err != nil || m != r {
			t.Fatalf("add %d: memory %d, redis %d, %v", i, m, r, err)
		}
	}
	// buckets 36s…99s remain; the 1000s window's bucket (15.625s wide, so
	// the one starting at 100s on the epoch's grid) makes 65: 36s goes
	now := base.Add(100 * time.Second)
	want := int64(1000)
	for i := 37; i < 100; i++ {
		want += int64(i)
	}
	m, _ := mem.Add(ctx, detect.Sum{Kind: testSum, Within: 1000 * time.Second}, key, 1000, now)
	r, err := red.Add(ctx, detect.Sum{Kind: testSum, Within: 1000 * time.Second}, key, 1000, now)
	if err != nil || m != want || r != want {
		t.Fatalf("after trimming: memory %d, redis %d (%v), want %d", m, r, err, want)
	}
	if n := client.HLen(ctx, prefix+"s:bytes:"+key).Val(); n != detect.MaxSumBuckets {
		t.Fatalf("hash holds %d buckets, want %d", n, detect.MaxSumBuckets)
	}
	ms, _ := mem.Sum(ctx, detect.Sum{Kind: testSum, Within: 1000 * time.Second}, key, now)
	rs, err := red.Sum(ctx, detect.Sum{Kind: testSum, Within: 1000 * time.Second}, key, now)
	if err != nil || ms != want || rs != want {
		t.Fatalf("sum: memory %d, redis %d (%v), want %d", ms, rs, err, want)
	}
	if ttl := client.PTTL(ctx, prefix+"s:bytes:"+key).Val(); ttl <= 64*time.Second {
		t.Fatalf("TTL %v, want the last window's 1000s", ttl)
	}
}

func TestRedisSumsRefusesRawKeys(t *testing.T) {
	client, prefix := redistest.Client(t)
	s := NewRedisSums(NewKeyspace(client, prefix))
	ctx := context.Background()
	const raw = "/etc/passwd"
	if _, err := s.Add(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, raw, 1, time.Now()); !errors.Is(err, errNotHashID) {
		t.Fatalf("Add with a raw key: %v", err)
	}
	if _, err := s.Sum(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, raw, time.Now()); !errors.Is(err, errNotHashID) {
		t.Fatalf("Sum with a raw key: %v", err)
	}
	if err := s.Forget(ctx, testSum, raw); !errors.Is(err, errNotHashID) {
		t.Fatalf("Forget with a raw key: %v", err)
	}
	if keys := redistest.Keys(t, client, prefix); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
}

// failingSums is a primary whose errors a test switches on and off.
type failingSums struct{ err error }

func (f *failingSums) Add(context.Context, detect.Sum, string, int64, time.Time) (int64, error) {
	return 99, f.err
}
func (f *failingSums) Sum(context.Context, detect.Sum, string, time.Time) (int64, error) {
	return 99, f.err
}
func (f *failingSums) Forget(context.Context, detect.SumKind, string) error { return f.err }

func TestFallbackSums(t *testing.T) {
	primary := &failingSums{}
	var ops []string
	f := NewFallbackSums(primary, nil, func(op string) { ops = append(ops, op) })
	ctx := context.Background()
	key := detect.HashID("ip", "a")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if n, err := f.Add(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, key, 10, now); n != 99 || err != nil {
		t.Fatalf("healthy primary: %d, %v", n, err)
	}
	primary.err = errors.New("connection refused")
	// the memory store shadowed the first addition, so it counts 15
	if n, err := f.Add(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, key, 5, now.Add(time.Second)); n != 15 || err != nil {
		t.Fatalf("fallback add: %d, %v", n, err)
	}
	if n, err := f.Sum(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, key, now.Add(time.Second)); n != 15 || err != nil {
		t.Fatalf("fallback sum: %d, %v", n, err)
	}
	mustNil(t, f.Forget(ctx, testSum, key))
	if n, _ := f.Sum(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, key, now.Add(time.Second)); n != 0 {
		t.Fatalf("sum after forget: %d", n)
	}
	if got := strings.Join(ops, ","); got != "sum_add,sum_read,sum_forget,sum_read" {
		t.Fatalf("store errors reported: %s", got)
	}
	// a caller's bug is not a store failure
	primary.err = fmt.Errorf("wrapped: %w", errNotHashID)
	if n, err := f.Add(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, key, 1, now); n != 1 || err != nil {
		t.Fatalf("add with a refused key: %d, %v", n, err)
	}
	if len(ops) != 4 {
		t.Fatalf("errNotHashID reported as a store failure: %v", ops)
	}
	if _, err := f.Add(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, key, -1, now); !errors.Is(err, errNegativeValue) {
		t.Fatalf("negative value through the fallback: %v", err)
	}
}

func TestMemorySumsBounded(t *testing.T) {
	evicted := 0
	m := NewMemorySums(func(n int) { evicted += n })
	m.maxKeys = 100
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	add := func(i int, window time.Duration, at time.Duration) {
		t.Helper()
		if _, err := m.Add(ctx, detect.Sum{Kind: testSum, Within: window}, detect.HashID("ip", fmt.Sprint(i)), 1, base.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	// stale keys make room without evicting anything live
	for i := 0; i < 100; i++ {
		add(i, time.Second, 0)
	}
	add(100, time.Second, 2*time.Second)
	if m.Len() != 1 || evicted != 0 {
		t.Fatalf("after sweeping stale keys: %d keys, %d evicted", m.Len(), evicted)
	}
	// a flood of live keys: the least recently updated half goes
	for i := 101; i <= 200; i++ {
		add(i, time.Hour, 3*time.Second)
	}
	if m.Len() > 60 || evicted < 40 || m.Len()+evicted != 101 {
		t.Fatalf("after a live overflow: %d keys, %d evicted", m.Len(), evicted)
	}
	if n, _ := m.Sum(ctx, detect.Sum{Kind: testSum, Within: time.Hour}, detect.HashID("ip", "200"), base.Add(3*time.Second)); n != 1 {
		t.Fatalf("the newest key lost its sum: %d", n)
	}
	if n, _ := m.Sum(ctx, detect.Sum{Kind: testSum, Within: time.Hour}, detect.HashID("ip", "101"), base.Add(3*time.Second)); n != 0 {
		t.Fatalf("the least recent key survived: %d", n)
	}
}

func benchmarkSumsAdd(b *testing.B, s detect.SumWindow) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = detect.HashID("ip", fmt.Sprint(i))
	}
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// a clock advancing 1ms per call keeps buckets turning over
		if _, err := s.Add(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, keys[i%len(keys)], 1500, now.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemorySumsAdd(b *testing.B) { benchmarkSumsAdd(b, NewMemorySums(nil)) }

func BenchmarkRedisSumsAdd(b *testing.B) {
	client, prefix := redistest.Client(b)
	benchmarkSumsAdd(b, NewRedisSums(NewKeyspace(client, prefix)))
}
