package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

var (
	errIntrusion  = errors.New("request refused: intrusion probe")
	errRestricted = errors.New("route restricted to other roles")
)

// guard refuses what the request itself gives away: a honeypot hit or a
// probe (which also blocks the address), then the session refusal
// authenticate decided on (deny), then a restricted route without a session
// holding the role. Probes come first so that a scanner without a valid
// session on a `require` site is still recorded and blocked.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request, id *identity, deny sessionDenial, ip netip.Addr, now time.Time) error {
	m := r
	if (h.honeypot != nil || len(h.restrictions) > 0) && r.Context().Value(caddy.ReplacerCtxKey) == nil {
		// Caddy's path matcher needs a replacer; Caddy always sets one
		m = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	}
	if kind, evidence, hit := h.probeRequest(m); hit {
		d, blocked := h.intrusion(context.WithoutCancel(r.Context()), h.factsOf(r, id, ip), kind, evidence, now)
		if blocked {
			enforcedRequests.WithLabelValues("intrusion").Inc()
			return refuse(w, http.StatusForbidden, d.Remaining(now), errIntrusion)
		}
	}
	if deny.err != nil {
		durationSession.Observe(time.Since(now).Seconds())
		return h.refuseSession(w, r, deny)
	}
	if len(h.restrictions) == 0 {
		return nil
	}
	if rule := h.violatedRestriction(m, id); rule != nil {
		f, ctx := h.factsOf(r, id, ip), context.WithoutCancel(r.Context())
		h.background(func() { h.recordViolation(ctx, f, "gateway", http.StatusForbidden, rule, now) })
		if !h.MonitorOnly {
			enforcedRequests.WithLabelValues("restricted").Inc()
			return caddyhttp.Error(http.StatusForbidden, errRestricted)
		}
	}
	return nil
}

// observe looks at the status the upstream answered, off the request path:
// a 4xx may be a step of a directory scan, and a 401/403 to a verified user
// is a permission violation.
func (h *Handler) observe(r *http.Request, id *identity, ip netip.Addr, status int) {
	violation := id != nil && (status == http.StatusUnauthorized || status == http.StatusForbidden)
	scan := h.scanned(status, r.URL.Path)
	if !violation && !scan {
		return
	}
	f, ctx, now := h.factsOf(r, id, ip), context.WithoutCancel(r.Context()), h.now()
	h.background(func() {
		if violation {
			h.recordViolation(ctx, f, "upstream", status, nil, now)
		}
		if scan {
			h.countProbe(ctx, f, now)
		}
	})
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
