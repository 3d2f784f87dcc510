package coordinated

import (
	"context"
	"net/netip"

	"github.com/vigilsec/vigil/detect"
)

// networkFailure counts a failure against the client's network and blocks
// the network when its failures reach block_network's threshold inside the
// window: an attacker who rents a range spreads the attempts so each
// address stays under block_ip. The block is claimed for its base duration
// and the network's count restarts, so the next block is earned afresh
// (and comes with a doubled duration from the responder's strikes).
func (d *Detector) networkFailure(ctx context.Context, x *failure) {
	b, f, now := &d.network, x.f, x.at
	p := Network(f.IP)
	key := detect.HashID("net", p.String())
	n, err := d.sums.Add(ctx, detect.Sum{Kind: netFailures, Within: b.Within}, key, 1, now)
	if d.storeErr("network failures", err) || n < int64(b.Failures) {
		return
	}
	if !d.claim(ctx, detect.Sum{Kind: netClaim, Within: b.Base}, key, now) {
		return
	}
	d.forget(ctx, key, netFailures, "")
	d.actor.Act(ctx, detect.Finding{Type: detect.IPBlocked, Time: now, Facts: f, Action: detect.BlockAddress,
		Target: p.String(), Ban: *b, Reason: "block_network",
		Details: detect.Details{
			"network": p.String(), "failures": n, "threshold": b.Failures,
			"window": b.Within.String(), "reason": "block_network",
		}})
}

// Network is the range block_network counts an address under: its /24 for
// IPv4 (an IPv4-mapped IPv6 address is the IPv4 address it maps, as the
// decision store and the app see it), its /48 for IPv6, the usual
// allocation of one site or customer.
func Network(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p
}
