package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/session"
	"github.com/vigilsec/vigil/respond"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the `vigil` HTTP handler: it enforces the decisions of the
// vigil app on every request and runs the site's detectors.
type Handler struct {
	// Site names this site in events and alerts. Default: the request's Host.
	Site string `json:"site,omitempty"`

	// Logins are the login endpoints to watch.
	Logins []LoginRoute `json:"logins,omitempty"`

	// Lockout locks an account after repeated failures (429 on further
	// logins for that account).
	Lockout *BanPolicy `json:"lockout,omitempty"`

	// BlockIP blocks an address after repeated failures from it (403 on
	// every request).
	BlockIP *BanPolicy `json:"block_ip,omitempty"`

	// Stuffing blocks an address from which too many distinct accounts
	// failed to log in (credential stuffing, password spraying).
	Stuffing *StuffingPolicy `json:"stuffing,omitempty"`

	// MaxBodyBytes bounds how much of a login body is read to find the
	// username. Default 65536. The upstream always receives the whole body.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`

	// MonitorOnly records and alerts but never refuses a request nor
	// imposes a decision from this site.
	MonitorOnly bool `json:"monitor_only,omitempty"`

	// Session verifies the requests' session tokens (JWT): the user they
	// carry becomes {http.vigil.user} and the user of every event.
	Session *SessionConfig `json:"session,omitempty"`

	// Restrict lets only sessions with given roles reach some paths.
	Restrict []RestrictRule `json:"restrict,omitempty"`

	// Violations is how many permission violations by one user or address
	// inside a window make them HIGH. Default 5 within 10m.
	Violations *WindowPolicy `json:"violations,omitempty"`

	// TerminateSessionsOn lists the finding types that revoke the sessions
	// of the user they are about. Default ["ACCOUNT_LOCKED"]; ["none"]
	// turns termination off.
	TerminateSessionsOn []string `json:"terminate_sessions_on,omitempty"`

	// Honeypot paths (Caddy path patterns) no legitimate client asks for:
	// one request blocks the address (CRITICAL SYSTEM_INTRUSION).
	Honeypot []string `json:"honeypot,omitempty"`

	// Probes tunes the built-in intrusion probe detectors (on by default).
	Probes *ProbesConfig `json:"probes,omitempty"`

	// IntrusionBan is how long SYSTEM_INTRUSION blocks an address: the
	// first ban, doubled for repeat offenders up to max. Default 1h max 24h.
	IntrusionBan *BanLength `json:"intrusion_ban,omitempty"`

	// Location raises UNUSUAL_LOCATION, IMPOSSIBLE_TRAVEL and
	// SESSION_ANOMALY from where logins and sessions come from. Needs the
	// global geoip option.
	Location *LocationConfig `json:"location,omitempty"`
	// Risk scores each login against the user's history.
	Risk *RiskConfig `json:"risk,omitempty"`
	// Spray detects password spraying across the site.
	Spray *SprayConfig `json:"spray,omitempty"`
	// Distributed detects one account attacked from many addresses.
	Distributed *DistributedConfig `json:"distributed,omitempty"`
	// BlockNetwork blocks a /24 (IPv4) or /48 (IPv6) whose addresses
	// together fail this often: a botnet rotating addresses in one network.
	BlockNetwork *BanPolicy `json:"block_network,omitempty"`

	// Export routes are watched for data leaving: bulk exports, volumes
	// above baseline, unusual queries.
	Export []ExportConfig `json:"export,omitempty"`
	// Sensitive routes record every access.
	Sensitive []SensitiveConfig `json:"sensitive,omitempty"`
	// Enumeration counts distinct ids per subject on id patterns.
	Enumeration []EnumerationConfig `json:"enumeration,omitempty"`

	// Source is where this handler was configured ("Caddyfile:12", set by
	// the Caddyfile adapter), so errors found while provisioning can say.
	Source string `json:"source,omitempty"`

	app       *App
	responder *respond.Responder
	pipeline  detect.Pipeline
	pool      *detect.Pool
	sessions  *session.Detector // nil without a session block
	logger    *zap.Logger
	now       func() time.Time
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.vigil", New: func() caddy.Module { return new(Handler) }}
}

const defaultMaxBody = 64 << 10

// Provision attaches the handler to the vigil app and builds its pipeline.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("vigil")
	if err != nil {
		return fmt.Errorf("getting vigil app: %w", err)
	}
	if err := h.provision(ctx, appIface.(*App)); err != nil {
		return fmt.Errorf("vigil handler%s: %w", h.where(), err)
	}
	return nil
}

