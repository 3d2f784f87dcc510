package coordinated

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/store"
)

// gatedWindows and gatedSums let a test order two failures' store writes:
// the first failure adds its source, the second adds its source and its
// attempt, and only then does the first add its attempt. Each then saw one
// count short of the thresholds on its own writes.
type gatedWindows struct {
	detect.WindowCounter
	firstSource string
	firstAdded  chan struct{} // closed once the first failure's source is in
}

func (g *gatedWindows) Add(ctx context.Context, w detect.Window, key, member string, now time.Time) (int, error) {
	if member != g.firstSource {
		<-g.firstAdded
	}
	n, err := g.WindowCounter.Add(ctx, w, key, member, now)
	if member == g.firstSource {
		select {
		case <-g.firstAdded:
		default:
			close(g.firstAdded)
		}
	}
	return n, err
}

type gatedSums struct {
	detect.SumWindow
	mu          sync.Mutex
	calls       int
	secondAdded chan struct{} // closed once the second failure's attempt is in
}

func (g *gatedSums) Add(ctx context.Context, s detect.Sum, key string, v int64, now time.Time) (int64, error) {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.mu.Unlock()
	if first {
		// the first caller here is the first failure (its source went in
		// first): hold it until the second failure's attempt is counted
		<-g.secondAdded
		return g.SumWindow.Add(ctx, s, key, v, now)
	}
	n, err := g.SumWindow.Add(ctx, s, key, v, now)
	g.mu.Lock()
	if g.calls == 2 {
		close(g.secondAdded)
	}
	g.mu.Unlock()
	return n, err
}

// TestDistributedInterleaved: two failures whose writes interleave so
// that each sees one count short still raise DISTRIBUTED_BRUTE_FORCE once
// (before the fix, neither did: the attack went unreported).
func TestDistributedInterleaved(t *testing.T) {
	first, second := facts("198.51.100.1"), facts("198.51.100.2")
	windows := &gatedWindows{WindowCounter: store.NewMemoryWindowsEvicting(nil),
		firstSource: detect.HashID("ip", first.Net), firstAdded: make(chan struct{})}
	sums := &gatedSums{SumWindow: store.NewMemorySums(nil), secondAdded: make(chan struct{})}
	d, rec := newDetector(t, stores{windows: windows, sums: sums}, Options{
		Distributed: &Distributed{IPs: 2, Attempts: 2, Within: time.Minute, Lock: detect.Ban{Base: time.Minute}}})
	now := time.Now()
	var wg sync.WaitGroup
	for _, f := range []detect.Facts{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.Failure(context.Background(), f, "carol", now)
		}()
	}
	wg.Wait()
	wantN(t, rec, detect.DistributedBruteForce, 1)
}
