package alert

import (
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Throttle windows and digests are kept per event type and severity on each
// channel. A channel-wide window let a run of FAILED_LOGIN use up the
// throttle, and the ACCOUNT_LOCKED that followed — the alert a responder
// needs — went into a digest. With one window per (type, severity), noise
// of one type never delays or folds an alert of another type or severity.

// winKey names one window of a channel.
type winKey struct {
	typ detect.Type // "" for the overflow window of a severity
	sev detect.Severity
}

const (
	// maxWindows bounds the windows a channel keeps open (there are 14
	// event types × 4 severities). Pairs beyond it share one overflow
	// window per severity, so even an unexpected flood of new types cannot
	// fold one severity into another. Windows are dropped when they end.
	maxWindows = 64
	// maxDigestIDs bounds the event IDs one window remembers for its
	// digest; the rest are only counted (event_ids_omitted).
	maxDigestIDs = 1000
	// digestPartIDs is how many IDs one digest carries: 400 IDs of 32 hex
	// digits keep a digest well inside MaxBody, so the list is never cut
	// by the body bound. A window that held more sends several digests,
	// each describing its own share.
	digestPartIDs = 400
)

const (
	reasonThrottled = "throttled"
	reasonDuplicate = "duplicate"
)

// windowFor returns the open window for alerts like a, opening one if
// needed. Only the router goroutine calls it.
func (r *route) windowFor(a Alert) *window {
	k := winKey{a.Type, a.Severity}
	if w := r.wins[k]; w != nil {
		return w
	}
	if len(r.wins) >= maxWindows {
		k.typ = ""
		if w := r.wins[k]; w != nil {
			return w
		}
	}
	w := &window{}
	r.wins[k] = w
	return w
}

// window is one (type, severity) throttle window of a channel and what it
// held back. Only the dispatcher's router goroutine touches it.
type window struct {
	start time.Time // when the window opened
	sent  int
	held  []heldAlert // the first maxDigestIDs held back, in order
	// beyond maxDigestIDs: only counted
	omitted        int
	omittedReasons map[string]int
	omittedTypes   map[detect.Type]int
	first, last    time.Time // event times of the first and last held back
}

type heldAlert struct {
	id     string
	typ    detect.Type
	reason string
}

// admit opens the window if it is new and reports whether one more alert
// may be sent in it; limit < 0: no throttle.
func (w *window) admit(now time.Time, limit int) bool {
	if w.start.IsZero() {
		w.start = now
	}
	if limit >= 0 && w.sent >= limit {
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
	if len(w.held) == 0 && w.omitted == 0 {
		w.first = a.Time
	}
	w.last = a.Time
	if len(w.held) < maxDigestIDs {
		w.held = append(w.held, heldAlert{a.ID, a.Type, reason})
		return
	}
	if w.omittedReasons == nil {
		w.omittedReasons, w.omittedTypes = map[string]int{}, map[detect.Type]int{}
	}
	w.omitted++
	w.omittedReasons[reason]++
	w.omittedTypes[a.Type]++
}

// due reports whether the window has run its length.
func (w *window) due(now time.Time, p Policy) bool {
	return !now.Before(w.start.Add(p.ThrottleWindow))
}

// digests ends the window: the digests of what it held back (none when it
// held nothing). Each digest is self-contained — its suppressed, by_reason
// and by_type describe its own event_ids (the last one also the omitted) —
// so that summing suppressed over digests still gives every alert held
// back exactly once.
func (w *window) digests(now time.Time, channel string, k winKey) []Alert {
	if len(w.held) == 0 {
		return nil
	}
	parts := (len(w.held) + digestPartIDs - 1) / digestPartIDs
	out := make([]Alert, 0, parts)
	for i := range parts {
		chunk := w.held[i*digestPartIDs : min((i+1)*digestPartIDs, len(w.held))]
		ids := make([]string, len(chunk))
		reasons, types := map[string]int{}, map[string]int{}
		for j, h := range chunk {
			ids[j] = h.id
			reasons[h.reason]++
			types[string(h.typ)]++
		}
		omitted := 0
		if i == parts-1 {
			omitted = w.omitted
			for r, n := range w.omittedReasons {
				reasons[r] += n
			}
			for t, n := range w.omittedTypes {
				types[string(t)] += n
			}
		}
		out = append(out, Alert{
			DedupKey: digestKey(channel, k),
			Event: detect.Event{ID: detect.NewID(), Type: DigestType, Severity: k.sev, Time: now.UTC(), Details: map[string]any{
				"suppressed":        len(chunk) + omitted,
				"sent":              w.sent,
				"by_reason":         reasons,
				"by_type":           types,
				"window_start":      w.start.UTC(),
				"window_end":        now.UTC(),
				"first_event":       w.first.UTC(),
				"last_event":        w.last.UTC(),
				"event_ids":         ids,
				"event_ids_omitted": omitted,
				"part":              i + 1,
				"parts":             parts,
			}},
		})
	}
	return out
}

// digestKey groups the digests of one channel, type and severity, so a
// receiver that folds by dedup_key (PagerDuty) never folds a CRITICAL
// digest into a LOW one.
func digestKey(channel string, k winKey) string {
	typ := string(k.typ)
	if typ == "" {
		typ = "OTHER"
	}
	return "vigil-digest-" + channel + "-" + cut(typ, 64) + "-" + k.sev.String()
}
