package caddymodule

import "net/netip"

// clientNet is what per-address counters and automatic blocks key on: the
// address itself for IPv4, and its /64 for IPv6, because one IPv6 client
// usually holds a whole /64 and could otherwise rotate through it to dodge
// every per-address counter and fill the decision store with one block per
// address. Events still carry the full address.
func clientNet(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