// where names the handler in an error: its site and where it was
// configured, when known.
func (h *Handler) where() string {
	var parts []string
	if h.Site != "" {
		parts = append(parts, "site "+h.Site)
	}
	if h.Source != "" {
		parts = append(parts, h.Source)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// setup is provision outside a Caddy config (tests, benchmarks).
func (h *Handler) setup(app *App) error {
	return h.provision(caddy.Context{Context: context.Background()}, app)
}

// provision derives the runtime policy from the config. ctx bounds the
// background work of this config (the JWKS refresher).
func (h *Handler) provision(ctx caddy.Context, app *App) error {
	h.app = app
	// Caddy provisions before it validates: a session config that cannot
	// work must be refused here, before anything relies on it
	if h.Session != nil && h.Session.JWT != nil {
		if err := h.Session.JWT.validate(); err != nil {
			return err
		}
	}
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	if h.MaxBodyBytes == 0 {
		h.MaxBodyBytes = defaultMaxBody
	}
	if h.now == nil {
		h.now = time.Now
	}
	terminateOn, err := terminateTypes(h.TerminateSessionsOn)
	if err != nil {
		return err
	}
	h.responder = app.core.For(respond.SitePolicy{MonitorOnly: h.MonitorOnly, TerminateOn: terminateOn})
	h.pool = detect.NewPool(maxBackground, backgroundDropped.Inc)
	return h.logPolicy(h.buildPipeline(ctx))
}

// maxBackground bounds the response observations in flight per handler:
// counting a 4xx or an upstream refusal may wait on Redis, which must never
// hold a request nor pile up goroutines when Redis is slow.
const maxBackground = 256

// Cleanup stops the JWKS refresher and forgets this handler's session
// lifetime.
func (h *Handler) Cleanup() error {
	if h.sessions != nil {
		h.sessions.Close()
		h.app.core.UnregisterSessions(h)
	}
	return nil
}

// Validate checks the policy for values that cannot work.
func (h *Handler) Validate() error {
	for i := range h.Logins {
		if err := h.Logins[i].Validate(); err != nil {
			return err
		}
	}
	if err := h.Lockout.validate("lockout"); err != nil {
		return err
	}
	if err := h.BlockIP.validate("block_ip"); err != nil {
		return err
	}
	if s := h.Stuffing; s != nil && (s.Accounts < 2 || s.Within <= 0) {
		return errors.New("stuffing: needs at least 2 accounts and a positive window")
	}
	if h.MaxBodyBytes < 0 {
		return errors.New("max_body_bytes must not be negative")
	}
	if err := h.validateBehaviour(); err != nil {
		return err
	}
	if err := h.validateData(); err != nil {
		return err
	}
	return h.validateAccess()
}

// emptyUser is "" boxed once: setting the placeholder costs no allocation.
var emptyUser any = ""

// ServeHTTP runs the site's pipeline: the checks (any may refuse), the
// upstream with the answer watched as it streams, then the observers of
// the answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	x := newExchange(w, r, h)
	defer x.release()
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl != nil {
		repl.Set("http.vigil.user", emptyUser)
	}
	req := &x.req
	if ref := h.pipeline.Check(req); ref != nil {
		h.observeDuration(req, time.Since(req.Start))
		return refuse(w, ref)
	}
	if req.Identity != nil && repl != nil {
		repl.Set("http.vigil.user", req.Identity.User)
	}
	if tap := h.pipeline.Tap(req); tap != nil {
		x.watch(tap)
		defer x.endOnPanic()
	}
	spent := time.Since(req.Start)
	err := next.ServeHTTP(x, r)
	if x.done() {
		panic(http.ErrAbortHandler) // a tap cut the answer: abort the connection
	}
	if x.status == 0 {
		if err != nil {
			// the upstream failed before answering (e.g. unreachable): no
			// verdict on anything; observers see status 0
			h.pipeline.Observe(req, detect.Answer{Clock: h.now})
			return err
		}
		x.status = http.StatusOK
	}
	a := detect.Answer{Status: x.status, Header: w.Header(), Clock: h.now}
	if req.Login != nil {
		a.Time = h.now() // a login is counted on the request path: its time is Vigil's too
	}
	h.pipeline.Observe(req, a)
	if req.Login != nil {
		spent += time.Since(a.Time)
	}
	h.observeDuration(req, spent)
	return err
}

// refuse sets Retry-After and returns the error Caddy turns into the status
// (or into the operator's handle_errors page).
func refuse(w http.ResponseWriter, ref *detect.Refusal) error {
	enforcedRequests.WithLabelValues(ref.Action).Inc()
	if ref.Retry > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(ref.Retry/time.Second), 10))
	}
	return caddyhttp.Error(ref.Status, ref.Err)
}

// observeDuration records the time Vigil itself spent on a request.
func (h *Handler) observeDuration(req *detect.Request, d time.Duration) {
	switch {
	case req.Login != nil:
		durationLogin.Observe(d.Seconds())
	case req.Identity != nil:
		durationSession.Observe(d.Seconds())
	default:
		durationOther.Observe(d.Seconds())
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
