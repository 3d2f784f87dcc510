package caddymodule

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	dto "github.com/prometheus/client_model/go"
)

// healthReport is the answer of GET /vigil/health and `caddy vigil status`.
type healthReport struct {
	// Status is "ok", "recovering" (the store answers again; the shared
	// state is taken up at the next operation or resync, within seconds),
	// "failing_open" or "failing_closed".
	Status  string       `json:"status"`
	Message string       `json:"message"`
	Store   storeHealth  `json:"store"`
	Queues  queuesHealth `json:"queues"`
}

type storeHealth struct {
	Type    string `json:"type"`              // memory or redis
	Address string `json:"address,omitempty"` // host:port list, never credentials
	// Reachable: a PING answered within pingTimeout just now.
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

type queuesHealth struct {
	Events int `json:"events"` // events queued for the store's event log
	Log    int `json:"log"`    // events queued for Caddy's log
	// Alerts are the alerts waiting in the outbox (retries included), by
	// channel type.
	Alerts map[string]int `json:"alerts"`
}

// pingTimeout bounds the health check's PING: a dead server must not hold
// a load balancer's probe for the client's dial timeout.
const pingTimeout = 500 * time.Millisecond

func (a *adminAPI) handleHealth(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	return serveHealth(w, r, app)
}

// serveHealth answers a health check for app.
func serveHealth(w http.ResponseWriter, r *http.Request, app *App) error {
	rep := app.health(r.Context())
	status := http.StatusOK
	if !rep.Store.Reachable {
		// a readiness probe takes this instance out while it cannot share
		// state; it still serves (fail_mode says how) if traffic comes
		status = http.StatusServiceUnavailable
	}
	return writeJSON(w, status, rep)
}

// health checks the store now and reads the queues.
func (a *App) health(ctx context.Context) healthReport {
	st := a.store()
	typ, addr := a.storeSummary()
	h := storeHealth{Type: typ, Address: addr, FailMode: a.failMode()}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	latency, err := st.Ping(pctx)
	cancel()
	h.Reachable, h.LatencyMS = err == nil, float64(latency.Microseconds())/1000
	if err != nil {
		h.Error = err.Error()
	}
	h.FallbackActive = !st.Healthy()
	downSince, lastResync := a.watchOf().state()
	if !downSince.IsZero() {
		h.DownSince = &downSince
	}
	if !lastResync.IsZero() {
		h.LastResync = &lastResync
	}
	rep := healthReport{Store: h, Queues: queuesHealth{Events: st.EventsPending(), Alerts: a.alertDepths()}}
	if a.logSink != nil {
		rep.Queues.Log = a.logSink.Depth()
	}
	switch {
	case h.Reachable && !h.FallbackActive:
		rep.Status, rep.Message = "ok", "vigil store reachable"
	case h.Reachable:
		rep.Status, rep.Message = "recovering", "vigil store answers again; shared counters and decisions resume at the next operation or resync"
	case a.FailMode == "closed":
		rep.Status, rep.Message = "failing_closed", msgStoreDownClosed
	default:
		rep.Status, rep.Message = "failing_open", msgStoreDownOpen
	}
	return rep
}

// alertDepths reads the outbox depth of each channel type this config
// delivers to from the alert_queue_depth gauge, which the dispatcher keeps
// current: the dispatcher has no other exported way to ask.
func (a *App) alertDepths() map[string]int {
	out := map[string]int{}
	for _, c := range a.Alerts {
		if _, seen := out[c.Type]; seen {
			continue
		}
		var m dto.Metric
		if alertQueueDepth.WithLabelValues(c.Type).Write(&m) == nil {
			out[c.Type] = int(m.GetGauge().GetValue())
		}
	}
	return out
}

// storeSummary is the store's type and where it is, for logs and the health
// report. It reads the config itself rather than the resolved store config,
// which also resolves secrets this has no use for.
func (a *App) storeSummary() (typ, addr string) {
	s := StoreConfig{}
	if a.Store != nil {
		s = *a.Store
	}
	if s.Type == "" {
		s.Type = "memory"
	}
	s.URL = caddy.NewReplacer().ReplaceAll(s.URL, "")
	return s.Type, storeAddress(s)
}

// storeAddress names where the store is, for logs and the health report:
// the addresses, a URL's host (or socket path), never a password.
func storeAddress(cfg StoreConfig) string {
	if cfg.Type != "redis" {
		return ""
	}
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		switch {
		case err != nil:
			return "(unparsable URL)"
		case u.Host != "":
			return u.Host
		default:
			return u.Path
		}
	}
	s := strings.Join(cfg.Addrs, ",")
	if cfg.Sentinel != "" {
		s = "sentinel " + cfg.Sentinel + " via " + s
	}
	return s
}
