package alert

import (
	"time"

	"github.com/vigilsec/vigil/detect"
)

// window is one channel's throttle window and what it held back. Only the
// dispatcher's router goroutine touches it.
type window struct {
	start time.Time // zero when no window is open
	sent  int
	held  int
	// by reason (duplicate, throttled) and by event type
	reasons map[string]int
	types   map[detect.Type]int
	maxSev  detect.Severity
	first   time.Time
	last    time.Time
}

// admit opens a window if none is, and reports whether one more alert may
// be sent in it.
func (w *window) admit(now time.Time, p Policy) bool {
	if w.start.IsZero() {
		w.start = now
	}
	if p.Throttle > 0 && w.sent >= p.Throttle {
		return false
	}
	w.sent++
	return true
}

// hold counts an alert that is not sent.
func (w *window) hold(a Alert, reason string, now time.Time) {
	if w.start.IsZero() {
		w.start = now
	}
	if w.reasons == nil {
		w.reasons, w.types = map[string]int{}, map[detect.Type]int{}
	}
	if w.held == 0 {
		w.first = a.Time
	}
	w.held++
	w.reasons[reason]++
	w.types[a.Type]++
	w.maxSev = max(w.maxSev, a.Severity)
	w.last = a.Time
}

// due reports whether the window has run its length.
func (w *window) due(now time.Time, p Policy) bool {
	return !w.start.IsZero() && !now.Before(w.start.Add(p.ThrottleWindow))
}

// close ends the window and returns the digest of what it held back, if
// anything.
func (w *window) close(now time.Time, channel string) (Alert, bool) {
	defer func() { *w = window{} }()
	if w.held == 0 {
		return Alert{}, false
	}
	types := make(map[string]int, len(w.types))
	for t, n := range w.types {
		types[string(t)] = n
	}
	reasons := make(map[string]int, len(w.reasons))
	for r, n := range w.reasons {
		reasons[r] = n
	}
	return Alert{
		DedupKey: "vigil-digest-" + channel,
		Event: detect.Event{ID: detect.NewID(), Type: DigestType, Severity: w.maxSev, Time: now.UTC(), Details: map[string]any{
			"suppressed":   w.held,
			"sent":         w.sent,
			"by_reason":    reasons,
			"by_type":      types,
			"window_start": w.start.UTC(),
			"window_end":   now.UTC(),
			"first_event":  w.first.UTC(),
			"last_event":   w.last.UTC(),
		}},
	}, true
}
