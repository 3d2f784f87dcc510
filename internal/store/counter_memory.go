package store

import (
	"context"
	"encoding/hex"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// MemoryCounter is the in-process detect.LoginCounter: the default store of
// a single instance and the fallback of the Redis store while Redis is
// unreachable.
//
// Its memory is bounded: a counter is keyed by the 16 bytes of its hash
// (not the 32-character text), holds at most detect.MaxWindowEntries
// entries of 16 bytes, and the counter holds at most maxKeys keys. Beyond
// that, counters whose windows have passed go first, then the least
// recently updated half: a flood of distinct attackers costs detection of
// the oldest ones, never unbounded memory. Each eviction is reported to
// onEvict.
type MemoryCounter struct {
	mu      sync.Mutex
	logs    map[counterKey]*timeLog    // account, address and pair failures
	sets    map[counterKey]*accountSet // the distinct accounts of an address
	maxAge  time.Duration              // longest window seen, for sweeping
	ops     int
	seq     uint64
	maxKeys int
	onEvict func(n int)
}

// counterKey is a counter's kind and its key's 16 bytes.
type counterKey [17]byte

// entry is one attempt in a log: its time and its sequence number, by
// which Release finds it.
type entry struct {
	t   int64 // unix nanos
	seq uint64
}

type timeLog struct {
	entries []entry // ascending times
	hold    int64   // unix nanos until which the counter is held full (Hold)
}

type accountSet struct {
	last   map[[16]byte]int64 // account -> last attempt
	newest int64
}

// maxCounterKeys bounds the counters held (logs and sets together).
const maxCounterKeys = 1_000_000

// NewMemoryCounter returns an empty counter; onEvict (may be nil) is told
// how many live counters were evicted to stay within the bound.
func NewMemoryCounter(onEvict func(n int)) *MemoryCounter {
	return &MemoryCounter{logs: map[counterKey]*timeLog{}, sets: map[counterKey]*accountSet{},
		maxKeys: maxCounterKeys, onEvict: onEvict}
}

// keyOf packs a counter's kind and HashID key. A key that is not a HashID
// (a caller's bug: every caller passes detect.HashID output) keeps its
// first bytes.
func keyOf(kind detect.CounterKind, key string) counterKey {
	var k counterKey
	switch kind {
	case detect.AccountCounter:
		k[0] = 1
	case detect.IPCounter:
		k[0] = 2
	case detect.PairCounter:
		k[0] = 3
	case detect.IPAccountsCount:
		k[0] = 4
	}
	if len(key) == 32 {
		if _, err := hex.Decode(k[1:], []byte(key)); err == nil {
			return k
		}
	}
	copy(k[1:], key)
	return k
}

// Reserve implements detect.LoginCounter.
func (m *MemoryCounter) Reserve(_ context.Context, k detect.LoginKeys, w detect.LoginWindows, now time.Time) (detect.Attempt, detect.LoginCounts, error) {
	t := now.UnixNano()
	m.mu.Lock()
	m.noteWindows(w)
	m.seq++
	seq := m.seq
	c := detect.LoginCounts{
		Account: m.add(keyOf(detect.AccountCounter, k.Account), entry{t, seq}, w.Account),
		IP:      m.add(keyOf(detect.IPCounter, k.IP), entry{t, seq}, w.IP),
		Pair:    m.add(keyOf(detect.PairCounter, k.Pair), entry{t, seq}, w.Pair),
	}
	c.AccountsFromIP = m.addAccount(keyOf(detect.IPAccountsCount, k.IP), k.AccountMember, t, w.Stuffing)
	evicted := m.maybeSweep(t)
	m.mu.Unlock()
	if evicted > 0 && m.onEvict != nil {
		m.onEvict(evicted)
	}
	return detect.Attempt{Keys: k, Seq: seq}, c, nil
}

// Release implements detect.LoginCounter.
func (m *MemoryCounter) Release(_ context.Context, a detect.Attempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, key := range []counterKey{
		keyOf(detect.AccountCounter, a.Keys.Account), keyOf(detect.IPCounter, a.Keys.IP), keyOf(detect.PairCounter, a.Keys.Pair),
	} {
		if l := m.logs[key]; l != nil {
			l.remove(a.Seq)
		}
	}
	return nil
}

// RecordSuccess implements detect.LoginCounter. An active hold stays: a
// success in flight when the account was locked does not unlock it.
func (m *MemoryCounter) RecordSuccess(_ context.Context, a detect.Attempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.logs[keyOf(detect.IPCounter, a.Keys.IP)]; l != nil {
		l.remove(a.Seq)
	}
	for _, key := range []counterKey{keyOf(detect.AccountCounter, a.Keys.Account), keyOf(detect.PairCounter, a.Keys.Pair)} {
		if l := m.logs[key]; l != nil && l.hold != 0 {
			l.entries = l.entries[:0]
			continue
		}
		delete(m.logs, key)
	}
	return nil
}

// Hold implements detect.LoginCounter.
func (m *MemoryCounter) Hold(_ context.Context, kind detect.CounterKind, key string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs[keyOf(kind, key)] = &timeLog{hold: until.UnixNano()}
	return nil
}

// Forget implements detect.LoginCounter.
func (m *MemoryCounter) Forget(_ context.Context, kind detect.CounterKind, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logs, keyOf(kind, key))
	delete(m.sets, keyOf(kind, key))
	return nil
}

