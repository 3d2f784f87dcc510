package store

import (
	"context"
	"math"
	"sync"

	"github.com/vigilsec/vigil/detect/risk"
)

// MemoryRisk is the in-process risk.Store: the store of a single instance
// and the fallback of the Redis one. It follows RedisRisk's rules exactly
// (forward decay, the user epoch's rebase, the lowest count evicted from
// a full user table, the lowest of a sample from a full global table).
type MemoryRisk struct {
	mu       sync.Mutex
	users    map[string]*riskProfile
	maxUsers int
	seq      uint64 // update order, for evicting the least recent profiles
	onEvict  func(n int)
	global   riskGlobal
	gates    map[string]int64 // user -> end of their global-table interval, Unix ms
}

// riskProfile is one user's tables. Weights are forward-decayed from
// epoch (see risk.UserRebase).
type riskProfile struct {
	epoch   int64 // Unix ms, as in Redis, so both compute the same weights
	logins  int64
	expires int64 // Unix ms
	seq     uint64
	tables  [risk.NumFeatures]riskTable
}

// riskTable holds one feature's values and their weights, at most K; a
// user has few values, and a slice beats a map for them. aux is kept by
// the ASN table only: per network, the weight of the logins that brought
// a new address in it.
type riskTable struct {
	keys  []uint64
	w     []float64
	aux   []float64
	total float64
	news  float64 // the weight of the logins that brought a new value
}

// riskGlobal is the global tables of the current generation.
type riskGlobal struct {
	gen    int64
	epoch  int64 // Unix ms
	tables [risk.NumFeatures]map[uint64]float64
	totals [risk.NumFeatures]float64
}

// DefaultMaxRiskUsers bounds the profiles a MemoryRisk holds. A profile
// takes about 2 KB for a typical user (measured: a few values per feature,
// a few dozen hours) and at most about 10 KB (every table full: 6 × K=16
// values and 168 hours, 24 bytes each, with the slices' spare capacity),
// and its global-table gate about 100 bytes. Only successful logins are
// learned, so filling it takes valid credentials for as many accounts.
const DefaultMaxRiskUsers = 100_000

// NewMemoryRisk returns an empty store holding at most maxUsers profiles
// (DefaultMaxRiskUsers when 0). onEvict, when set, is told how many live
// profiles were dropped to stay within the bound; it is called without the
// lock held.
func NewMemoryRisk(maxUsers int, onEvict func(n int)) *MemoryRisk {
	if maxUsers <= 0 {
		maxUsers = DefaultMaxRiskUsers
	}
	return &MemoryRisk{
		users: map[string]*riskProfile{}, maxUsers: maxUsers, onEvict: onEvict,
		gates: map[string]int64{}, global: riskGlobal{gen: math.MinInt64},
	}
}

// Read implements risk.Store.
func (m *MemoryRisk) Read(_ context.Context, q *risk.Query) (risk.Counts, error) {
	var c risk.Counts
	now := q.Now.UnixMilli()
	hl := float64(q.Tables.HalfLife.Milliseconds())
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.live(q.User, now); p != nil {
		scale := math.Exp2(-float64(now-p.epoch) / hl)
		c.Logins = p.logins
		for f := range risk.NumFeatures {
			if !q.Has[f] {
				continue
			}
			t := &p.tables[f]
			c.User[f] = risk.Tally{Count: t.get(q.Keys[f]) * scale, Total: t.total * scale, New: t.news * scale}
		}
		if q.Has[risk.ASN] {
			if i := p.tables[risk.ASN].index(q.Keys[risk.ASN]); i >= 0 {
				c.IPNew = p.tables[risk.ASN].aux[i] * scale
			}
		}
		for i, k := range q.Near {
			if f := risk.NearFeature(i); q.Has[f] {
				c.Near[i] = p.tables[f].get(k) * scale
			}
		}
	}
	gen, epoch := risk.GlobalGeneration(q.Now, q.Tables.HalfLife)
	if g := &m.global; g.gen == gen {
		scale := math.Exp2(-float64(now-epoch.UnixMilli()) / hl)
		for f := range risk.NumFeatures {
			if q.Has[f] {
				c.Global[f] = risk.Tally{Count: g.tables[f][q.Keys[f]] * scale, Total: g.totals[f] * scale}
			}
		}
	}
	return c, nil
}

// Learn implements risk.Store.
func (m *MemoryRisk) Learn(_ context.Context, q *risk.Query) error {
	evicted := m.learn(q)
	if evicted > 0 && m.onEvict != nil {
		m.onEvict(evicted)
	}
	return nil
}

