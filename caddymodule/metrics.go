package caddymodule

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors are created once per process and registered into each config's
// registry, so counters keep counting across reloads (caddy-ratelimit #100).
// No label ever carries an IP, a user or a token.
var (
	loginAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "login_attempts_total",
		Help: "Login attempts seen on configured login routes, by outcome (success, failure, refused).",
	}, []string{"outcome"})
	eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "events_total",
		Help: "Security events recorded, by type and severity.",
	}, []string{"type", "severity"})
	eventsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "events_dropped_total",
		Help: "Security events a sink dropped, by sink: store (the event log's queue was full or the store refused them), log (the log queue was full).",
	}, []string{"sink"})
	stateEvictions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "state_evictions_total",
		Help: "Live entries of in-memory state evicted to stay within their bound, by state (counters, windows, buckets, sums, profiles, risk, distinct, decisions, strikes, pending, verify_cache, agents; see docs/bounds.md).",
	}, []string{"state"})
	enforcedRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "enforced_requests_total",
		Help: "Requests refused at the gateway, by action (block, lock, store_down, bad_login, intrusion, restricted, revoked, session_required, session_invalid, risk_block).",
	}, []string{"action"})
	activeDecisions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "vigil", Name: "active_decisions",
		Help: "Enforcement decisions in force in this instance's decision cache, by kind.",
	}, []string{"kind"})
	storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "store_errors_total",
		Help: "Failed operations against the shared store, by operation.",
	}, []string{"op"})
	handlerDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "vigil", Name: "handler_duration_seconds",
		Help:    "Time Vigil itself spends on a request (upstream time excluded), by request kind (login, session, other).",
		Buckets: []float64{1e-6, 2e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025},
	}, []string{"kind"})
)

// collectors is every Vigil collector; files that define more add theirs
// with addCollectors from an init function.
var collectors = []prometheus.Collector{
	loginAttempts, eventsTotal, eventsDropped, enforcedRequests,
	activeDecisions, storeErrors, handlerDuration, stateEvictions,
}

func addCollectors(cs ...prometheus.Collector) { collectors = append(collectors, cs...) }

// Pre-resolved children keep label lookups off the request path.
var (
	durationOther = handlerDuration.WithLabelValues("other")
	durationLogin = handlerDuration.WithLabelValues("login")
)

// registerMetrics adds Vigil's collectors to a config's registry; a
// collector already there (a reload reusing the registry) is fine.
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
