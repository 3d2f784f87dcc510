package respond

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// EventLog keeps the security events for investigation.
type EventLog interface {
	// Append queues an event for storage. It never blocks the caller on the
	// network; when the queue is full the event is dropped and counted.
	Append(e detect.Event)
	// Query returns the newest events matching f, newest first.
	Query(ctx context.Context, f EventFilter) (EventPage, error)
	// Tail returns up to max events appended after cursor, oldest first,
	// and the cursor to continue from; with none yet it waits for one
	// until ctx ends (then it returns no events, the same cursor and no
	// error). An empty cursor means "from now": the call returns at once
	// with the cursor of the log's end. With Redis, events appended by
	// every instance are tailed.
	Tail(ctx context.Context, cursor string, max int) ([]detect.Event, string, error)
}

// EventFilter selects events for an investigation query. Zero fields match
// everything.
type EventFilter struct {
	Types       []detect.Type
	User        string
	IP          string
	MinSeverity detect.Severity
	Since       time.Time
	Until       time.Time
	Limit       int    // default 100, at most 1000
	Cursor      string // from a previous page's Next
}

// Match reports whether e passes the filter (the cursor aside).
func (f EventFilter) Match(e detect.Event) bool {
	if len(f.Types) > 0 {
		found := false
		for _, t := range f.Types {
			if e.Type == t {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if f.User != "" && detect.NormalizeUser(e.User) != detect.NormalizeUser(f.User) {
		return false
	}
	if f.IP != "" && e.IP != f.IP {
		return false
	}
	if e.Severity < f.MinSeverity {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	return true
}

// PageLimit is the page size a filter asks for, within bounds.
func (f EventFilter) PageLimit() int {
	switch {
	case f.Limit <= 0:
		return 100
	case f.Limit > 1000:
		return 1000
	}
	return f.Limit
}

// EventPage is one page of a query; Next is empty on the last page.
type EventPage struct {
	Events []detect.Event `json:"events"`
	Next   string         `json:"next,omitempty"`
}

// MemoryEvents is a bounded ring of the newest events, the event log of the
// memory store.
type MemoryEvents struct {
	mu   sync.Mutex
	ring []detect.Event
	seq  uint64        // sequence number of the next event
	wake chan struct{} // closed by the next Append; nil when nobody tails
}

// NewMemoryEvents keeps the newest capacity events.
func NewMemoryEvents(capacity int) *MemoryEvents {
	if capacity <= 0 {
		capacity = 10000
	}
	return &MemoryEvents{ring: make([]detect.Event, capacity)}
}

// Append implements EventLog.
func (m *MemoryEvents) Append(e detect.Event) {
	m.mu.Lock()
	m.ring[m.seq%uint64(len(m.ring))] = e
	m.seq++
	if m.wake != nil {
		close(m.wake)
		m.wake = nil
	}
	m.mu.Unlock()
}

// Query implements EventLog. The cursor is the sequence number to continue
// below.
func (m *MemoryEvents) Query(_ context.Context, f EventFilter) (EventPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := m.seq
	if f.Cursor != "" {
		c, err := strconv.ParseUint(f.Cursor, 10, 64)
		if err != nil {
			return EventPage{}, fmt.Errorf("invalid cursor %q", f.Cursor)
		}
		start = min(c, m.seq)
	}
	oldest := m.oldest()
	limit := f.PageLimit()
	var page EventPage
	for s := start; s > oldest; s-- {
		e := m.ring[(s-1)%uint64(len(m.ring))]
		if !f.Match(e) {
			continue
		}
		if len(page.Events) == limit {
			page.Next = strconv.FormatUint(s, 10)
			break
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}
