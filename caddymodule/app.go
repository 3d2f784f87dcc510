// Package caddymodule is the Caddy glue of Vigil: the `vigil` app that holds
// state shared by every site and kept across reloads, the
// `http.handlers.vigil` handler, Caddyfile parsing, the admin API and the
// `caddy vigil` subcommands.
package caddymodule

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geoip"
	"github.com/vigilsec/vigil/respond"
	"github.com/vigilsec/vigil/respond/alert"
	"github.com/vigilsec/vigil/respond/audit"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `vigil` app: the store, allowlist and failure policy shared by
// every site that uses the vigil handler. Its state lives in a usage pool, so
// counters, decisions and events survive `caddy reload`.
type App struct {
	// Store selects where counters, decisions and events live. Default: memory.
	Store *StoreConfig `json:"store,omitempty"`

	// Allow lists IP addresses or CIDR ranges that are never blocked. Their
	// login attempts are still counted and recorded.
	Allow []string `json:"allow,omitempty"`

	// FailMode says what logins do while the shared store is unreachable:
	// "open" (default) keeps serving with local counters and the local
	// decision cache; "closed" refuses logins with 503.
	FailMode string `json:"fail_mode,omitempty"`

	// EventsRetention is how long events stay in the Redis stream (trimmed
	// by MINID). Default 720h (30 days). The memory store keeps the newest
	// 10000 events instead.
	EventsRetention caddy.Duration `json:"events_retention,omitempty"`

	// EventsBuffer bounds the events held in memory while Redis cannot
	// take them (an outage, a paused or slow server): they are written
	// when it answers again. Beyond the bound the oldest held event is
	// dropped and counted in vigil_events_dropped_total{sink="store"}.
	// Default 10000 (about 10 MB). Redis store only.
	EventsBuffer int `json:"events_buffer,omitempty"`

	// AlertsBuffer bounds the alerts held in memory while the Redis outbox
	// refuses them, all channels together; they are queued when Redis
	// answers again. Beyond the bound an alert is dropped and counted in
	// vigil_alerts_dropped_total{reason="outbox_unavailable"} (a MEDIUM or
	// higher alert takes the place of the oldest LOW one first). Default
	// 1000.
	AlertsBuffer int `json:"alerts_buffer,omitempty"`

	// Alerts are the channels security events are delivered to (webhook,
	// Slack, email, PagerDuty), through a durable outbox. See the Alerts section of README.md.
	Alerts []AlertConfig `json:"alerts,omitempty"`

	// GeoIP locates logins and events (country, city, ASN) for the
	// location, risk and session anomaly detectors. Optional.
	GeoIP *GeoIPConfig `json:"geoip,omitempty"`

	// AuditLog writes every event and admin action to a tamper-evident,
	// hash-chained file with signed checkpoints. Optional.
	AuditLog *AuditConfig `json:"audit_log,omitempty"`

	allow     []netip.Prefix
	state     *sharedState
	poolKey   string
	logger    *zap.Logger
	alerts    *alert.Dispatcher // nil without alert channels
	alertsKey string
	emitter   *eventEmitter // nil when Caddy's events app is unavailable
	core      *respond.Core // the responder every site of this config shares
	logSink   *respond.QueuedSink
	ctx       caddy.Context
	locator   *geoip.Locator // nil without geoip
	geoKey    string
	audit     *audit.Log // nil without audit_log
	auditKey  string
	auditPub  ed25519.PublicKey
}

