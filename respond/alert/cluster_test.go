package alert

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// TestRedisOutboxOnCluster: two instances share the outbox on a real Redis
// Cluster. Each channel's keys share one hash tag (no CROSSSLOT), the
// channels land on different slots, every job is leased and acknowledged
// exactly once, a lease that runs out hands the job over, and a repeat
// seen by one instance is suppressed on the other.
func TestRedisOutboxOnCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	open := func() *RedisOutbox {
		ks, err := store.RedisOptions{Addrs: c.Addrs(), Cluster: true, Prefix: "vigil:"}.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ks.Client.Close() })
		return NewRedisOutbox(ks)
	}
	boxes := []*RedisOutbox{open(), open()}
	ctx := context.Background()
	channels := []string{"webhook", "slack", "email", "pagerduty"}
	now := time.Now()
	const perChannel = 40
	for _, ch := range channels {
		for i := range perChannel {
			j := Job{ID: fmt.Sprintf("%s-%d", ch, i), Queued: now, Due: now.Add(-time.Second),
				Alert: FromEvent(event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i)))}
			if res, err := boxes[i%2].Put(ctx, ch, j, 1000, time.Hour); err != nil || res != PutOK {
				t.Fatalf("put %s: %v %v", j.ID, res, err)
			}
		}
	}
	// both instances drain every channel at once
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, box := range boxes {
		for _, ch := range channels {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					jobs, err := box.Lease(ctx, ch, time.Now(), time.Now().Add(time.Minute), 3)
					if err != nil {
						t.Errorf("lease %s: %v", ch, err)
						return
					}
					if len(jobs) == 0 {
						return
					}
					for _, j := range jobs {
						mu.Lock()
						seen[j.ID]++
						mu.Unlock()
						if err := box.Ack(ctx, ch, j); err != nil {
							t.Errorf("ack %s: %v", j.ID, err)
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(seen) != perChannel*len(channels) {
		t.Fatalf("%d jobs leased, want %d", len(seen), perChannel*len(channels))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s leased %d times", id, n)
		}
	}
	for _, ch := range channels {
		if _, n, err := boxes[0].Next(ctx, ch); err != nil || n != 0 {
			t.Fatalf("%s: %d jobs left, %v", ch, n, err)
		}
	}

	// a lease that runs out: the other instance takes the job over, and
	// the late holder's Ack is ignored
	j := Job{ID: "handover", Queued: now, Due: now.Add(-time.Second), Alert: FromEvent(event(detect.AccountLocked, "alice", ""))}
	if _, err := boxes[0].Put(ctx, "webhook", j, 1000, time.Hour); err != nil {
		t.Fatal(err)
	}
	first, err := boxes[0].Lease(ctx, "webhook", time.Now(), time.Now().Add(100*time.Millisecond), 1)
	if err != nil || len(first) != 1 {
		t.Fatalf("lease: %v %v", first, err)
	}
	time.Sleep(150 * time.Millisecond)
	second, err := boxes[1].Lease(ctx, "webhook", time.Now(), time.Now().Add(time.Minute), 1)
	if err != nil || len(second) != 1 {
		t.Fatalf("lease after the first ran out: %v %v", second, err)
	}
	_ = boxes[0].Ack(ctx, "webhook", first[0])
	if _, n, _ := boxes[0].Next(ctx, "webhook"); n != 1 {
		t.Fatalf("the late holder's ack removed the job (%d left)", n)
	}
	if err := boxes[1].Retry(ctx, "webhook", second[0], time.Hour); err != nil {
		t.Fatal(err)
	}
	if taken, err := boxes[0].Take(ctx, "webhook"); err != nil || len(taken) != 1 {
		t.Fatalf("take: %d jobs, %v", len(taken), err)
	}
	// dedup is shared
	if ok, err := boxes[0].FirstSeen(ctx, "slack", "IP_BLOCKED:198.51.100.7", time.Minute); !ok || err != nil {
		t.Fatalf("first sight: %v %v", ok, err)
	}
	if ok, err := boxes[1].FirstSeen(ctx, "slack", "IP_BLOCKED:198.51.100.7", time.Minute); ok || err != nil {
		t.Fatalf("a repeat seen on the other instance: %v %v", ok, err)
	}
}
