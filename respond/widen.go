package respond

import (
	"context"
	"net/netip"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// IPv6 clients usually hold a /64, which is why an IPv6 address is counted
// and blocked by its /64; but one attacker often holds a /56 or a /48 and
// steps to the next /64 after each ban. So bans widen: when widenAfter
// distinct /64s of one /56 have been blocked within the strike memory, the
// /56 is blocked; when widenAfter distinct /56s of one /48 have, the /48.
const widenAfter = 3

// widenings are the steps: the prefix length counted within, and the
// window family that remembers the narrower blocks inside it.
var widenings = []struct {
	bits int
	kind detect.WindowKind
}{{56, "v6ban56"}, {48, "v6ban48"}}

// widen records a new IPv6 block and, when its wider prefix now holds
// enough blocked ones, blocks the wider prefix too (an event of the same
// type, marked widened).
func (r *Responder) widen(ctx context.Context, f *detect.Finding, d Decision) {
	p, err := netip.ParsePrefix(d.Target)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
		return
	}
	for _, w := range widenings {
		if p.Bits() <= w.bits {
			continue
		}
		wider, _ := p.Addr().Prefix(w.bits)
		window := detect.Window{Kind: w.kind, Within: StrikeMemory(f.Ban.Max)}
		n, err := r.core.Store.Windows.Add(ctx, window, detect.HashID("ip", wider.String()), detect.HashID("ip", p.String()), f.Time)
		if err != nil || n < widenAfter {
			return
		}
		wf := *f
		wf.Target = wider.String()
		wf.Reason = f.Reason + " (widened to /" + strconv.Itoa(w.bits) + ")"
		wf.Details = detect.Details{"widened": true, "prefix": wider.String(), "blocked_inside": n}
		wf.Time = f.Time.Add(time.Nanosecond)
		r.Act(ctx, wf)
		return // the wider block widens further on its own
	}
}
