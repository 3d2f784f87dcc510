package respond

import (
	"context"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

func TestHealthMemoryStore(t *testing.T) {
	st := NewMemoryStore(MemoryOptions{}, Hooks{})
	defer st.Close()
	if d, err := st.Ping(context.Background()); err != nil || d != 0 {
		t.Fatalf("memory ping: %s %v", d, err)
	}
	st.Events.Append(detect.NewEvent(detect.FailedLogin, time.Now()))
	if n := st.EventsPending(); n != 0 {
		t.Fatalf("memory events pending: %d", n)
	}
	if st.Fallback() != nil {
		t.Fatal("the memory store has a fallback counter")
	}
}

func TestHealthRedisStore(t *testing.T) {
	srv := redistest.StartServer(t, 0)
	ks, err := store.RedisOptions{Addrs: []string{srv.Addr}, Prefix: "vigiltest:" + redistest.RandomHex(6) + ":"}.Open()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewRedisStore(context.Background(), ks, RedisStoreOptions{Retention: time.Hour}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Fallback() == nil {
		t.Fatal("no fallback counter")
	}
	if d, err := st.Ping(context.Background()); err != nil || d <= 0 {
		t.Fatalf("ping: %s %v", d, err)
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := st.Ping(ctx); err == nil {
		t.Fatal("a stopped server answered")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("ping ignored its deadline: %s", took)
	}
}

// TestQueueDepths: the depths count what waits for a goroutine that has
// not taken it yet.
func TestQueueDepths(t *testing.T) {
	taken, release := make(chan struct{}), make(chan struct{})
	q := Queue(func(detect.Event) {
		taken <- struct{}{}
		<-release
	}, 8, nil)
	q.Publish(detect.Event{})
	<-taken // the goroutine holds the first event
	q.Publish(detect.Event{})
	q.Publish(detect.Event{})
	if n := q.Depth(); n != 2 {
		t.Fatalf("sink depth %d, want 2", n)
	}
	go func() {
		for range taken {
		}
	}()
	close(release)
	_ = q.Close()
	close(taken)

	r := &RedisEvents{queue: newBatchQueue(4, 4, nil)}
	r.queue.put(detect.Event{})
	if n := (&Store{Events: r}).EventsPending(); n != 1 {
		t.Fatalf("events pending %d, want 1", n)
	}
}
