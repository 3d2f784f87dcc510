package store

import (
	"context"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// MemoryCounter is the in-process detect.LoginCounter: the default store of a single
// instance and the fallback of the Redis store while Redis is unreachable.
type MemoryCounter struct {
	mu     sync.Mutex
	logs   map[string]*timeLog   // detect.CounterKind:key -> failure times
	sets   map[string]*memberSet // detect.IPAccountsCount:key -> account -> last time
	maxAge time.Duration         // longest window seen, for sweeping
	ops    int
}

type timeLog struct{ times []int64 } // ascending unix nanos

type memberSet struct {
	last   map[string]int64
	newest int64
}

// NewMemoryCounter returns an empty counter.
func NewMemoryCounter() *MemoryCounter {
	return &MemoryCounter{logs: map[string]*timeLog{}, sets: map[string]*memberSet{}}
}

// RecordFailure implements detect.LoginCounter.
func (m *MemoryCounter) RecordFailure(_ context.Context, k detect.LoginKeys, w detect.LoginWindows, now time.Time) (detect.LoginCounts, error) {
	t := now.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noteWindows(w)
	c := detect.LoginCounts{
		Account: m.add(string(detect.AccountCounter)+":"+k.Account, t, w.Account),
		IP:      m.add(string(detect.IPCounter)+":"+k.IP, t, w.IP),
		Pair:    m.add(string(detect.PairCounter)+":"+k.Pair, t, w.Pair),
	}
	c.AccountsFromIP = m.addMember(string(detect.IPAccountsCount)+":"+k.IP, k.AccountMember, t, w.Stuffing)
	m.ops++
	if m.ops%4096 == 0 {
		m.sweep(t)
	}
	return c, nil
}

// RecordSuccess implements detect.LoginCounter.
func (m *MemoryCounter) RecordSuccess(_ context.Context, k detect.LoginKeys) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logs, string(detect.AccountCounter)+":"+k.Account)
	delete(m.logs, string(detect.PairCounter)+":"+k.Pair)
	return nil
}

// Forget implements detect.LoginCounter.
func (m *MemoryCounter) Forget(_ context.Context, kind detect.CounterKind, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logs, string(kind)+":"+key)
	delete(m.sets, string(kind)+":"+key)
	return nil
}

// Len reports how many counters are held, for tests and metrics.
func (m *MemoryCounter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.logs) + len(m.sets)
}

func (m *MemoryCounter) noteWindows(w detect.LoginWindows) {
	for _, d := range []time.Duration{w.Account, w.IP, w.Pair, w.Stuffing} {
		if d > m.maxAge {
			m.maxAge = d
		}
	}
}

func (m *MemoryCounter) add(key string, t int64, window time.Duration) int {
	if window <= 0 {
		return 0
	}
	l := m.logs[key]
	if l == nil {
		l = &timeLog{}
		m.logs[key] = l
	}
	l.times = append(l.times, t)
	l.trim(t - int64(window))
	return len(l.times)
}

func (l *timeLog) trim(cutoff int64) {
	drop := 0
	for drop < len(l.times) && l.times[drop] <= cutoff {
		drop++
	}
	if extra := len(l.times) - drop - detect.MaxWindowEntries; extra > 0 {
		drop += extra
	}
	if drop > 0 {
		l.times = append(l.times[:0], l.times[drop:]...)
	}
}

func (m *MemoryCounter) addMember(key, member string, t int64, window time.Duration) int {
	if window <= 0 {
		return 0
	}
	s := m.sets[key]
	if s == nil {
		s = &memberSet{last: map[string]int64{}}
		m.sets[key] = s
	}
	return s.add(member, t, window)
}

// sweep drops counters whose newest entry is older than every window, so
// one-off visitors do not accumulate.
func (m *MemoryCounter) sweep(now int64) {
	cutoff := now - int64(m.maxAge)
	for k, l := range m.logs {
		if len(l.times) == 0 || l.times[len(l.times)-1] <= cutoff {
			delete(m.logs, k)
		}
	}
	for k, s := range m.sets {
		if s.newest <= cutoff {
			delete(m.sets, k)
		}
	}
}
