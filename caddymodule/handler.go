package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the `vigil` HTTP handler: it enforces the decisions of the
// vigil app on every request and watches the site's login routes.
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

	app          *App
	policy       detect.LoginPolicy
	logger       *zap.Logger
	now          func() time.Time
	sessions     *sessionGuard
	restrictions []restriction
	violations   WindowPolicy
	terminateOn  map[detect.Type]bool
	honeypot     caddyhttp.MatchPath
	probes       probeSettings
	agents       *detect.AgentVerdicts
	intrusionBan detect.Ban
	bg           *backgroundPool
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.vigil", New: func() caddy.Module { return new(Handler) }}
}

const defaultMaxBody = 64 << 10

// Provision attaches the handler to the vigil app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("vigil")
	if err != nil {
		return fmt.Errorf("getting vigil app: %w", err)
	}
	return h.provision(ctx, appIface.(*App))
}

// setup is provision without a Caddy context (tests, benchmarks).
func (h *Handler) setup(app *App) error { return h.provision(context.Background(), app) }

// provision derives the runtime policy from the config. ctx bounds the
// background work of this config (the JWKS refresher).
func (h *Handler) provision(ctx context.Context, app *App) error {
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
	h.policy = detect.LoginPolicy{Lockout: h.Lockout.ban(), BlockIP: h.BlockIP.ban()}
	if h.Stuffing != nil {
		h.policy.StuffingAccounts = h.Stuffing.Accounts
		h.policy.StuffingWithin = time.Duration(h.Stuffing.Within)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.bg = &backgroundPool{slots: make(chan struct{}, maxBackground)}
	h.agents = new(detect.AgentVerdicts)
	h.probes = h.Probes.settings()
	h.intrusionBan = h.IntrusionBan.ban()
	h.violations = defaultViolations
	if h.Violations != nil {
		h.violations = *h.Violations
	}
	var err error
	if h.terminateOn, err = terminateTypes(h.TerminateSessionsOn); err != nil {
		return err
	}
	if h.honeypot, err = compileHoneypots(h.Honeypot); err != nil {
		return err
	}
	if h.restrictions, err = compileRestrictions(h.Restrict); err != nil {
		return err
	}
	if h.Session != nil && h.Session.JWT != nil {
		g, err := newSessionGuard(ctx, h.Session.JWT, h.now, h.logger)
		if err != nil {
			return err
		}
		g.extraClaims = ruleClaims(h.Restrict, g.rolesClaim)
		for i := range h.restrictions {
			if h.restrictions[i].Claim == g.rolesClaim {
				// the session's own roles, kept in identity.roles
				h.restrictions[i].Claim = ""
			}
		}
		h.sessions = g
		h.registerSessions(revocationLifetime(g.maxLifetime, g.leeway))
	}
	return nil
}

// Cleanup stops the JWKS refresher and forgets this handler's session
// lifetime.
func (h *Handler) Cleanup() error {
	if h.sessions != nil {
		h.sessions.verifier.close()
		h.unregisterSessions()
	}
	return nil
}

// Validate checks the policy for values that cannot work.
func (h *Handler) Validate() error {
	for i := range h.Logins {
		if err := h.Logins[i].validate(); err != nil {
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
	return h.validateAccess()
}

var (
	errBlocked   = errors.New("client address is blocked")
	errLocked    = errors.New("account is locked")
	errStoreDown = errors.New("login refused: security store unreachable (fail_mode closed)")
)

// ServeHTTP enforces IP blocks on every request, identifies sessions,
// refuses revoked sessions, restricted routes and intrusion probes, watches
// logins, and observes the answers for scans and upstream refusals.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	start := h.now()
	ip := clientIP(r)
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl != nil {
		repl.Set("http.vigil.user", "")
	}
	if d, ok := h.app.store().Cache.Blocked(ip, start); ok && !h.MonitorOnly && !h.app.allowed(ip) {
		enforcedRequests.WithLabelValues("block").Inc()
		durationOther.Observe(time.Since(start).Seconds())
		return refuse(w, http.StatusForbidden, d.Remaining(start), errBlocked)
	}
	route := h.loginRoute(r)
	var id *identity
	var deny sessionDenial
	if h.sessions != nil {
		id, deny = h.authenticate(w, r, repl, route != nil, start)
	}
	if err := h.guard(w, r, id, deny, ip, start); err != nil {
		return err
	}
	if route != nil {
		return h.serveLogin(w, r, next, route, ip, start)
	}
	duration := durationOther
	if id != nil {
		duration = durationSession
	}
	if !h.probes.scan && id == nil {
		duration.Observe(time.Since(start).Seconds())
		return next.ServeHTTP(w, r)
	}
	rec := newRecorder(w)
	duration.Observe(time.Since(start).Seconds())
	err := next.ServeHTTP(rec, r)
	if rec.status != 0 {
		h.observe(r, id, ip, rec.status)
	}
	return err
}

// loginRoute is the login route r submits to, if any.
func (h *Handler) loginRoute(r *http.Request) *LoginRoute {
	for i := range h.Logins {
		if h.Logins[i].matches(r) {
			return &h.Logins[i]
		}
	}
	return nil
}

// refuse sets Retry-After and returns the error Caddy turns into the status
// (or into the operator's handle_errors page).
func refuse(w http.ResponseWriter, status int, retry time.Duration, err error) error {
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(retry/time.Second), 10))
	}
	return caddyhttp.Error(status, err)
}

// clientIP is Caddy's client_ip variable, which honours trusted_proxies; an
// X-Forwarded-For from an untrusted peer never gets here.
func clientIP(r *http.Request) netip.Addr {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func (h *Handler) site(r *http.Request) string {
	if h.Site != "" {
		return h.Site
	}
	return detect.DisplayUser(r.Host)
}

func (h *Handler) newEvent(t detect.Type, r *http.Request, user string, ip netip.Addr, now time.Time) detect.Event {
	e := detect.NewEvent(t, now)
	e.Site = h.site(r)
	e.User = detect.DisplayUser(user)
	if ip.IsValid() {
		e.IP = ip.String()
	}
	return e
}

// impose applies a finding's decision unless this site only monitors or the
// address is allowlisted; it reports the decision when a new one was made.
func (h *Handler) impose(r *http.Request, kind respond.Kind, target, reason string, ban detect.Ban, now time.Time) (respond.Decision, bool) {
	d := respond.Decision{Kind: kind, Target: target, Reason: reason, Source: "auto", Site: h.site(r)}
	got, fresh, err := h.app.store().Decisions.Impose(r.Context(), d, ban.Base, ban.Max, now)
	if err != nil {
		h.logger.Error("imposing decision", zap.String("kind", string(kind)), zap.Error(err))
		return got, false
	}
	return got, fresh
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
