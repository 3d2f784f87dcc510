package store

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// FallbackCounter keeps login counting alive when the shared store (Redis)
// is unreachable: it answers from a MemoryCounter instead of failing, so
// brute force is still detected on this instance (fail open), and it reports
// the store's health for fail_mode closed and for metrics.
//
// The memory counter shadows every write, not only those made during an
// outage, so that when Redis goes away in the middle of an attack the local
// counts already hold this instance's recent failures instead of restarting
// from zero. That costs one memory update (about a microsecond) per attempt.
type FallbackCounter struct {
	primary detect.LoginCounter
	mem     *MemoryCounter
	onError func(op string)
	down    atomic.Bool
}

// NewFallbackCounter wraps primary. onError, when set, is called with the
// operation name ("reserve", "release", "record_success", "forget") each time
// the primary fails. The counter starts healthy; see SetHealthy.
func NewFallbackCounter(primary detect.LoginCounter, mem *MemoryCounter, onError func(op string)) *FallbackCounter {
	if mem == nil {
		mem = NewMemoryCounter(nil)
	}
	return &FallbackCounter{primary: primary, mem: mem, onError: onError}
}

// Reserve implements detect.LoginCounter. It never returns an error: on a
// primary failure it returns the local counts.
func (f *FallbackCounter) Reserve(ctx context.Context, k detect.LoginKeys, w detect.LoginWindows, now time.Time) (detect.Attempt, detect.LoginCounts, error) {
	local, localCounts, _ := f.mem.Reserve(ctx, k, w, now)
	a, c, err := f.primary.Reserve(ctx, k, w, now)
	a.Seq = local.Seq
	if f.observe("reserve", err) {
		return a, c, nil
	}
	a.Member = "" // the primary holds no entry of it
	return a, localCounts, nil
}

// Release implements detect.LoginCounter.
func (f *FallbackCounter) Release(ctx context.Context, a detect.Attempt) error {
	_ = f.mem.Release(ctx, a)
	if a.Member != "" {
		f.observe("release", f.primary.Release(ctx, a))
	}
	return nil
}

// RecordSuccess implements detect.LoginCounter.
func (f *FallbackCounter) RecordSuccess(ctx context.Context, a detect.Attempt) error {
	_ = f.mem.RecordSuccess(ctx, a)
	f.observe("record_success", f.primary.RecordSuccess(ctx, a))
	return nil
}

// Hold implements detect.LoginCounter.
func (f *FallbackCounter) Hold(ctx context.Context, kind detect.CounterKind, key string, until time.Time) error {
	_ = f.mem.Hold(ctx, kind, key, until)
	f.observe("hold", f.primary.Hold(ctx, kind, key, until))
	return nil
}

// Forget implements detect.LoginCounter.
func (f *FallbackCounter) Forget(ctx context.Context, kind detect.CounterKind, key string) error {
	_ = f.mem.Forget(ctx, kind, key)
	f.observe("forget", f.primary.Forget(ctx, kind, key))
	return nil
}

// Healthy reports whether the primary answered the last operation. It turns
// false on an error and true again on the next success: every operation
// still tries the primary first, so recovery needs no background probe.
func (f *FallbackCounter) Healthy() bool { return !f.down.Load() }

// SetHealthy lets an outside check (a ping at start, the decision store's
// periodic resync) update the state when no login has tried the primary
// lately; without it, fail_mode closed, which refuses logins while the store
// is unhealthy, would never see the store come back.
func (f *FallbackCounter) SetHealthy(ok bool) { f.down.Store(!ok) }

// Memory returns the local counter, for tests and metrics.
func (f *FallbackCounter) Memory() *MemoryCounter { return f.mem }

// observe records the outcome of a primary operation and reports whether it
// succeeded. A cancelled caller context or a key that is not a detect.HashID (a
// caller's bug) says nothing about the store's health, so neither is counted
// nor allowed to flip the state.
func (f *FallbackCounter) observe(op string, err error) bool {
	if err == nil {
		f.down.Store(false)
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, errNotHashID) {
		return false
	}
	f.down.Store(true)
	if f.onError != nil {
		f.onError(op)
	}
	return false
}
