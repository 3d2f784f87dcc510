package caddymodule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/respond/alert"
)

// Alert delivery metrics, labelled by channel type (webhook, slack, email,
// pagerduty) only: never a URL, an address or a user.
var (
	alertsSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "alerts_sent_total",
		Help: "Alerts delivered, by channel type.",
	}, []string{"channel"})
	alertsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "alerts_failed_total",
		Help: "Failed alert delivery attempts (each retry counts), by channel type.",
	}, []string{"channel"})
	alertsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Name: "alerts_dropped_total",
		Help: "Alerts not sent, by channel type and reason: duplicate and throttled (counted in a digest), " +
			"queue_full, expired (max_age), rejected (4xx), gone (410), disabled, outbox_unavailable, shutdown, orphaned.",
	}, []string{"channel", "reason"})
	alertQueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "vigil", Name: "alert_queue_depth",
		Help: "Alerts waiting in the outbox (including those waiting to be retried), by channel type.",
	}, []string{"channel"})
	alertDelivery = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "vigil", Name: "alert_delivery_seconds",
		Help:    "Time from an alert being queued to its delivery, retries included, by channel type.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000, 86400},
	}, []string{"channel"})
)

func init() {
	addCollectors(alertsSent, alertsFailed, alertsDropped, alertQueueDepth, alertDelivery)
}

// alertHooks feed the collectors from the dispatcher.
func alertHooks() alert.Hooks {
	return alert.Hooks{
		Sent: func(kind string, latency time.Duration) {
			alertsSent.WithLabelValues(kind).Inc()
			alertDelivery.WithLabelValues(kind).Observe(latency.Seconds())
		},
		Failed:  func(kind string) { alertsFailed.WithLabelValues(kind).Inc() },
		Dropped: func(kind, reason string) { alertsDropped.WithLabelValues(kind, reason).Inc() },
		Depth:   func(kind string, n int) { alertQueueDepth.WithLabelValues(kind).Set(float64(n)) },
	}
}
