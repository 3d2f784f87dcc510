package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/internal/store"
	"github.com/vigilsec/vigil/respond"
)

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
func (a *App) health(ctx context.Context) respond.HealthReport {
	st := a.store()
	typ, addr := a.storeSummary()
	h := respond.StoreHealth{Type: typ, Address: addr, FailMode: a.failMode()}
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
	rep := respond.HealthReport{Store: h, Queues: respond.QueuesHealth{Events: st.EventsPending(), Alerts: a.alertDepths()}}
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

// The store's health in the log: one WARN when the shared store becomes
// unreachable, saying what Vigil does meanwhile, and one INFO when it
// answers again. The store is shared by the configs that use it and
// outlives them (see statePool), so the store's health hook is installed
// once per store and speaks through the newest running config's logger.
// There is no goroutine: the fallback counter reports transitions as it
// notices them, on a failed operation or a decisions resync.

// The log messages, also what operators grep for.
const (
	msgStoreDownOpen   = "vigil store unreachable: failing open (logins counted locally, decisions enforced from the local cache)"
	msgStoreDownClosed = "vigil store unreachable: failing closed: logins refused (503) until it answers"
	msgStoreUp         = "vigil store reachable again: counters and decisions shared again"
)

// storeWatch follows the health of one shared store.
type storeWatch struct {
	counter *store.FallbackCounter

	mu         sync.Mutex
	apps       []*App // started configs on this store, oldest first; the newest speaks
	down       bool   // the state last logged
	downSince  time.Time
	lastResync time.Time // the last outside check that found the store answering
}

// storeWatches holds a watch per Redis store in use by a running config.
var storeWatches = struct {
	sync.Mutex
	m map[*respond.Store]*storeWatch
}{m: map[*respond.Store]*storeWatch{}}

// watchStore makes this config the voice of its store's health, and logs
// an outage already under way when the store was not watched yet (Redis
// down at start: the store noticed before any config could listen). Called
// from Start, so a config that is only validated never logs.
func (a *App) watchStore() {
	st := a.store()
	counter := st.Fallback()
	if counter == nil {
		return // memory: always healthy
	}
	// the registry stays locked until this config is on the watch, so a
	// config leaving at the same time cannot remove the watch under it
	storeWatches.Lock()
	defer storeWatches.Unlock()
	w, existing := storeWatches.m[st]
	if !existing {
		w = &storeWatch{counter: counter}
		storeWatches.m[st] = w
		counter.SetHealthHook(&store.HealthHook{Changed: w.changed, Checked: w.checked})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.apps = append(w.apps, a)
	if !existing {
		w.reportLocked(nil)
	}
}

// unwatchStore takes this config off its store's watch (Cleanup); the last
// config to leave removes the hook.
func (a *App) unwatchStore() {
	if a.state == nil {
		return
	}
	st := a.store()
	storeWatches.Lock()
	defer storeWatches.Unlock()
	w := storeWatches.m[st]
	if w == nil {
		return
	}
	w.mu.Lock()
	for i, other := range w.apps {
		if other == a {
			w.apps = append(w.apps[:i], w.apps[i+1:]...)
			break
		}
	}
	empty := len(w.apps) == 0
	w.mu.Unlock()
	if empty {
		w.counter.SetHealthHook(nil)
		delete(storeWatches.m, st)
	}
}

// watchOf is the watch of a config's store, nil when there is none.
func (a *App) watchOf() *storeWatch {
	storeWatches.Lock()
	defer storeWatches.Unlock()
	return storeWatches.m[a.store()]
}

// changed is the counter's transition hook.
func (w *storeWatch) changed(_ bool, cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reportLocked(cause)
}

// checked is the counter's outside-check hook: a decisions resync.
func (w *storeWatch) checked(healthy bool) {
	if !healthy {
		return
	}
	w.mu.Lock()
	w.lastResync = time.Now()
	w.mu.Unlock()
}

// reportLocked logs the store's state if it differs from the state last
// logged. The state is read here rather than taken from the hook, so two
// transitions reported out of order still leave the log right.
func (w *storeWatch) reportLocked(cause error) {
	down := !w.counter.Healthy()
	if down == w.down || len(w.apps) == 0 {
		return
	}
	w.down = down
	a := w.apps[len(w.apps)-1]
	typ, addr := a.storeSummary()
	fields := []zap.Field{zap.String("store", typ), zap.String("address", addr)}
	if !down {
		a.logger.Info(msgStoreUp, append(fields, zap.Duration("down_for", time.Since(w.downSince).Round(time.Millisecond)))...)
		return
	}
	w.downSince = time.Now()
	if cause != nil {
		fields = append(fields, zap.Error(cause))
	}
	msg := msgStoreDownOpen
	if a.FailMode == "closed" {
		msg = msgStoreDownClosed
	}
	a.logger.Warn(msg, append(fields, zap.String("fail_mode", a.failMode()))...)
}

// state is what the health report shows of a watch (nil: nothing).
func (w *storeWatch) state() (downSince, lastResync time.Time) {
	if w == nil {
		return time.Time{}, time.Time{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		downSince = w.downSince
	}
	return downSince, w.lastResync
}

// failMode is fail_mode with its default.
func (a *App) failMode() string {
	if a.FailMode == "" {
		return "open"
	}
	return a.FailMode
}

// envSkipStoreCheck turns off the store check of `caddy validate`, for a
// validation run where the store cannot be reached (a build machine).
const envSkipStoreCheck = "VIGIL_VALIDATE_SKIP_STORE"

// validateStoreTimeout is how long `caddy validate` waits for the store.
const validateStoreTimeout = 2 * time.Second

// checkStoreForValidate fails `caddy validate` when the Redis store does not
// answer, so an address typo is caught before a deploy rather than found in
// a log afterwards. It never runs for `caddy run`: a running gateway must
// start (failing open or closed) whatever the store does.
func checkStoreForValidate(cfg StoreConfig, failMode string) error {
	if cfg.Type != "redis" || !validating() || os.Getenv(envSkipStoreCheck) == "1" {
		return nil
	}
	client, err := redisOptions(cfg).Client()
	if err != nil {
		return fmt.Errorf("vigil store redis: %w", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), validateStoreTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("vigil store redis %s: not reachable within %s (%w); `caddy run` would start anyway, failing %s until it answers; set %s=1 to skip this check",
			storeAddress(cfg), validateStoreTimeout, err, failMode, envSkipStoreCheck)
	}
	return nil
}

// validating reports whether this process only checks a config: `caddy
// validate` or `caddy adapt --validate`. Caddy then calls Provision but
// never Start, and tells modules nothing about it, so the command line is
// the signal. It cannot misfire on a running server: a reload is
// provisioned inside the `caddy run` process (`caddy start` runs one too),
// whatever command asked for it.
var validating = func() bool { return isValidateCommand(os.Args) }

func isValidateCommand(args []string) bool {
	if len(args) < 2 {
		return false
	}
	switch args[1] {
	case "validate":
		return true
	case "adapt":
		for _, a := range args[2:] {
			if a == "--validate" || a == "-validate" || a == "--validate=true" || a == "--validate=1" {
				return true
			}
		}
	}
	return false
}
