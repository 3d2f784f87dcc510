package respond

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// endSessions carries out an EndSessions or EndSession finding: the user's
// sessions, or one token, are revoked before the finding's event is
// published, and the event names the revocation. Monitor-only records the
// finding and revokes nothing; so does a site that verifies no sessions
// (nothing would enforce the revocation).
func (r *Responder) endSessions(ctx context.Context, f *detect.Finding, ev detect.Event) detect.Outcome {
	rv := Revocation{Kind: RevokeUser, Target: f.Target, Source: "auto", Site: detect.Display(f.Facts.Site)}
	if f.Action == detect.EndSession {
		rv.Kind = RevokeJTI
	} else if rv.Target == "" {
		rv.Target = f.Facts.Session
	}
	rv.Reason = string(f.Type)
	if f.Facts.IP.IsValid() {
		rv.Reason += " from " + f.Facts.IP.String()
	}
	switch {
	case rv.Target == "" || !r.core.sessions.inUse():
	case r.policy.MonitorOnly:
		ev.Details["monitor_only"] = true
	default:
		d, err := r.core.Revoke(ctx, rv, f.Time)
		if err != nil {
			r.core.logger().Error("ending sessions", "finding", string(f.Type), "error", err)
			break
		}
		ev.Details["revocation"] = map[string]any{"kind": string(d.Kind), "target": detect.Display(d.Target), "until": d.Until.Format(time.RFC3339)}
	}
	r.core.Bus.Publish(ev)
	return detect.Outcome{}
}

// locate gives a finding the place of its address when the detector did
// not locate it (only logins are located on the request path): events are
// built off the request path, so the lookup costs a request nothing.
func (c *Core) locate(f *detect.Finding) {
	if c.Locator == nil || f.Facts.Place.Known() || !f.Facts.IP.IsValid() {
		return
	}
	f.Facts.Place = c.Locator.Locate(f.Facts.IP)
}
