package access

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// violation is one permission violation to record.
type violation struct {
	facts  detect.Facts
	source string // "gateway" (a restrict rule refused) or "upstream" (the app answered 401/403)
	status int
	rule   *Rule // the rule that refused, for gateway violations
	at     time.Time
}

// record counts one permission violation against the user (when the
// session is verified) and the address, and records it: MEDIUM, or HIGH
// once either count reaches the violations threshold.
func (d *Detector) record(ctx context.Context, v violation) {
	w, within, f := d.opt.Windows, d.opt.ViolationWindow, v.facts
	member := detect.NewID() // every violation counts, repeats included
	var byUser, byIP int
	if f.SessionKey != "" {
		byUser, _ = w.Add(ctx, detect.Window{Kind: detect.UserViolations, Within: within}, f.SessionKey, member, v.at)
	}
	if f.IP.IsValid() {
		byIP, _ = w.Add(ctx, detect.Window{Kind: detect.IPViolations, Within: within}, f.NetKey(), member, v.at)
	}
	fd := detect.Finding{Type: detect.PermissionViolation, Time: v.at, Facts: f, Details: detect.Details{
		"source": v.source, "status": v.status, "user_violations": byUser, "ip_violations": byIP,
		"threshold": d.opt.ViolationCount, "window": within.String(),
	}}
	if v.rule != nil {
		fd.Details["rule"] = v.rule.Path
		fd.Details["roles"] = v.rule.Roles
	}
	if max(byUser, byIP) >= d.opt.ViolationCount {
		fd.Severity = detect.High
		fd.Details["repeated"] = true
	}
	d.opt.Actor.Act(ctx, fd)
}