// Len reports how many counters are held, for tests and metrics.
func (m *MemoryCounter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.logs) + len(m.sets)
}

func (m *MemoryCounter) noteWindows(w detect.LoginWindows) {
	m.maxAge = max(m.maxAge, w.Account, w.IP, w.Pair, w.Stuffing)
}

func (m *MemoryCounter) add(key counterKey, e entry, window time.Duration) int {
	if window <= 0 {
		return 0
	}
	l := m.logs[key]
	if l == nil {
		l = &timeLog{}
		m.logs[key] = l
	}
	if l.hold > e.t {
		return detect.MaxWindowEntries + 1
	}
	l.hold = 0
	l.entries = append(l.entries, e)
	l.trim(e.t - int64(window))
	return len(l.entries)
}

func (l *timeLog) trim(cutoff int64) {
	drop := 0
	for drop < len(l.entries) && l.entries[drop].t <= cutoff {
		drop++
	}
	if extra := len(l.entries) - drop - detect.MaxWindowEntries; extra > 0 {
		drop += extra
	}
	if drop > 0 {
		l.entries = append(l.entries[:0], l.entries[drop:]...)
	}
}

func (l *timeLog) remove(seq uint64) {
	for i, e := range l.entries {
		if e.seq == seq {
			l.entries = append(l.entries[:i], l.entries[i+1:]...)
			return
		}
	}
}

// newest is the log's last change, for sweeping: a hold counts until it ends.
func (l *timeLog) newest() int64 {
	n := l.hold
	if len(l.entries) > 0 {
		n = max(n, l.entries[len(l.entries)-1].t)
	}
	return n
}

func (m *MemoryCounter) addAccount(key counterKey, member string, t int64, window time.Duration) int {
	if window <= 0 {
		return 0
	}
	s := m.sets[key]
	if s == nil {
		s = &accountSet{last: map[[16]byte]int64{}}
		m.sets[key] = s
	}
	var acct [16]byte
	if _, err := hex.Decode(acct[:], []byte(member)); err != nil {
		copy(acct[:], member)
	}
	s.last[acct] = t
	s.newest = t
	cutoff := t - int64(window)
	for a, last := range s.last {
		if last <= cutoff {
			delete(s.last, a)
		}
	}
	for len(s.last) > detect.MaxWindowEntries {
		oldestKey, oldest := [16]byte{}, int64(1<<63-1)
		for a, last := range s.last {
			if last < oldest {
				oldestKey, oldest = a, last
			}
		}
		delete(s.last, oldestKey)
	}
	return len(s.last)
}

// maybeSweep drops stale counters every 4096 operations, and when the
// bound is passed, the least recently updated half of the rest too. It
// returns how many live counters it evicted. The caller holds the lock.
func (m *MemoryCounter) maybeSweep(now int64) int {
	m.ops++
	n := len(m.logs) + len(m.sets)
	full := n > m.maxKeys
	// a sweep walks every counter: spacing sweeps in proportion to their
	// number keeps their cost per operation constant
	if !full && m.ops < max(4096, n/4) {
		return 0
	}
	m.ops = 0
	cutoff := now - int64(m.maxAge)
	for k, l := range m.logs {
		if l.newest() <= cutoff {
			delete(m.logs, k)
		}
	}
	for k, s := range m.sets {
		if s.newest <= cutoff {
			delete(m.sets, k)
		}
	}
	if !full || len(m.logs)+len(m.sets) <= m.maxKeys*9/10 {
		return 0
	}
	// still nearly full of live counters: drop the older half rather than
	// grow (stopping just below the bound would sweep again on every new key)
	var lo, hi int64 = 1<<63 - 1, 0
	for _, l := range m.logs {
		lo, hi = min(lo, l.newest()), max(hi, l.newest())
	}
	for _, s := range m.sets {
		lo, hi = min(lo, s.newest), max(hi, s.newest)
	}
	mid, evicted := lo+(hi-lo)/2, 0
	for k, l := range m.logs {
		if l.newest() <= mid {
			delete(m.logs, k)
			evicted++
		}
	}
	for k, s := range m.sets {
		if s.newest <= mid {
			delete(m.sets, k)
			evicted++
		}
	}
	return evicted
}
