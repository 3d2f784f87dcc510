package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"

	"github.com/vigilsec/vigil/internal/redistest"
)

// TestWindowsParity runs one scripted sequence against the memory and the
// Redis implementations: their counts must agree at every step, window
// edges included.
func TestWindowsParity(t *testing.T) {
	client, prefix := redistest.Client(t)
	impls := map[string]detect.WindowCounter{"memory": NewMemoryWindows(), "redis": NewRedisWindows(NewKeyspace(client, prefix))}
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ip := detect.HashID("ip", "203.0.113.7")
	other := detect.HashID("ip", "198.51.100.9")
	path := func(p string) string { return detect.HashID("path", p) }
	steps := []struct {
		at     time.Duration
		key    string
		member string
		forget bool
		want   int
	}{
		{0, ip, path("/a"), false, 1},
		{time.Second, ip, path("/b"), false, 2},
		{2 * time.Second, ip, path("/a"), false, 2}, // same path again: still 2, /a refreshed
		{3 * time.Second, other, path("/a"), false, 1},
		// /b (t=1s) is exactly one window old at 11s: out; /a (2s) in
		{11 * time.Second, ip, path("/c"), false, 2},
		{11*time.Second + time.Millisecond, ip, "", true, 0},
		{12 * time.Second, ip, path("/d"), false, 1},
	}
	for name, w := range impls {
		for i, s := range steps {
			now := base.Add(s.at)
			if s.forget {
				if err := w.Forget(ctx, detect.ProbePaths, s.key); err != nil {
					t.Fatalf("%s step %d: %v", name, i, err)
				}
				continue
			}
			n, err := w.Add(ctx, detect.Window{Kind: detect.ProbePaths, Within: 10 * time.Second}, s.key, s.member, now)
			if err != nil || n != s.want {
				t.Fatalf("%s step %d: n=%d err=%v, want %d", name, i, n, err, s.want)
			}
		}
	}
	if ttl := client.PTTL(ctx, prefix+"w:probe:"+ip).Val(); ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("window key TTL %v, want (0, 10s]", ttl)
	}
}

func TestWindowsBounded(t *testing.T) {
	m := NewMemoryWindows()
	ctx := context.Background()
	now := time.Now()
	key := detect.HashID("ip", "x")
	var n int
	for i := 0; i < detect.MaxWindowEntries+50; i++ {
		n, _ = m.Add(ctx, detect.Window{Kind: detect.ProbePaths, Within: time.Hour}, key, detect.HashID("path", strconv.Itoa(i)), now.Add(time.Duration(i)))
	}
	if n != detect.MaxWindowEntries {
		t.Fatalf("n=%d, want saturation at %d", n, detect.MaxWindowEntries)
	}
	// stale keys are swept (a fresh counter: the sweep honours the
	// longest window it has seen)
	m = NewMemoryWindows()
	for i := 0; i < 5000; i++ {
		_, _ = m.Add(ctx, detect.Window{Kind: detect.ProbePaths, Within: time.Second}, detect.HashID("ip", strconv.Itoa(i)), key, now.Add(time.Duration(i)*time.Millisecond))
	}
	if m.Len() > 2000 {
		t.Fatalf("%d keys held after a sweep, want the stale ones gone", m.Len())
	}
}

func TestRedisWindowsRefusesRawKeys(t *testing.T) {
	client, prefix := redistest.Client(t)
	w := NewRedisWindows(NewKeyspace(client, prefix))
	if _, err := w.Add(context.Background(), detect.Window{Kind: detect.ProbePaths, Within: time.Minute}, "/etc/passwd", detect.HashID("p", "x"), time.Now()); !errors.Is(err, errNotHashID) {
		t.Fatalf("raw key accepted: %v", err)
	}
	var ops []string
	f := NewFallbackWindows(failingWindows{}, nil, func(op string) { ops = append(ops, op) })
	for i := 1; i <= 3; i++ {
		n, err := f.Add(context.Background(), detect.Window{Kind: detect.ProbePaths, Within: time.Minute}, detect.HashID("ip", "a"), detect.HashID("p", strconv.Itoa(i)), time.Now())
		if err != nil || n != i {
			t.Fatalf("fallback add %d: n=%d err=%v", i, n, err)
		}
	}
	if len(ops) != 3 {
		t.Fatalf("store errors reported: %v", ops)
	}
}