// StoreConfig selects and configures the backing store.
type StoreConfig struct {
	// Type is "memory" (default, one instance) or "redis" (shared by many).
	Type string `json:"type,omitempty"`
	// URL is a redis:// or rediss:// URL (alternative to Addrs).
	URL string `json:"url,omitempty"`
	// Addrs are host:port pairs: one for standalone, several for Cluster or
	// the Sentinels.
	Addrs []string `json:"addrs,omitempty"`
	// Cluster talks Redis Cluster protocol to Addrs.
	Cluster bool `json:"cluster,omitempty"`
	// Sentinel is the master name; Addrs are then the Sentinels.
	Sentinel string `json:"sentinel,omitempty"`
	// Username and Password authenticate (ACL); both accept {env.NAME}.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// DB selects the logical database (standalone and Sentinel only).
	DB int `json:"db,omitempty"`
	// TLS connects with TLS (1.2 or newer).
	TLS bool `json:"tls,omitempty"`
	// CA is a PEM file of the CAs that sign the server's certificate
	// (default: the system's). Implies TLS.
	CA string `json:"ca,omitempty"`
	// Cert and Key are a client certificate and its key (PEM files), for a
	// server that requires one (tls-auth-clients). Imply TLS.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	// ServerName is the name the server's certificate must carry (default:
	// the host dialled). Implies TLS.
	ServerName string `json:"server_name,omitempty"`
	// Prefix starts every key and channel name. Default "vigil:".
	Prefix string `json:"prefix,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "vigil", New: func() caddy.Module { return new(App) }}
}

const defaultRetention = 30 * 24 * time.Hour

// Provision parses the allowlist and takes (or creates) the shared state.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering vigil metrics: %w", err)
	}
	allow, err := parsePrefixes(a.Allow)
	if err != nil {
		return fmt.Errorf("vigil allow: %w", err)
	}
	a.allow = allow
	if err := a.validateFailMode(); err != nil {
		return err
	}
	store, err := a.storeConfig()
	if err != nil {
		return err
	}
	if store.Type != "memory" && store.Type != "redis" {
		return fmt.Errorf("vigil store: unknown type %q (want memory or redis)", store.Type)
	}
	if store.Type == "redis" && store.URL == "" && len(store.Addrs) == 0 {
		return fmt.Errorf("vigil store redis: a URL or at least one address is required")
	}
	retention := time.Duration(a.EventsRetention)
	if retention == 0 || store.Type == "memory" {
		// the memory store keeps a ring, not a retention: leave it out
		// of the pool key so changing it does not start a new store
		retention = defaultRetention
	}
	if a.EventsBuffer < 0 || a.AlertsBuffer < 0 {
		return fmt.Errorf("vigil: events_buffer and alerts_buffer must not be negative (got %d, %d)", a.EventsBuffer, a.AlertsBuffer)
	}
	opts := respond.RedisStoreOptions{Retention: retention, EventQueue: a.EventsBuffer}
	if store.Type == "memory" {
		opts.EventQueue = 0 // the memory store appends at once: nothing is held
	}
	keyJSON, _ := json.Marshal(struct {
		S StoreConfig
		R time.Duration
		Q int `json:",omitempty"`
	}{store, retention, opts.EventQueue})
	a.poolKey = string(keyJSON)
	if err := checkStoreForValidate(store, a.failMode()); err != nil {
		return err
	}
	val, _, err := statePool.LoadOrNew(a.poolKey, func() (caddy.Destructor, error) {
		return newSharedState(store, opts)
	})
	if err != nil {
		return fmt.Errorf("vigil store: %w", err)
	}
	a.state = val.(*sharedState)
	if err := a.provisionAlerts(store); err != nil {
		return err
	}
	if a.emitter, err = newEventEmitter(ctx); err != nil {
		a.logger.Warn("Caddy events app unavailable; security events are not emitted as Caddy events", zap.Error(err))
	}
	if err := a.provisionAudit(); err != nil {
		return err
	}
	a.buildCore()
	if err := a.provisionGeoIP(); err != nil {
		return err
	}
	if a.locator != nil {
		a.core.Locator = a.locator
	}
	return nil
}

// buildCore wires the responder and the event bus: every security event
// goes to metrics, the log, the store's event log, the alert channels and
// Caddy events, in that order. Publishing never waits on the network.
func (a *App) buildCore() {
	a.logSink = respond.Queue(a.logEvent, logQueue, eventsDroppedBy("log"))
	sinks := []respond.Sink{respond.SinkFunc(countEvent), respond.SinkFunc(a.queueLog), respond.SinkFunc(a.state.store.Events.Append)}
	if a.alerts != nil {
		sinks = append(sinks, respond.SinkFunc(a.alerts.Submit))
	}
	if a.emitter != nil {
		sinks = append(sinks, respond.SinkFunc(a.emitter.emit))
	}
	if s := a.auditSink(); s != nil {
		sinks = append(sinks, s)
	}
	bus := respond.NewBus(sinks...)
	a.core = &respond.Core{
		Store: a.state.store, Bus: bus, Allow: a.allow, FailClosed: a.FailMode == "closed",
		Logger: slog.New(zapslog.NewHandler(a.logger.Core())),
	}
}

func (a *App) validateFailMode() error {
	switch a.FailMode {
	case "", "open", "closed":
		return nil
	}
	return fmt.Errorf("vigil fail_mode: %q is not open or closed", a.FailMode)
}

func (a *App) storeConfig() (StoreConfig, error) {
	s := StoreConfig{Type: "memory"}
	if a.Store != nil {
		s = *a.Store
	}
	if s.Type == "" {
		s.Type = "memory"
	}
	if s.Type == "redis" && s.Prefix == "" {
		s.Prefix = "vigil:"
	}
	repl := caddy.NewReplacer()
	var err error
	for _, f := range []struct {
		name string
		v    *string
	}{{"url", &s.URL}, {"username", &s.Username}, {"password", &s.Password}, {"ca", &s.CA}, {"cert", &s.Cert}, {"key", &s.Key}} {
		if err == nil {
			*f.v, err = resolve(repl, "vigil store redis "+f.name, *f.v)
		}
	}
	return s, err
}

// Start starts alert delivery (the rest of the shared state runs from
// Provision on). A config that is only validated is never started, so it
// never delivers alerts queued by a running gateway.
func (a *App) Start() error {
	a.alerts.Start()
	a.warnLenientProxies()
	a.watchStore()
	return nil
}

// warnLenientProxies warns about servers that trust proxies without
// trusted_proxies_strict: Caddy then takes the first address of
// X-Forwarded-For that is not a trusted proxy, reading from the left, so a
// client behind a proxy that appends to the header chooses its own address
// (and the address every counter and block of Vigil keys on).
func (a *App) warnLenientProxies() {
	if a.ctx.Context == nil {
		return
	}
	v, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return
	}
	httpApp, ok := v.(*caddyhttp.App)
	if !ok {
		return
	}
	for name, srv := range httpApp.Servers {
		if trustsProxies(srv) && srv.TrustedProxiesStrict == 0 {
			a.logger.Warn("trusted_proxies is set without trusted_proxies_strict: behind a proxy that appends to X-Forwarded-For, clients can choose the address Vigil counts and blocks them by; add trusted_proxies_strict to the server's options",
				zap.String("server", name))
		}
	}
}

// Stop implements caddy.App.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's hold on the shared state; the last holder
// closes it.
func (a *App) Cleanup() error {
	a.unwatchStore()
	if a.logSink != nil {
		_ = a.logSink.Close()
	}
	alertsErr := errors.Join(a.cleanupAlerts(), a.cleanupGeoIP(), a.cleanupAudit())
	if a.poolKey == "" {
		return alertsErr
	}
	_, err := statePool.Delete(a.poolKey)
	return errors.Join(alertsErr, err)
}

// store is the shared store of this app.
func (a *App) store() *respond.Store { return a.state.store }

// logQueue bounds the events waiting to be logged.
const logQueue = 4096

// logLevel is an event's log level: WARN from MEDIUM up, INFO below
// (Caddy's `log { level … }` can keep only what matters).
func logLevel(e detect.Event) zapcore.Level {
	if e.Severity >= detect.Medium {
		return zap.WarnLevel
	}
	return zap.InfoLevel
}

// queueLog queues an event for the log when the log would write it: an
// event below the logger's level costs no hand-over to the log goroutine.
func (a *App) queueLog(e detect.Event) {
	if a.logger.Core().Enabled(logLevel(e)) {
		a.logSink.Publish(e)
	}
}

// logEvent writes one security event to Caddy's log.
func (a *App) logEvent(e detect.Event) {
	if ce := a.logger.Check(logLevel(e), "security event"); ce != nil {
		ce.Write(
			zap.String("event_id", e.ID), zap.String("type", string(e.Type)),
			zap.String("severity", e.Severity.String()), zap.String("site", e.Site),
			zap.String("user", e.User), zap.String("client_ip", e.IP),
			zap.Any("details", e.Details),
		)
	}
}

// trustsProxies reports whether a provisioned server trusts proxies. Caddy
// drops TrustedProxiesRaw once it has loaded the source into an unexported
// field, so that field is looked at (only whether it is set); a Caddy that
// renames it makes this report false, never panic.
func trustsProxies(srv *caddyhttp.Server) bool {
	if len(srv.TrustedProxiesRaw) > 0 {
		return true
	}
	f := reflect.ValueOf(srv).Elem().FieldByName("trustedProxies")
	return f.IsValid() && f.Kind() == reflect.Interface && !f.IsNil()
}

// parsePrefixes reads IP addresses and CIDR ranges.
func parsePrefixes(items []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(items))
	for _, s := range items {
		norm, err := respond.NormalizeBlockTarget(s)
		if err != nil {
			return nil, err
		}
		p, err := netip.ParsePrefix(norm)
		if err != nil {
			a, _ := netip.ParseAddr(norm)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
