package respond

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// tailAll tails log from cursor until it has n events or the deadline.
func tailAll(t *testing.T, log EventLog, cursor string, n int) ([]detect.Event, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []detect.Event
	for len(out) < n && ctx.Err() == nil {
		evs, next, err := log.Tail(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		out, cursor = append(out, evs...), next
	}
	return out, cursor
}

func testTail(t *testing.T, writer, reader EventLog) {
	ctx := context.Background()
	_, cursor, err := reader.Tail(ctx, "", 10)
	if err != nil || cursor == "" {
		t.Fatalf("from now: cursor %q, %v", cursor, err)
	}
	// nothing new: the tail waits until its context ends, then returns the cursor
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	evs, same, err := reader.Tail(short, cursor, 10)
	cancel()
	if err != nil || len(evs) != 0 || same != cursor {
		t.Fatalf("idle tail: %d events, cursor %q (was %q), %v", len(evs), same, cursor, err)
	}
	// an event appended while a tail waits wakes it
	done := make(chan []detect.Event)
	go func() {
		evs, _ := tailAll(t, reader, cursor, 1)
		done <- evs
	}()
	first := detect.NewEvent(detect.AccountLocked, time.Now())
	writer.Append(first)
	if evs := <-done; len(evs) != 1 || evs[0].ID != first.ID {
		t.Fatalf("waiting tail got %+v", evs)
	}
	var ids []string
	for i := 0; i < 7; i++ {
		e := detect.NewEvent(detect.FailedLogin, time.Now())
		ids = append(ids, e.ID)
		writer.Append(e)
	}
	got, _ := tailAll(t, reader, cursor, 8)
	if len(got) != 8 || got[0].ID != first.ID {
		t.Fatalf("tail from the cursor: %d events", len(got))
	}
	for i, id := range ids {
		if got[i+1].ID != id {
			t.Fatalf("event %d out of order", i)
		}
	}
	if _, _, err := reader.Tail(ctx, "not-a-cursor", 1); err == nil {
		t.Fatal("a malformed cursor was accepted")
	}
}

func TestMemoryEventsTail(t *testing.T) {
	m := NewMemoryEvents(100)
	testTail(t, m, m)
}

// TestRedisEventsTailAcrossInstances: an event appended by one instance is
// tailed by another (their own clients, one stream).
func TestRedisEventsTailAcrossInstances(t *testing.T) {
	client, prefix := redistest.Client(t)
	other := redis.NewClient(&redis.Options{Addr: client.Options().Addr})
	t.Cleanup(func() { _ = other.Close() })
	a := NewRedisEvents(store.NewKeyspace(client, prefix), 0, 0, Hooks{})
	b := NewRedisEvents(store.NewKeyspace(other, prefix), 0, 0, Hooks{})
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	testTail(t, a, b)
}

// TestMemoryEventsTailSkipsOverwritten: a cursor older than the ring
// continues from the oldest event kept.
func TestMemoryEventsTailSkipsOverwritten(t *testing.T) {
	m := NewMemoryEvents(4)
	_, cursor, _ := m.Tail(context.Background(), "", 10)
	for i := 0; i < 10; i++ {
		m.Append(detect.NewEvent(detect.FailedLogin, time.Now()))
	}
	evs, next, err := m.Tail(context.Background(), cursor, 10)
	if err != nil || len(evs) != 4 || next != "10" {
		t.Fatalf("got %d events, cursor %q, %v", len(evs), next, err)
	}
}
