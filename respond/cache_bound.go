package respond

import (
	"slices"
	"strings"
	"time"
)

// The decision cache's bound: beyond it, automatic decisions ending
// soonest make room; manual ones never do.

// count is how many decisions of a kind the maps hold.
func (m *decisionMaps) count(kind Kind) int {
	switch kind {
	case Block:
		return len(m.addrs) + m.nets.Size()
	case Lock:
		return len(m.locks)
	case RevokeUser:
		return len(m.revUsers)
	case RevokeJTI:
		return len(m.revJTIs)
	}
	return 0
}

// each calls fn for every decision of a kind; fn must not change the maps.
func (m *decisionMaps) each(kind Kind, fn func(d Decision)) {
	var strs map[string]Decision
	switch kind {
	case Block:
		for _, d := range m.addrs {
			fn(d)
		}
		for _, d := range m.nets.All() {
			fn(d)
		}
		return
	case Lock:
		strs = m.locks
	case RevokeUser:
		strs = m.revUsers
	case RevokeJTI:
		strs = m.revJTIs
	}
	for _, d := range strs {
		fn(d)
	}
}

// settle keeps a kind within bound after decisions were added, evicting
// (see evict) and returning how many live decisions went. A pass that
// manual decisions keep above the bound (an operator imported more than it)
// records what it left, and the next pass waits until bound/16 more
// decisions have come: otherwise every later Set would pay a pass over the
// whole kind under the write lock, which requests wait on.
func (m *decisionMaps) settle(kind Kind, keep string, bound int, now time.Time) int {
	n := m.count(kind)
	if n <= bound {
		delete(m.settled, kind)
		return 0
	}
	if left, ok := m.settled[kind]; ok && n <= left+bound/16 {
		return 0
	}
	evicted := m.evict(kind, keep, bound, now)
	if left := m.count(kind); left > bound {
		m.settled[kind] = left
	} else {
		delete(m.settled, kind)
	}
	return evicted
}

// evict brings a kind over bound back under it: expired decisions first,
// then automatic ones, soonest to end first (they would be gone soonest
// anyway), down to 15/16 of bound so that the next decisions of a flood do
// not each pay for a pass over the map. The decision for target keep (the
// one just set: its map entry carries that very Target) and manual ones
// (Source "admin") stay, even over the bound: an operator's decisions are
// few and deliberate. It returns how many live decisions it evicted.
func (m *decisionMaps) evict(kind Kind, keep string, bound int, now time.Time) int {
	var ended, victims []Decision
	m.each(kind, func(d Decision) {
		switch {
		case !d.Active(now):
			ended = append(ended, d)
		case d.Source != "admin" && d.Target != keep:
			victims = append(victims, d)
		}
	})
	for _, d := range ended {
		m.remove(kind, d.Target)
	}
	target := bound - bound/16
	if m.count(kind) <= target {
		return 0
	}
	// by end, then target: no hashing per comparison, unlike sortDecisions
	slices.SortFunc(victims, func(a, b Decision) int {
		if c := a.Until.Compare(b.Until); c != 0 {
			return c
		}
		return strings.Compare(a.Target, b.Target)
	})
	evicted := 0
	for _, d := range victims {
		if m.count(kind) <= target {
			break
		}
		m.remove(kind, d.Target)
		evicted++
	}
	return evicted
}
