package respond

import (
	"slices"
	"time"
)

// Every in-memory structure of Vigil has a bound and reports what it evicts
// to stay within it (docs/bounds.md). This file holds the labels they
// report under and the local books of the decision stores: the strikes,
// and RedisDecisions' outage writes awaiting replay. The DecisionCache's
// bound is in cache.go.

// The state labels under which Hooks.Evicted reports evictions, one per
// bounded structure (docs/bounds.md lists each bound).
const (
	StateCounters    = "counters"     // login counters (store.MemoryCounter)
	StateWindows     = "windows"      // distinct-member windows (store.MemoryWindows)
	StateBuckets     = "buckets"      // the probes' leaky buckets (store.MemoryBuckets)
	StateSums        = "sums"         // sum windows (store.MemorySums)
	StateProfiles    = "profiles"     // profiles (store.MemoryProfiles)
	StateDecisions   = "decisions"    // the DecisionCache
	StateStrikes     = "strikes"      // the local strike counts
	StatePending     = "pending"      // RedisDecisions' outage writes awaiting replay
	StateVerifyCache = "verify_cache" // detect/session's verified tokens
	StateAgents      = "agents"       // detect/probes' User-Agent verdicts
	StateRisk        = "risk"         // login risk profiles (store.MemoryRisk)
	StateDistinct    = "distinct"     // HyperLogLog distinct counts (store.MemoryDistinct)
)

// evictions is the eviction hook of one bounded structure, nil when
// nothing listens (the structures then skip the call).
func (h Hooks) evictions(state string) func(n int) {
	if h.Evicted == nil {
		return nil
	}
	return func(n int) { h.Evicted(state, n) }
}

// strikeBook counts a target's earlier bans in this process: the whole
// strike memory of the memory store, and the Redis store's stand-in while
// Redis is unreachable. The caller holds the lock that guards it.
//
// It holds at most max records. Beyond that, expired records go first, then
// those that would expire soonest (struck least recently), down to 15/16 of
// the bound so that a flood does not pay for a pass over the book on every
// ban. Losing a record costs its target the doubling of its next ban, never
// the ban itself.
type strikeBook struct {
	m       map[string]strikeRecord
	max     int         // maxStrikeRecords; smaller in tests
	onEvict func(n int) // told of live records evicted; called under the caller's lock
}

type strikeRecord struct {
	n       int
	expires time.Time
}

// maxStrikeRecords bounds the book: one record per decision key, about 150
// bytes each, kept for StrikeMemory (a day or more).
const maxStrikeRecords = 100_000

func newStrikeBook(onEvict func(n int)) strikeBook {
	return strikeBook{m: map[string]strikeRecord{}, max: maxStrikeRecords, onEvict: onEvict}
}

// next records one more ban for key and returns its strike number: 1 unless
// an earlier ban is still within StrikeMemory(max).
func (b *strikeBook) next(key string, now time.Time, max time.Duration) int {
	s := b.m[key]
	if !now.Before(s.expires) {
		s.n = 0
	}
	s.n++
	s.expires = now.Add(StrikeMemory(max))
	b.m[key] = s
	if len(b.m) > b.max {
		if n := b.evict(key, now); n > 0 && b.onEvict != nil {
			b.onEvict(n)
		}
	}
	return s.n
}

// forget drops a target's strikes (a lift starts a clean slate).
func (b *strikeBook) forget(key string) { delete(b.m, key) }

// evict drops expired records and then the soonest to expire, never keep;
// it returns how many live records went.
func (b *strikeBook) evict(keep string, now time.Time) int {
	type aged struct {
		key     string
		expires time.Time
	}
	var live []aged
	for k, r := range b.m {
		switch {
		case !now.Before(r.expires):
			delete(b.m, k)
		case k != keep:
			live = append(live, aged{k, r.expires})
		}
	}
	target := b.max - b.max/16
	if len(b.m) <= target {
		return 0
	}
	slices.SortFunc(live, func(x, y aged) int { return x.expires.Compare(y.expires) })
	evicted := 0
	for _, a := range live {
		if len(b.m) <= target {
			break
		}
		delete(b.m, a.key)
		evicted++
	}
	return evicted
}

// queuePending records an outage write for replay. A long outage under a
// flood of bans must not grow memory without bound: beyond maxPending,
// expired decisions go, then the automatic ones that end soonest, down to
// 15/16 of the bound. Lifts and manual decisions are never dropped. A
// dropped decision stays in the local cache until the first resync after
// Redis answers again, but is not replayed into Redis. The caller holds r.mu.
func (r *RedisDecisions) queuePending(key string, op pendingOp, now time.Time) {
	r.pending[key] = op
	if len(r.pending) <= r.maxPending {
		return
	}
	type victim struct {
		key   string
		until time.Time
	}
	var victims []victim
	for k, p := range r.pending {
		switch {
		case p.lift || p.d.Source == "admin" || k == key:
		case !p.d.Active(now):
			delete(r.pending, k) // it would not be replayed anyway
		default:
			victims = append(victims, victim{k, p.d.Until})
		}
	}
	target := r.maxPending - r.maxPending/16
	slices.SortFunc(victims, func(a, b victim) int { return a.until.Compare(b.until) })
	evicted := 0
	for _, v := range victims {
		if len(r.pending) <= target {
			break
		}
		delete(r.pending, v.key)
		evicted++
	}
	if evicted > 0 {
		if h := r.hooks.evictions(StatePending); h != nil {
			h(evicted)
		}
	}
}
