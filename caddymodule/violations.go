package caddymodule

import (
	"context"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/detect"
)

// defaultViolations: this many permission violations by one user or one
// address inside the window make the next ones HIGH.
var defaultViolations = WindowPolicy{Count: 5, Within: caddy.Duration(10 * time.Minute)}

// recordViolation counts one permission violation against the user (when
// the session is verified) and the address, and records it: MEDIUM, or
// HIGH once either count reaches the violations threshold.
// source is "gateway" (a restrict rule refused) or "upstream" (the app
// answered 401 or 403 to a verified user).
func (h *Handler) recordViolation(ctx context.Context, f reqFacts, source string, status int, rule *restriction, now time.Time) {
	permissionViolations.WithLabelValues(source).Inc()
	windows := h.app.store().Windows
	within := time.Duration(h.violations.Within)
	member := detect.NewID() // every violation counts, repeats included
	var byUser, byIP int
	if f.userKey != "" {
		byUser, _ = windows.Add(ctx, detect.UserViolations, f.userKey, member, within, now)
	}
	if f.ip.IsValid() {
		byIP, _ = windows.Add(ctx, detect.IPViolations, f.ipKey(), member, within, now)
	}
	ev := f.event(detect.PermissionViolation, now)
	ev.Details["source"] = source
	ev.Details["status"] = status
	ev.Details["user_violations"] = byUser
	ev.Details["ip_violations"] = byIP
	ev.Details["threshold"] = h.violations.Count
	ev.Details["window"] = within.String()
	if rule != nil {
		ev.Details["rule"] = rule.Path
		ev.Details["roles"] = rule.Roles
	}
	if max(byUser, byIP) >= h.violations.Count {
		ev.Severity = detect.High
		ev.Details["repeated"] = true
	}
	h.app.Record(ev)
	h.terminateSessions(ctx, detect.PermissionViolation, f.user, f.site, f.ip, now)
}
