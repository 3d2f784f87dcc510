package caddymodule

import (
	"github.com/vigilsec/vigil/detect"
)

// countEvent is the metrics sink: events by type and severity, and the
// counters that follow one event type (intrusions by kind, permission
// violations by source, session revocations by source). It runs on the
// publishing goroutine: a counter increment never waits.
func countEvent(e detect.Event) {
	eventsTotal.WithLabelValues(string(e.Type), e.Severity.String()).Inc()
	label := func(key string) (string, bool) {
		v, ok := e.Details[key].(string)
		return v, ok
	}
	switch e.Type {
	case detect.SystemIntrusion:
		if kind, ok := label("kind"); ok {
			intrusionsTotal.WithLabelValues(kind).Inc()
		}
	case detect.PermissionViolation:
		if source, ok := label("source"); ok {
			permissionViolations.WithLabelValues(source).Inc()
		}
	case detect.SessionRevoked:
		// a refusal of a revoked session carries no source: it is not a
		// new revocation
		if source, ok := label("source"); ok {
			revocationsTotal.WithLabelValues(source).Inc()
		}
	}
}

// eventsDroppedBy is the drop counter of one sink.
func eventsDroppedBy(sink string) func() {
	c := eventsDropped.WithLabelValues(sink)
	return c.Inc
}

// evictionsOf counts the evictions of one bounded structure.
func evictionsOf(state string) func(n int) {
	c := stateEvictions.WithLabelValues(state)
	return func(n int) { c.Add(float64(n)) }
}
