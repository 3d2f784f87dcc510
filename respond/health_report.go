package respond

import "time"

// HealthReport is the answer of GET /vigil/health, which `caddy vigil
// status` prints.
type HealthReport struct {
	// Status is "ok", "recovering" (the store answers again; the shared
	// state is taken up at the next operation or resync, within seconds),
	// "failing_open" or "failing_closed".
	Status  string       `json:"status"`
	Message string       `json:"message"`
	Store   StoreHealth  `json:"store"`
	Queues  QueuesHealth `json:"queues"`
}

// StoreHealth is the store part of a HealthReport.
type StoreHealth struct {
	Type    string `json:"type"`              // memory or redis
	Address string `json:"address,omitempty"` // host:port list, never credentials
	// Reachable: a PING answered within the health check's timeout just now.
	Reachable bool    `json:"reachable"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
	// FallbackActive: Vigil is counting logins locally and enforcing from
	// its local decision cache, as it does from the first failed operation
	// until the next one that succeeds.
	FallbackActive bool       `json:"fallback_active"`
	FailMode       string     `json:"fail_mode"`
	DownSince      *time.Time `json:"down_since,omitempty"`
	// LastResync is the last full reload of the decisions from Redis
	// (every few seconds while it answers); absent for memory and until
	// the first one this process saw.
	LastResync *time.Time `json:"last_resync,omitempty"`
}

// QueuesHealth is what waits in memory, part of a HealthReport.
type QueuesHealth struct {
	Events int `json:"events"` // events queued for the store's event log
	Log    int `json:"log"`    // events queued for Caddy's log
	// Alerts are the alerts waiting in the outbox (retries included), by
	// channel type.
	Alerts map[string]int `json:"alerts"`
}
