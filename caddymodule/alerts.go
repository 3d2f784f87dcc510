package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/exp/zapslog"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/store"
	"github.com/vigilsec/vigil/respond/alert"
)

// AlertConfig is one alert channel of the vigil app (`alert …` in the
// Caddyfile). Secrets accept {env.NAME} placeholders, resolved at
// provision.
type AlertConfig struct {
	// Type is webhook, slack, email or pagerduty.
	Type string `json:"type"`
	// URL is the webhook or Slack incoming-webhook URL.
	URL string `json:"url,omitempty"`
	// Secret is the webhook's Standard Webhooks signing secret (whsec_…).
	Secret string `json:"secret,omitempty"`
	// RoutingKey is the PagerDuty Events API v2 integration key.
	RoutingKey string `json:"routing_key,omitempty"`
	// Endpoint overrides PagerDuty's enqueue URL (EU region, tests).
	Endpoint string `json:"endpoint,omitempty"`
	// To, SMTP, From, Username, Password and TLS configure email.
	To       []string `json:"to,omitempty"`
	SMTP     string   `json:"smtp,omitempty"`
	From     string   `json:"from,omitempty"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	TLS      string   `json:"tls,omitempty"`

	// MinSeverity is the lowest severity sent; default by type: MEDIUM for
	// webhook and slack, HIGH for email, CRITICAL for pagerduty.
	MinSeverity string `json:"min_severity,omitempty"`
	// Types limits the channel to these event types.
	Types []string `json:"types,omitempty"`
	// MaxAge bounds how long an alert is retried. Default 24h.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Throttle is the most alerts of one event type and severity sent per
	// ThrottleWindow; the rest of that type and severity go into its own
	// digest, so a storm of FAILED_LOGIN never folds an ACCOUNT_LOCKED, nor
	// LOW traffic a MEDIUM alert. Default by type: off for webhook (it
	// feeds machines, which want every alert); 20 per 1m per type and
	// severity for slack and email (people read them) and for pagerduty,
	// which never throttles CRITICAL (PagerDuty folds repeats by dedup_key
	// itself). -1 turns throttling off.
	Throttle int `json:"throttle,omitempty"`
	// ThrottleWindow is the length of a throttle window (default 1m); it
	// also paces the digest of held-back duplicates.
	ThrottleWindow caddy.Duration `json:"throttle_window,omitempty"`
	// DedupWindow holds back repeats of an alert (same dedup_key and
	// severity) for this long. Default 10m; -1 turns it off.
	DedupWindow caddy.Duration `json:"dedup_window,omitempty"`
}

// resolved returns the config with placeholders replaced; an {env.*}
// placeholder that comes out empty is an error naming it.
func (c AlertConfig) resolved() (AlertConfig, error) {
	repl := caddy.NewReplacer()
	var err error
	r := func(name string, s *string) {
		if err == nil {
			*s, err = resolve(repl, "alert "+c.Type+" "+name, *s)
		}
	}
	r("url", &c.URL)
	r("secret", &c.Secret)
	r("routing key", &c.RoutingKey)
	r("endpoint", &c.Endpoint)
	r("smtp", &c.SMTP)
	r("from", &c.From)
	r("username", &c.Username)
	r("password", &c.Password)
	to := make([]string, len(c.To))
	for i := range c.To {
		to[i] = c.To[i]
		r("recipient", &to[i])
	}
	c.To = to
	return c, err
}

// route builds the channel. c must be resolved.
func (c AlertConfig) route() (alert.Route, error) {
	var s alert.Sender
	var err error
	switch c.Type {
	case "webhook":
		s, err = alert.NewWebhook(c.URL, c.Secret)
	case "slack":
		s, err = alert.NewSlack(c.URL)
	case "email":
		s, err = alert.NewEmail(alert.EmailOptions{To: c.To, From: c.From, SMTP: c.SMTP, Username: c.Username, Password: c.Password, TLS: c.TLS})
	case "pagerduty":
		s, err = alert.NewPagerDuty(c.RoutingKey, c.Endpoint)
	default:
		err = fmt.Errorf("unknown alert type %q (want webhook, slack, email or pagerduty)", c.Type)
	}
	if err != nil {
		return alert.Route{}, err
	}
	p := alert.Policy{
		MaxAge: time.Duration(c.MaxAge), Timeout: time.Duration(c.Timeout),
		Throttle: c.Throttle, ThrottleWindow: time.Duration(c.ThrottleWindow), DedupWindow: time.Duration(c.DedupWindow),
	}
	if c.MinSeverity != "" {
		if p.MinSeverity, err = detect.ParseSeverity(c.MinSeverity); err != nil {
			return alert.Route{}, err
		}
	}
	for _, t := range c.Types {
		typ, err := detect.ParseType(t)
		if err != nil {
			return alert.Route{}, err
		}
		p.Types = append(p.Types, typ)
	}
	if p.MaxAge < 0 || p.Timeout < 0 || p.ThrottleWindow < 0 || c.Throttle < -1 {
		return alert.Route{}, fmt.Errorf("negative max_age, timeout or throttle")
	}
	return alert.Route{Sender: s, Policy: p}, nil
}

// alertsPool holds one dispatcher per distinct alert configuration (and
// store), so a reload with the same alerts keeps the dispatcher, its
// throttle windows and its queue; memOutboxPool holds the memory outbox
// every dispatcher shares, so even a changed configuration keeps the jobs
// of the channels it still has.
var (
	alertsPool    = caddy.NewUsagePool()
	memOutboxPool = caddy.NewUsagePool()

	// alertsLatest is the dispatcher most recently provisioned per outbox
	// (store): when an older one is destructed, its successor adopts the
	// queues of the channels it no longer has.
	alertsLatestMu sync.Mutex
	alertsLatest   = map[string]*alertState{}
)

const memOutboxKey = "memory"

type memOutbox struct{ *alert.MemoryOutbox }

func (memOutbox) Destruct() error { return nil }

// alertState is a running dispatcher and what it owns.
type alertState struct {
	d        *alert.Dispatcher
	stateKey string // the shared state (and its Redis client) held for the Redis outbox; "" for memory
	storeKey string // which outbox
}

// adoptTimeout bounds moving a replaced dispatcher's orphaned queues.
const adoptTimeout = 5 * time.Second

// Destruct stops the dispatcher (queued alerts stay in the outbox), hands
// the queues of channels the newest configuration no longer has to its
// dispatcher, then releases the outbox.
func (s *alertState) Destruct() error {
	err := s.d.Close()
	alertsLatestMu.Lock()
	succ := alertsLatest[s.storeKey]
	if succ == s {
		delete(alertsLatest, s.storeKey)
		succ = nil
	}
	alertsLatestMu.Unlock()
	if succ != nil {
		ctx, cancel := context.WithTimeout(context.Background(), adoptTimeout)
		succ.d.Adopt(ctx, s.d.Channels())
		cancel()
	}
	s.release()
	return err
}

// provisionAlerts starts (or takes over) the dispatcher for a.Alerts. With
// Redis, the outbox uses the shared state's client.
func (a *App) provisionAlerts(store StoreConfig) error {
	if len(a.Alerts) == 0 {
		return nil
	}
	cfgs := make([]AlertConfig, len(a.Alerts))
	routes := make([]alert.Route, len(a.Alerts))
	for i, c := range a.Alerts {
		var err error
		if cfgs[i], err = c.resolved(); err != nil {
			return fmt.Errorf("vigil alert %s (#%d): %w", c.Type, i+1, err)
		}
		r, err := cfgs[i].route()
		if err != nil {
			return fmt.Errorf("vigil alert %s (#%d): %w", c.Type, i+1, err)
		}
		routes[i] = r
	}
	outboxStore := StoreConfig{Type: "memory"}
	if store.Type == "redis" {
		outboxStore = store
	}
	storeJSON, _ := json.Marshal(outboxStore)
	stateKey := ""
	if store.Type == "redis" {
		stateKey = a.poolKey
	}
	keyJSON, _ := json.Marshal(struct {
		S string
		A []AlertConfig
		P int `json:",omitempty"`
	}{stateKey, cfgs, a.AlertsBuffer})
	key := string(keyJSON)
	val, _, err := alertsPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := newAlertState(stateKey, routes, a.AlertsBuffer)
		if st != nil {
			st.storeKey = string(storeJSON)
		}
		return st, err
	})
	if err != nil {
		return fmt.Errorf("vigil alerts: %w", err)
	}
	st := val.(*alertState)
	alertsLatestMu.Lock()
	alertsLatest[st.storeKey] = st
	alertsLatestMu.Unlock()
	a.alertsKey = key
	a.alerts = st.d
	return nil
}

func newAlertState(stateKey string, routes []alert.Route, pending int) (*alertState, error) {
	// started by App.Start, so `caddy validate` never delivers
	opts := alert.Options{Routes: routes, Pending: pending, Hooks: alertHooks(), Logger: alertLogger(), Deferred: true}
	st := &alertState{stateKey: stateKey}
	if stateKey != "" {
		// the app provisioned this state just before: take one more hold
		// on it, released when the dispatcher goes
		val, loaded, err := statePool.LoadOrNew(stateKey, func() (caddy.Destructor, error) {
			return nil, errors.New("shared state is gone")
		})
		if err != nil || !loaded {
			return nil, fmt.Errorf("alert outbox: %w", err)
		}
		opts.Outbox = alert.NewRedisOutbox(val.(*sharedState).store.Keyspace)
	} else {
		val, _, _ := memOutboxPool.LoadOrNew(memOutboxKey, func() (caddy.Destructor, error) {
			return memOutbox{alert.NewMemoryOutbox()}, nil
		})
		opts.Outbox = val.(memOutbox).MemoryOutbox
	}
	d, err := alert.New(opts)
	if err != nil {
		st.release()
		return nil, err
	}
	st.d = d
	return st, nil
}

func (s *alertState) release() {
	if s.stateKey != "" {
		_, _ = statePool.Delete(s.stateKey)
	} else {
		_, _ = memOutboxPool.Delete(memOutboxKey)
	}
}

// alertLogger logs through Caddy's default logger: the dispatcher outlives
// the config that created it, so it must not hold that config's logger.
func alertLogger() *slog.Logger {
	return slog.New(zapslog.NewHandler(caddy.Log().Core(), zapslog.WithName("vigil.alerts")))
}

// cleanupAlerts releases this config's hold on the dispatcher.
func (a *App) cleanupAlerts() error {
	if a.alertsKey == "" {
		return nil
	}
	_, err := alertsPool.Delete(a.alertsKey)
	return err
}

// redisOptions maps the store config onto the store package's options.
func redisOptions(cfg StoreConfig) store.RedisOptions {
	return store.RedisOptions{
		URL: cfg.URL, Addrs: cfg.Addrs, Cluster: cfg.Cluster, SentinelMaster: cfg.Sentinel,
		Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLS: cfg.TLS,
		TLSCA: cfg.CA, TLSCert: cfg.Cert, TLSKey: cfg.Key, TLSServerName: cfg.ServerName,
		Prefix: cfg.Prefix,
	}
}
