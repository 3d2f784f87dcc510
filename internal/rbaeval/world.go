// Package rbaeval generates a labelled stream of logins with the columns
// of the public RBA dataset (das-group/rba-dataset, Wiefling et al., ACM
// TOPS 2022) and replays it through the login risk model (detect/risk):
// the evaluation of docs/risk.md. Everything is synthetic and
// deterministic for a seed: users with habits (home, work, phone, hours,
// trips) and three kinds of attacker.
package rbaeval

import (
	"math/rand/v2"
	"net/netip"
)

// netKind is what a network is to the people on it.
type netKind uint8

const (
	residential netKind = iota // home broadband
	mobile                     // a carrier: every session a new address (CGNAT)
	business                   // offices, cafés, hotels
	hosting                    // data centres and VPN providers
)

// network is one autonomous system, with a /16 of its own.
type network struct {
	asn     uint32
	kind    netKind
	country *country
	a, b    byte // its /16
}

// addr is a random address of the network.
func (n *network) addr(r *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{n.a, n.b, byte(r.IntN(256)), byte(1 + r.IntN(254))})
}

// country is where users live and networks are.
type country struct {
	code   string
	weight float64 // share of the service's users (0: attackers only)
	tz     int     // UTC offset, hours
	nets   [4][]*network
	// netWeights are each kind's networks' market shares (Zipf-like: a
	// few big operators and a tail).
	netWeights [4][]float64
}

// pick returns a network of kind, by market share.
func (c *country) pick(r *rand.Rand, kind netKind) *network {
	return c.nets[kind][pickWeighted(r, c.netWeights[kind])]
}

// world is the countries and networks of one stream.
type world struct {
	countries []*country
	users     []*country // countries users live in
	weights   []float64  // their shares
	// numbers of networks of each kind per country
}

var countrySpecs = []struct {
	code   string
	weight float64
	tz     int
}{
	{"US", 30, -5}, {"DE", 12, 1}, {"GB", 8, 0}, {"FR", 7, 1}, {"IN", 7, 5},
	{"BR", 6, -3}, {"JP", 5, 9}, {"CA", 4, -5}, {"ES", 4, 1}, {"IT", 4, 1},
	{"NL", 3, 1}, {"AU", 3, 10}, {"PL", 2, 1}, {"SE", 2, 1}, {"MX", 2, -6},
	{"CN", 0, 8}, {"RU", 0, 3}, {"VN", 0, 7}, {"NG", 0, 1}, {"UA", 0, 2},
	{"RO", 0, 2}, {"ID", 0, 7}, {"KR", 0, 9}, {"TR", 0, 3}, {"IR", 0, 3},
	{"PK", 0, 5}, {"TH", 0, 7}, {"AR", 0, -3}, {"ZA", 0, 2}, {"EG", 0, 2},
}

// networks per country and kind: residential, mobile, business, hosting.
var netsPerKind = [4]int{6, 3, 12, 4}

// firstOctets are public /8s to carve the networks' /16s from (no private,
// loopback, link-local, CGNAT or documentation ranges).
var firstOctets = []byte{23, 31, 37, 45, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 93, 94, 95}

func newWorld() *world {
	w := &world{}
	asn, slot := uint32(3000), 0
	for _, s := range countrySpecs {
		c := &country{code: s.code, weight: s.weight, tz: s.tz}
		for kind, n := range netsPerKind {
			for i := range n {
				nw := &network{asn: asn, kind: netKind(kind), country: c,
					a: firstOctets[slot/256], b: byte(slot % 256)}
				asn, slot = asn+7, slot+1
				c.nets[kind] = append(c.nets[kind], nw)
				c.netWeights[kind] = append(c.netWeights[kind], 1/float64(i+1))
			}
		}
		w.countries = append(w.countries, c)
		if s.weight > 0 {
			w.users = append(w.users, c)
			w.weights = append(w.weights, s.weight)
		}
	}
	return w
}

// pickWeighted returns an index of weights, by weight.
func pickWeighted(r *rand.Rand, weights []float64) int {
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	x := r.Float64() * sum
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}
