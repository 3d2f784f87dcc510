package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// ErrProfileTooLarge refuses a record above detect.MaxProfileBytes: a
// detector's encoding has gone wrong, and storing it would let one subject
// grow memory (or a Redis value) without bound. Nothing is stored then.
var ErrProfileTooLarge = errors.New("profile record larger than detect.MaxProfileBytes")

// errBadTTL refuses a non-positive time to live, which Redis would take as
// "delete now" and memory as "keep forever": neither is an update.
var errBadTTL = errors.New("profile ttl is not positive")

// MemoryProfiles is the in-process detect.Profiles: the store of a single
// instance and the fallback of the Redis one.
type MemoryProfiles struct {
	mu      sync.Mutex
	recs    map[profileKey]*profileRec
	maxRecs int              // maxProfiles; smaller in tests
	seq     uint64           // update order, for evicting the least recent
	now     func() time.Time // the interface carries no time; tests set a clock
	onEvict func(n int)
}

type profileKey struct {
	kind detect.ProfileKind
	key  string
}

type profileRec struct {
	data    []byte
	expires int64 // Unix ns
	seq     uint64
}

// maxProfiles bounds the records held: beyond it, expired records are swept
// and, if a flood of distinct subjects still fills it, the least recently
// updated half goes.
const maxProfiles = 100_000

// NewMemoryProfiles returns an empty store. onEvict, when set, is told how
// many live records were dropped to stay within bounds (expired ones are not
// counted); it is called without the lock held.
func NewMemoryProfiles(onEvict func(n int)) *MemoryProfiles {
	return &MemoryProfiles{recs: map[profileKey]*profileRec{}, maxRecs: maxProfiles, now: time.Now, onEvict: onEvict}
}

// Get implements detect.Profiles. The record is copied: a caller decoding
// in place must not change what the next Update sees.
func (m *MemoryProfiles) Get(_ context.Context, kind detect.ProfileKind, key string) ([]byte, error) {
	k := profileKey{kind, key}
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.live(k, m.now().UnixNano())), nil
}

// Update implements detect.Profiles. fn runs under the lock, so concurrent
// updates of this instance never interleave and fn runs exactly once.
func (m *MemoryProfiles) Update(_ context.Context, kind detect.ProfileKind, key string, ttl time.Duration, fn func(cur []byte) []byte) ([]byte, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("memory profiles: %w (%v)", errBadTTL, ttl)
	}
	out, evicted, err := m.update(profileKey{kind, key}, ttl, fn)
	if evicted > 0 && m.onEvict != nil {
		m.onEvict(evicted)
	}
	return out, err
}

// update is Update under the lock, released by defer since fn is the
// caller's code and may panic.
func (m *MemoryProfiles) update(k profileKey, ttl time.Duration, fn func([]byte) []byte) (out []byte, evicted int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UnixNano()
	out = fn(bytes.Clone(m.live(k, now)))
	if len(out) > detect.MaxProfileBytes {
		return nil, 0, fmt.Errorf("memory profiles: %d bytes: %w", len(out), ErrProfileTooLarge)
	}
	if out == nil {
		delete(m.recs, k)
		return nil, 0, nil
	}
	m.seq++
	m.recs[k] = &profileRec{data: bytes.Clone(out), expires: now + int64(ttl), seq: m.seq}
	if overflow := len(m.recs) > m.maxRecs; overflow || m.seq%4096 == 0 {
		evicted = m.sweep(now, overflow)
	}
	return out, evicted, nil
}

// Len reports how many records are held (expired ones included until the
// next sweep), for tests and metrics.
func (m *MemoryProfiles) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// live returns k's record, or nil once it has expired (then dropped, as
// Redis would have); the caller holds the lock.
func (m *MemoryProfiles) live(k profileKey, now int64) []byte {
	r := m.recs[k]
	if r == nil {
		return nil
	}
	if r.expires <= now {
		delete(m.recs, k)
		return nil
	}
	return r.data
}

// sweep drops expired records; after an overflow it also halves a map that
// is still nearly full of live ones, returning how many that evicted.
func (m *MemoryProfiles) sweep(now int64, overflow bool) int {
	for k, r := range m.recs {
		if r.expires <= now {
			delete(m.recs, k)
		}
	}
	if !overflow || len(m.recs) <= m.maxRecs*9/10 {
		return 0
	}
	// as MemorySums: freeing a few slots would sweep again on every new one
	return evictLeastRecentHalf(m.recs, func(r *profileRec) uint64 { return r.seq })
}
