package caddymodule

import "github.com/prometheus/client_golang/prometheus"

// Collectors of sessions, permission violations and intrusion probes. As
// everywhere in Vigil, no label carries an address, a user or a token.
var (
	sessionVerifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "session_verifications_total",
		Help: "Session tokens examined, by result (verified, cached, invalid, revoked, missing).",
	}, []string{"result"})
	revocationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "session_revocations_total",
		Help: "Session revocations made, by source (admin, auto).",
	}, []string{"source"})
	permissionViolations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "permission_violations_total",
		Help: "Permission violations, by source (gateway: a restrict rule refused; upstream: the app answered 401/403 to a verified user).",
	}, []string{"source"})
	intrusionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "intrusions_total",
		Help: "Intrusion probes detected, by kind (honeypot, scan, sensitive_file, signature, scanner_agent, admin_probe, cve_probe, wordpress_scan).",
	}, []string{"kind"})
	backgroundDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "vigil", Name: "background_dropped_total",
		Help: "Response observations (4xx counting, upstream violations) dropped because too many were in flight.",
	})
)

// Pre-resolved children for the per-request results.
var (
	verifiedFresh   = sessionVerifications.WithLabelValues("verified")
	verifiedCached  = sessionVerifications.WithLabelValues("cached")
	verifiedInvalid = sessionVerifications.WithLabelValues("invalid")
	verifiedRevoked = sessionVerifications.WithLabelValues("revoked")
	verifiedMissing = sessionVerifications.WithLabelValues("missing")
	durationSession = handlerDuration.WithLabelValues("session")
)

func init() {
	addCollectors(sessionVerifications, revocationsTotal, permissionViolations, intrusionsTotal, backgroundDropped)
}
