package caddymodule

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// defaultTerminateOn is what terminate_sessions_on means when not given.
var defaultTerminateOn = []string{string(detect.AccountLocked)}

// terminateTypes parses terminate_sessions_on: event types, or "none".
func terminateTypes(list []string) (map[detect.Type]bool, error) {
	if list == nil {
		list = defaultTerminateOn
	}
	out := map[detect.Type]bool{}
	for _, s := range list {
		if s == "none" {
			if len(list) > 1 {
				return nil, fmt.Errorf("terminate_sessions_on: none excludes event types")
			}
			return out, nil
		}
		t, err := detect.ParseType(s)
		if err != nil {
			return nil, fmt.Errorf("terminate_sessions_on: %w", err)
		}
		switch t {
		case detect.SessionRevoked, detect.AdminAction, detect.SuccessfulLogin, detect.FailedLogin:
			return nil, fmt.Errorf("terminate_sessions_on: %s cannot end sessions", t)
		}
		out[t] = true
	}
	return out, nil
}

// revokeSessions stores a revocation (of every session of a user issued
// until now, or of one token ID), shared with every instance through the
// decision store, and records SESSION_REVOKED. It lasts revocationTTL, so
// that every token it covers has expired by the time it ends, unless ttl
// (an operator's explicit choice) says otherwise.
func (a *App) revokeSessions(ctx context.Context, kind respond.Kind, target, reason, source, site string, ttl time.Duration, now time.Time) (respond.Decision, error) {
	now = now.UTC()
	if ttl <= 0 {
		ttl = revocationTTL(a)
	}
	d := respond.Decision{Kind: kind, Target: target, Reason: reason, Source: source, Site: site,
		Strike: 1, Created: now, Until: now.Add(ttl)}
	if err := a.store().Decisions.Put(ctx, d); err != nil {
		return d, fmt.Errorf("storing revocation: %w", err)
	}
	revocationsTotal.WithLabelValues(source).Inc()
	ev := detect.NewEvent(detect.SessionRevoked, now)
	ev.Site = site
	ev.Details = map[string]any{"revocation": string(kind), "reason": reason, "source": source, "until": d.Until.Format(time.RFC3339)}
	if kind == respond.RevokeUser {
		ev.User = detect.DisplayUser(target)
	} else {
		ev.Details["jti"] = detect.DisplayUser(target)
	}
	a.Record(ev)
	return d, nil
}

// terminateSessions ends the sessions of the user a finding is about, when
// the site's terminate_sessions_on lists the finding's type. user must be
// the finding's subject (the locked account, the session that probed), never
// an account an attacker merely tried. Nothing happens unless a site of
// the app verifies sessions.
func (h *Handler) terminateSessions(ctx context.Context, t detect.Type, user, site string, ip netip.Addr, now time.Time) {
	if !h.terminateOn[t] || user == "" || h.MonitorOnly || !sessionsInUse(h.app) {
		// (without a site that verifies sessions a revocation would
		// change nothing and only clutter the decisions)
		return
	}
	reason := string(t)
	if ip.IsValid() {
		reason += " from " + ip.String()
	}
	if _, err := h.app.revokeSessions(ctx, respond.RevokeUser, user, reason, "auto", site, 0, now); err != nil {
		h.logger.Error("terminating sessions", zap.String("finding", string(t)), zap.Error(err))
	}
}
