package respond

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
)

// Tail implements EventLog. The cursor is the sequence number of the next
// event to return; a cursor older than the ring's oldest event continues
// from the oldest one kept.
func (m *MemoryEvents) Tail(ctx context.Context, cursor string, max int) ([]detect.Event, string, error) {
	max = tailLimit(max)
	m.mu.Lock()
	if cursor == "" {
		defer m.mu.Unlock()
		return nil, strconv.FormatUint(m.seq, 10), nil
	}
	from, err := strconv.ParseUint(cursor, 10, 64)
	if err != nil {
		m.mu.Unlock()
		return nil, cursor, fmt.Errorf("invalid cursor %q", cursor)
	}
	for from >= m.seq {
		if m.wake == nil {
			m.wake = make(chan struct{})
		}
		wake := m.wake
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, cursor, nil
		case <-wake:
		}
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	if oldest := m.oldest(); from < oldest {
		from = oldest
	}
	var out []detect.Event
	for s := from; s < m.seq && len(out) < max; s++ {
		out = append(out, m.ring[s%uint64(len(m.ring))])
	}
	return out, strconv.FormatUint(from+uint64(len(out)), 10), nil
}

func (m *MemoryEvents) oldest() uint64 {
	if m.seq > uint64(len(m.ring)) {
		return m.seq - uint64(len(m.ring))
	}
	return 0
}

// tailBlock bounds one blocking XREAD, so a cancelled tail returns its
// connection to the pool within this time.
const tailBlock = 2 * time.Second

// Tail implements EventLog with XREAD on the stream: the cursor is a
// stream ID, so every instance's events are tailed in stream order.
func (r *RedisEvents) Tail(ctx context.Context, cursor string, max int) ([]detect.Event, string, error) {
	max = tailLimit(max)
	if cursor == "" {
		last, err := r.client.XRevRangeN(ctx, r.stream, "+", "-", 1).Result()
		if err != nil {
			return nil, cursor, fmt.Errorf("events tail: %w", err)
		}
		if len(last) == 0 {
			return nil, "0-0", nil
		}
		return nil, last[0].ID, nil
	}
	if !validStreamID(cursor) {
		return nil, cursor, fmt.Errorf("invalid cursor %q", cursor)
	}
	for ctx.Err() == nil {
		block := tailBlock
		if dl, ok := ctx.Deadline(); ok {
			block = min(block, time.Until(dl))
		}
		if block < time.Millisecond {
			break
		}
		res, err := r.client.XRead(ctx, &redis.XReadArgs{Streams: []string{r.stream, cursor}, Count: int64(max), Block: block}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing new within block
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return nil, cursor, fmt.Errorf("events tail: %w", err)
		}
		var out []detect.Event
		for _, s := range res {
			for _, m := range s.Messages {
				cursor = m.ID
				if e, ok := decodeStreamEvent(m); ok {
					out = append(out, e)
				}
			}
		}
		if len(out) > 0 {
			return out, cursor, nil
		}
	}
	return nil, cursor, nil
}

func tailLimit(max int) int {
	if max <= 0 || max > 1000 {
		return 1000
	}
	return max
}
