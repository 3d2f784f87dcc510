package caddymodule

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/zap/exp/zapslog"

	"github.com/caddyserver/caddy/v2"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/access"
	loginpkg "github.com/vigilsec/vigil/detect/login"
	"github.com/vigilsec/vigil/detect/probes"
	"github.com/vigilsec/vigil/detect/session"
	"github.com/vigilsec/vigil/respond"
)

// buildPipeline asks the config, once, which detectors this site needs, and
// lines them up in the order they run. A new detector is one more block
// here; ServeHTTP does not change.
//
// Checks: blocks, login route, session identity, probes, session refusal,
// restrict, login guard, login behaviour (place and risk). Probes run before the session refusal so that a
// scanner without a session is still recorded and blocked.
func (h *Handler) buildPipeline(ctx caddy.Context) error {
	h.pipeline = detect.Pipeline{Checks: []detect.Check{h.responder.Blocks()}}
	p, st, log := &h.pipeline, h.app.store(), slog.New(zapslog.NewHandler(h.logger.Core()))

	behave, err := h.buildBehaviour(log)
	if err != nil {
		return err
	}
	var logins *loginpkg.Detector
	if len(h.Logins) > 0 {
		lo := loginpkg.Options{
			Routes: h.Logins, Policy: h.loginPolicy(), MaxBody: h.MaxBodyBytes, MonitorOnly: h.MonitorOnly,
			Counter: st.Counter, Responder: h.responder, Logger: log, Tighten: behave.tighten(),
			Hooks: loginpkg.Hooks{Attempt: func(o string) { loginAttempts.WithLabelValues(o).Inc() }},
		}
		if behave.detector != nil && st.Keyspace.Client != nil {
			// with Redis, the risk read overlaps the reservation: a login
			// waits for one round trip, not two (in memory, the hand-over
			// to a goroutine would cost more than the read)
			lo.Ahead = behave.detector.Ahead
		}
		logins = loginpkg.New(lo)
		p.Checks = append(p.Checks, logins.Match())
	}

	if h.Session != nil && h.Session.JWT != nil {
		if err := h.buildSessions(ctx, log); err != nil {
			return err
		}
		p.Checks = append(p.Checks, h.sessions.Identify())
	}

	po := probes.Options{Ban: h.IntrusionBan.ban(), Buckets: st.Buckets, Actor: h.responder, Pool: h.pool, Logger: log,
		AgentsEvicted: evictionsOf(respond.StateAgents)}
	h.Probes.options(&po)
	if po.Honeypot, err = compileHoneypots(h.Honeypot); err != nil {
		return err
	}
	pd := probes.New(po)
	if pd.Checks() {
		p.Checks = append(p.Checks, pd)
	}

	if h.sessions != nil {
		p.Checks = append(p.Checks, h.sessions.Enforce())
		ad, err := h.buildAccess()
		if err != nil {
			return err
		}
		if len(h.Restrict) > 0 {
			p.Checks = append(p.Checks, ad)
		}
		p.Observers = append(p.Observers, ad)
	}

	if logins != nil {
		p.Checks = append(p.Checks, logins)
		p.Observers = append(p.Observers, logins)
	}
	dd, err := h.buildData(log)
	if err != nil {
		return err
	}
	if dd != nil {
		// after the session checks: the subject is the verified user
		p.Checks = append(p.Checks, dd)
		p.Taps = append(p.Taps, dd)
	}
	if behave.detector != nil {
		// after the login detector: it reads the account and its verdict
		p.Checks = append(p.Checks, behave.detector)
		p.Observers = append(p.Observers, behave.detector)
	}
	if pd.Scans() {
		p.Observers = append(p.Observers, pd)
	}
	return nil
}

// buildSessions starts the session detector and registers its token
// lifetime, so revocations outlive every token it accepts.
func (h *Handler) buildSessions(ctx caddy.Context, log *slog.Logger) error {
	o, err := h.Session.JWT.options()
	if err != nil {
		return err
	}
	o.ExtraClaims = append(ruleClaims(h.Restrict, orString(o.RolesClaim, "roles")), dataClaims(h.Export)...)
	o.MonitorOnly, o.Responder, o.Logger, o.Now = h.MonitorOnly, h.responder, log, h.now
	o.Hooks = session.Hooks{
		Verified: verifiedFresh.Inc, Cached: verifiedCached.Inc, Invalid: verifiedInvalid.Inc,
		Revoked: verifiedRevoked.Inc, Missing: verifiedMissing.Inc,
	}
	d, err := session.New(ctx, o)
	if err != nil {
		return err
	}
	d.OnCacheEvict(evictionsOf(respond.StateVerifyCache))
	h.sessions = d
	h.app.core.RegisterSessions(h, d.Lifetime())
	return nil
}

// buildAccess is the restrict rules' and permission violations' detector.
func (h *Handler) buildAccess() (*access.Detector, error) {
	rules, err := compileRestrictions(h.Restrict, orString(h.Session.JWT.RolesClaim, "roles"))
	if err != nil {
		return nil, err
	}
	v := defaultViolations
	if h.Violations != nil {
		v = *h.Violations
	}
	return access.New(access.Options{
		Rules: rules, ViolationCount: v.Count, ViolationWindow: time.Duration(v.Within), MonitorOnly: h.MonitorOnly,
		Windows: h.app.store().Windows, Actor: h.responder, Pool: h.pool,
	}), nil
}

// validateAccess checks the session, restrict, honeypot and probe options.
func (h *Handler) validateAccess() error {
	if s := h.Session; s != nil {
		if s.JWT == nil {
			return errors.New("session: only jwt sessions are supported")
		}
		if err := s.JWT.validate(); err != nil {
			return err
		}
	}
	if len(h.Restrict) > 0 && (h.Session == nil || h.Session.JWT == nil) {
		return errors.New("restrict: needs a session jwt block to know who the user is")
	}
	for i := range h.Restrict {
		if err := h.Restrict[i].validate(); err != nil {
			return err
		}
	}
	if v := h.Violations; v != nil && (v.Count < 1 || v.Within <= 0) {
		return fmt.Errorf("violations: want a positive count and window")
	}
	if _, err := terminateTypes(h.TerminateSessionsOn); err != nil {
		return err
	}
	if _, err := compileHoneypots(h.Honeypot); err != nil {
		return err
	}
	if err := h.Probes.validate(); err != nil {
		return err
	}
	return h.IntrusionBan.validate()
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