type failingWindows struct{}

func (failingWindows) Add(context.Context, detect.Window, string, string, time.Time) (int, error) {
	return 0, errors.New("down")
}
func (failingWindows) Forget(context.Context, detect.WindowKind, string) error {
	return errors.New("down")
}

// TestMemoryWindowsEvictsWithHysteresis: when the counter overflows and
// sweeping the stale keys frees only a few slots, it still drops to about
// half, so the next new keys do not each pay a full sweep under the lock.
func TestMemoryWindowsEvictsWithHysteresis(t *testing.T) {
	m := NewMemoryWindows()
	ctx := context.Background()
	base := time.Unix(1_800_000_000, 0)
	add := func(key string, at time.Time) {
		t.Helper()
		if _, err := m.Add(ctx, detect.Window{Kind: "probe", Within: time.Hour}, key, "p", at); err != nil {
			t.Fatal(err)
		}
	}
	// keys that turn stale just before the flood overflows (after the last
	// periodic sweep at op 98,304), so the overflow's sweep frees only them
	for i := 0; i < 10; i++ {
		add(fmt.Sprintf("old%d", i), base.Add(-time.Hour+99*time.Second))
	}
	for i := 0; ; i++ {
		n := m.Len()
		if n > maxWindowKeys {
			t.Fatalf("the counter grew to %d keys, past its bound", n)
		}
		if n < maxWindowKeys {
			add(fmt.Sprintf("k%d", i), base.Add(time.Duration(i)*time.Millisecond))
			continue
		}
		add("overflow", base.Add(time.Duration(i)*time.Millisecond))
		break
	}
	if after := m.Len(); after > maxWindowKeys*6/10 {
		t.Fatalf("after the overflow the counter holds %d keys; freeing only the 10 stale ones leaves every next key to sweep again", after)
	}
	if n, _ := m.Add(ctx, detect.Window{Kind: "probe", Within: time.Hour}, "overflow", "q", base.Add(time.Duration(maxWindowKeys+1)*time.Millisecond)); n != 2 {
		t.Fatalf("the newest key lost its members: count %d, want 2", n)
	}
}

// TestMemoryWindowsReportsEvictions: past its bound the counter drops the
// stale keys (uncounted), then the least recently updated half of the live
// ones, and reports those to its hook.
func TestMemoryWindowsReportsEvictions(t *testing.T) {
	evicted := 0
	m := NewMemoryWindowsEvicting(func(n int) { evicted += n })
	m.maxKeys = 20
	ctx := context.Background()
	base := time.Unix(1_800_000_000, 0)
	w := detect.Window{Kind: detect.ProbePaths, Within: time.Hour}
	// one key whose window has passed by the time the others arrive
	if _, err := m.Add(ctx, detect.Window{Kind: detect.ProbePaths, Within: time.Second}, "stale", "p", base.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 19; i++ {
		if _, err := m.Add(ctx, w, fmt.Sprintf("k%02d", i), "p", base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// k00 is refreshed: now the most recently updated
	if _, err := m.Add(ctx, w, "k00", "q", base.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if evicted != 0 {
		t.Fatalf("%d evicted at the bound", evicted)
	}
	if _, err := m.Add(ctx, w, "k19", "p", base.Add(19*time.Second)); err != nil {
		t.Fatal(err)
	}
	if evicted == 0 || m.Len() > 20*9/10 {
		t.Fatalf("%d evicted, %d keys held", evicted, m.Len())
	}
	if evicted != 21-m.Len()-1 {
		t.Fatalf("%d evicted but %d keys went besides the stale one", evicted, 21-m.Len()-1)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sets["probe:stale"]; ok {
		t.Fatal("the stale key survived")
	}
	if _, ok := m.sets[string(detect.ProbePaths)+":k00"]; !ok {
		t.Fatal("the most recently updated key was evicted")
	}
	// the older half went: k01..k10
	for k, s := range m.sets {
		if s.newest <= base.Add(10*time.Second).UnixNano() {
			t.Errorf("%s kept though among the older half", k)
		}
	}
}
