package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// RedisWindows is the detect.WindowCounter shared by every instance: one sorted set
// per key ("<prefix>w:<kind>:<hash>") whose members are scored by the time
// they were last seen, kept inside the window by the same single-key script
// as the login counters (one round trip per Add).
type RedisWindows struct {
	ks Keyspace
}

// NewRedisWindows returns a window counter under prefix.
func NewRedisWindows(ks Keyspace) *RedisWindows {
	return &RedisWindows{ks: ks}
}

// Add implements detect.WindowCounter.
func (r *RedisWindows) Add(ctx context.Context, w detect.Window, key, member string, now time.Time) (int, error) {
	kind, window := w.Kind, w.Within
	if window <= 0 {
		return 0, nil
	}
	if err := checkHashIDs(key, member); err != nil {
		return 0, err
	}
	score := now.UnixMicro()
	cutoff, ttl := windowArgs(score, window)
	n, err := bumpScript.Run(ctx, r.ks.Client, []string{r.key(kind, key)},
		strconv.FormatInt(score, 10), member, cutoff, ttl, detect.MaxWindowEntries).Int()
	if err != nil {
		return 0, fmt.Errorf("redis windows: %w", err)
	}
	return n, nil
}

// Forget implements detect.WindowCounter.
func (r *RedisWindows) Forget(ctx context.Context, kind detect.WindowKind, key string) error {
	if err := checkHashIDs(key); err != nil {
		return err
	}
	if err := r.ks.Client.Del(ctx, r.key(kind, key)).Err(); err != nil {
		return fmt.Errorf("redis windows: %w", err)
	}
	return nil
}

func (r *RedisWindows) key(kind detect.WindowKind, hash string) string {
	return r.ks.Key("w", string(kind), hash)
}

// FallbackWindows answers from a shadowing MemoryWindows whenever the
// primary (Redis) fails, as FallbackCounter does for login counters: probe
// and violation detection keep working on this instance during an outage.
type FallbackWindows struct {
	primary detect.WindowCounter
	mem     *MemoryWindows
	onError func(op string)
}

// NewFallbackWindows wraps primary; onError, when set, is told of each
// primary failure ("window_add", "window_forget").
func NewFallbackWindows(primary detect.WindowCounter, mem *MemoryWindows, onError func(op string)) *FallbackWindows {
	if mem == nil {
		mem = NewMemoryWindows()
	}
	return &FallbackWindows{primary: primary, mem: mem, onError: onError}
}

// Add implements detect.WindowCounter; it never fails.
func (f *FallbackWindows) Add(ctx context.Context, w detect.Window, key, member string, now time.Time) (int, error) {
	local, _ := f.mem.Add(ctx, w, key, member, now)
	n, err := f.primary.Add(ctx, w, key, member, now)
	if err != nil {
		f.failed("window_add", err)
		return local, nil
	}
	return n, nil
}

// Forget implements detect.WindowCounter; it never fails.
func (f *FallbackWindows) Forget(ctx context.Context, kind detect.WindowKind, key string) error {
	_ = f.mem.Forget(ctx, kind, key)
	if err := f.primary.Forget(ctx, kind, key); err != nil {
		f.failed("window_forget", err)
	}
	return nil
}

func (f *FallbackWindows) failed(op string, err error) {
	if f.onError != nil && !errors.Is(err, errNotHashID) {
		f.onError(op)
	}
}