func (m *MemoryRisk) learn(q *risk.Query) (evicted int) {
	now := q.Now.UnixMilli()
	hl := float64(q.Tables.HalfLife.Milliseconds())
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.live(q.User, now)
	if p == nil {
		p = &riskProfile{epoch: now}
		m.users[q.User] = p
	}
	x := float64(now-p.epoch) / hl
	if x > risk.UserRebase {
		p.rebase(math.Exp2(-x))
		p.epoch, x = now, 0
	}
	w := math.Exp2(x)
	ipNew := false
	for f := range risk.NumFeatures {
		if q.Has[f] {
			isNew := p.tables[f].add(q.Keys[f], w, q.Tables.UserK[f])
			ipNew = ipNew || isNew && risk.Feature(f) == risk.IP
		}
	}
	if ipNew && q.Has[risk.ASN] {
		a := &p.tables[risk.ASN]
		a.aux[a.index(q.Keys[risk.ASN])] += w
	}
	p.logins++
	p.expires = now + q.Tables.UserTTL.Milliseconds()
	m.seq++
	p.seq = m.seq
	if len(m.users) > m.maxUsers {
		evicted = m.sweep(now)
	}
	if m.gate(q, now) {
		m.learnGlobal(q, now, hl)
	}
	return evicted
}

// gate reports whether the user may add to the global tables now, and if
// so closes their interval. A flood of distinct users that fills the map
// empties it: letting someone contribute twice within an interval is
// harmless, growing without bound is not.
func (m *MemoryRisk) gate(q *risk.Query, now int64) bool {
	every := q.Tables.GlobalEvery.Milliseconds()
	if every <= 0 {
		return true
	}
	if until, ok := m.gates[q.User]; ok && until > now {
		return false
	}
	if len(m.gates) >= m.maxUsers {
		for u, until := range m.gates {
			if until <= now {
				delete(m.gates, u)
			}
		}
		if len(m.gates) >= m.maxUsers {
			clear(m.gates)
		}
	}
	m.gates[q.User] = now + every
	return true
}

func (m *MemoryRisk) learnGlobal(q *risk.Query, now int64, hl float64) {
	gen, epoch := risk.GlobalGeneration(q.Now, q.Tables.HalfLife)
	g := &m.global
	if g.gen != gen {
		*g = riskGlobal{gen: gen, epoch: epoch.UnixMilli()}
		for f := range g.tables {
			g.tables[f] = map[uint64]float64{}
		}
	}
	w := math.Exp2(float64(now-g.epoch) / hl)
	for f := range risk.NumFeatures {
		if !q.Has[f] {
			continue
		}
		t, k := g.tables[f], q.Keys[f]
		if _, ok := t[k]; !ok && len(t) >= q.Tables.GlobalK[f] {
			evictSampled(t)
		}
		t[k] += w
		g.totals[f] += w
	}
}

// evictSampled drops the lowest of risk.GlobalSample entries of t taken at
// random (Go's map iteration starts at a random place), as RedisRisk does
// with HRANDFIELD: an exact minimum would cost a scan of the whole table
// for every new value.
func evictSampled(t map[uint64]float64) {
	var minK uint64
	minW, n := math.Inf(1), 0
	for k, w := range t {
		if w < minW {
			minK, minW = k, w
		}
		if n++; n == risk.GlobalSample {
			break
		}
	}
	delete(t, minK)
}

// live returns the user's profile, or nil once it has expired (then
// dropped, as Redis would have); the caller holds the lock.
func (m *MemoryRisk) live(user string, now int64) *riskProfile {
	p := m.users[user]
	if p != nil && p.expires <= now {
		delete(m.users, user)
		return nil
	}
	return p
}

// sweep drops expired profiles and, if the map is still nearly full, the
// least recently updated half; it returns how many live ones went.
func (m *MemoryRisk) sweep(now int64) int {
	for u, p := range m.users {
		if p.expires <= now {
			delete(m.users, u)
		}
	}
	if len(m.users) <= m.maxUsers*9/10 {
		return 0
	}
	return evictLeastRecentHalf(m.users, func(p *riskProfile) uint64 { return p.seq })
}

// Len reports how many profiles are held, for tests and metrics.
func (m *MemoryRisk) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.users)
}

func (p *riskProfile) rebase(s float64) {
	for f := range p.tables {
		t := &p.tables[f]
		for i := range t.w {
			t.w[i] *= s
			t.aux[i] *= s
		}
		t.total *= s
		t.news *= s
	}
}

func (t *riskTable) index(k uint64) int {
	for i, key := range t.keys {
		if key == k {
			return i
		}
	}
	return -1
}

func (t *riskTable) get(k uint64) float64 {
	if i := t.index(k); i >= 0 {
		return t.w[i]
	}
	return 0
}

// add adds w to k's weight and reports whether k was new. A new value in
// a full table replaces the one with the lowest weight, the lowest key
// among equals (the order Redis's script uses too). The total keeps what
// evicted values had learned: p(x|u) stays a share of all the user's
// logins.
func (t *riskTable) add(k uint64, w float64, maxK int) bool {
	i := t.index(k)
	isNew := i < 0
	if isNew {
		if len(t.keys) >= maxK {
			i = t.lowest()
			t.keys[i], t.w[i], t.aux[i] = k, 0, 0
		} else {
			i = len(t.keys)
			t.keys, t.w, t.aux = append(t.keys, k), append(t.w, 0), append(t.aux, 0)
		}
		t.news += w
	}
	t.w[i] += w
	t.total += w
	return isNew
}

func (t *riskTable) lowest() int {
	low := 0
	for i := 1; i < len(t.keys); i++ {
		if t.w[i] < t.w[low] || t.w[i] == t.w[low] && t.keys[i] < t.keys[low] {
			low = i
		}
	}
	return low
}
