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
//
// While the primary is down, the operations of every login (Reserve and
// RecordSuccess) answer from memory at once and only one every probeEvery
// tries the primary: an unreachable or frozen Redis then costs one client
// timeout per probe, not one per login (a paused server would otherwise
// hold every login for a try and a retry). The rare operations whose loss
// would leave the shared counts wrong (Release of an entry the primary
// holds, Hold, Forget of a manual unlock) always try it.
type FallbackCounter struct {
	primary detect.LoginCounter
	mem     *MemoryCounter
	onError func(op string)
	down    atomic.Bool
	probeAt atomic.Int64 // while down: Unix ns from which the next operation tries the primary
	probing atomic.Bool  // while down: an operation is trying the primary
	hook    atomic.Pointer[HealthHook]
}

// probeEvery is how often, while the primary is down, an operation tries it
// again: how soon after Redis returns the shared counts are used again
// (the decisions' resync also notices, within 5 s).
const probeEvery = 250 * time.Millisecond

// HealthHook is told about the primary's health, so that the Caddy layer can
// log an outage once when it starts and once when it ends instead of once
// per failed operation. Either field may be nil.
type HealthHook struct {
	// Changed is called once per transition, with the error that caused a
	// fall (nil when an outside check noticed it). It runs on the goroutine
	// that noticed, which may be serving a request: it must be quick. Two
	// transitions close together may be reported out of order, so a
	// receiver that needs the state now reads Healthy.
	Changed func(healthy bool, cause error)
	// Checked is called after every outside check (SetHealthy): with Redis,
	// each resynchronisation of the decisions, which is how the health
	// report knows when the last one succeeded.
	Checked func(healthy bool)
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
	if !f.tryPrimary() {
		local.Member = ""
		return local, localCounts, nil
	}
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
	if f.tryPrimary() {
		f.observe("record_success", f.primary.RecordSuccess(ctx, a))
	}
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
// false on an error and true again on the next success: while it is down
// an operation tries the primary every probeEvery, so recovery needs no
// background probe.
func (f *FallbackCounter) Healthy() bool { return !f.down.Load() }

// SetHealthy lets an outside check (a ping at start, the decision store's
// periodic resync) update the state when no login has tried the primary
// lately; without it, fail_mode closed, which refuses logins while the store
// is unhealthy, would never see the store come back.
func (f *FallbackCounter) SetHealthy(ok bool) {
	f.setDown(!ok, nil)
	if h := f.hook.Load(); h != nil && h.Checked != nil {
		h.Checked(ok)
	}
}

// SetHealthHook installs h (nil removes it). The store outlives the configs
// that use it, so the hook is replaced rather than fixed at construction.
func (f *FallbackCounter) SetHealthHook(h *HealthHook) { f.hook.Store(h) }

// setDown records the health and tells the hook about a change. The state is
// read before it is written so that the usual case, no change, costs no
// write to a cache line every login shares.
func (f *FallbackCounter) setDown(down bool, cause error) {
	if f.down.Load() == down || f.down.Swap(down) == down {
		return
	}
	if h := f.hook.Load(); h != nil && h.Changed != nil {
		h.Changed(!down, cause)
	}
}

// tryPrimary reports whether an operation should try the primary: always
// while it is healthy; while it is down, one operation per probeEvery.
func (f *FallbackCounter) tryPrimary() bool {
	if !f.down.Load() {
		return true
	}
	// one probe at a time: with a frozen server a probe lasts a client
	// timeout, longer than the interval
	if time.Now().UnixNano() < f.probeAt.Load() || !f.probing.CompareAndSwap(false, true) {
		return false
	}
	return true
}

// Memory returns the local counter, for tests and metrics.
func (f *FallbackCounter) Memory() *MemoryCounter { return f.mem }

// observe records the outcome of a primary operation and reports whether it
// succeeded. A cancelled caller context or a key that is not a detect.HashID (a
// caller's bug) says nothing about the store's health, so neither is counted
// nor allowed to flip the state.
func (f *FallbackCounter) observe(op string, err error) bool {
	defer f.endProbe()
	if err == nil {
		f.setDown(false, nil)
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, errNotHashID) {
		return false
	}
	// the next try waits a probe interval, however many operations are
	// waiting on the primary now
	f.probeAt.Store(time.Now().Add(probeEvery).UnixNano())
	f.setDown(true, err)
	if f.onError != nil {
		f.onError(op)
	}
	return false
}

// endProbe lets the next operation probe the primary, once the state and
// the next probe time are set. Read first: while healthy, no operation
// writes the cache line every login shares.
func (f *FallbackCounter) endProbe() {
	if f.probing.Load() {
		f.probing.Store(false)
	}
}
