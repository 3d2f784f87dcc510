package detect

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// Place is where an address is, as far as a GeoIP database knows: a partial
// Place (a Country database has no city and no coordinates, a database
// without an ASN file has no ASN) is normal and every field may be empty.
//
// Latitude and longitude 0, 0 mean "no coordinates": GeoIP databases omit
// the location they do not know, and some write 0, 0 for it, so the point in
// the Gulf of Guinea is treated as unknown rather than as a real place.
type Place struct {
	Country  string  `json:"country,omitempty"`   // ISO 3166-1 alpha-2, upper case
	City     string  `json:"city,omitempty"`      // English name
	Lat      float64 `json:"lat,omitempty"`       // degrees north
	Lon      float64 `json:"lon,omitempty"`       // degrees east
	RadiusKm float64 `json:"radius_km,omitempty"` // accuracy radius around Lat, Lon; 0 when unknown
	ASN      uint    `json:"asn,omitempty"`
	Org      string  `json:"org,omitempty"` // the ASN's organisation
	// Hosting is true when the database says the network is a hosting
	// provider, VPN, proxy or Tor exit: such an address says little about
	// where the person is, so it is not used as a baseline for travel.
	Hosting bool `json:"hosting,omitempty"`
}

// Known reports whether anything is known about the place: a country,
// coordinates or an ASN. An address without a location (private, loopback,
// not in the database) has a Place that is not Known, and such a place never
// counts as new.
func (p Place) Known() bool { return p.Country != "" || p.HasCoords() || p.ASN != 0 }

// IsZero reports whether p is the zero Place (for encoding/json's omitzero).
func (p Place) IsZero() bool { return p == Place{} }

// HasCoords reports whether p has usable coordinates: not 0, 0, within
// range and not NaN, so Distance means something.
func (p Place) HasCoords() bool {
	if p.Lat == 0 && p.Lon == 0 {
		return false
	}
	// The comparisons are false for NaN, so NaN is rejected too.
	return p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180
}

// String is the place for logs and event details, most specific first:
// "Berlin, DE (AS3320 Deutsche Telekom AG)"; "unknown" when nothing is known.
func (p Place) String() string {
	var b strings.Builder
	b.WriteString(p.City)
	if p.Country != "" {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Country)
	}
	if p.ASN != 0 || p.Org != "" {
		if b.Len() > 0 {
			b.WriteString(" (")
		}
		if p.ASN != 0 {
			b.WriteString("AS")
			b.WriteString(strconv.FormatUint(uint64(p.ASN), 10))
			if p.Org != "" {
				b.WriteByte(' ')
			}
		}
		b.WriteString(p.Org)
		if p.City != "" || p.Country != "" {
			b.WriteByte(')')
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// earthRadiusKm is the mean radius of the Earth (IUGG), the usual choice
// for great-circle distances: the error against the ellipsoid is under
// 0.5 %, far below any GeoIP accuracy radius.
const earthRadiusKm = 6371.0088

// Distance is the great-circle distance between a and b in kilometres
// (haversine). It is 0 when either place has no coordinates: callers that
// must tell "same place" from "unknown" check HasCoords first.
func Distance(a, b Place) float64 {
	if !a.HasCoords() || !b.HasCoords() {
		return 0
	}
	const rad = math.Pi / 180
	lat1, lat2 := a.Lat*rad, b.Lat*rad
	dLat := lat2 - lat1
	dLon := (b.Lon - a.Lon) * rad
	h := sq(math.Sin(dLat/2)) + math.Cos(lat1)*math.Cos(lat2)*sq(math.Sin(dLon/2))
	// Rounding can push h a hair above 1 for antipodal points; Asin would
	// then return NaN.
	h = math.Min(h, 1)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(h))
}

// MinDistance is the least distance, in kilometres, that the two places can
// be apart given their accuracy radii: Distance minus both radii, never
// below 0. Impossible travel is judged on it, so two addresses whose
// accuracy circles overlap never look like a journey.
func MinDistance(a, b Place) float64 {
	return math.Max(0, Distance(a, b)-nonNegative(a.RadiusKm)-nonNegative(b.RadiusKm))
}

func sq(x float64) float64 { return x * x }

func nonNegative(x float64) float64 {
	if x > 0 {
		return x
	}
	return 0 // also for NaN
}

// Locator tells where an address is. Implementations return the zero Place
// for addresses that have no location (see Locatable) and for addresses
// their database does not know; Locate never fails, so a detector treats a
// database problem like an unknown address. Locate is safe for concurrent
// use.
type Locator interface {
	Locate(ip netip.Addr) Place
}

// LocatorFunc adapts a function to Locator.
type LocatorFunc func(netip.Addr) Place

// Locate calls f(ip).
func (f LocatorFunc) Locate(ip netip.Addr) Place { return f(ip) }

// Locatable returns the address to look up for ip and whether ip can have a
// location at all. A zone is dropped, and an IPv6 address that carries an
// IPv4 one is looked up as that IPv4 address, under the IPv4 rules:
// IPv4-mapped (::ffff:192.0.2.1), IPv4-compatible (::192.0.2.1), 6to4
// (2002:c000:0201::/48) and Teredo (2001:0::/32, the client's public
// address from the last 32 bits). MaxMind databases alias these ranges to
// their IPv4 data, so without the conversion ::ffff:10.0.0.1 would be
// refused and 2002:a00:1:: looked up. Addresses that are not on the public
// internet have no location: unspecified, loopback, private (RFC 1918, ULA,
// site-local), link-local, multicast, CGNAT (100.64.0.0/10, the client's
// carrier NAT, not a place), "this network" (0.0.0.0/8), IETF protocol
// assignments (192.0.0.0/24), benchmarking (198.18.0.0/15), reserved and
// broadcast (240.0.0.0/4) and IPv6 discard-only (100::/64).
//
// The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) are deliberately locatable: they never appear on the
// internet, so a real database has no entry for them (the lookup finds
// nothing), and tests map them to cities in databases of their own.
func Locatable(ip netip.Addr) (netip.Addr, bool) {
	ip = embeddedIPv4(ip.Unmap().WithZone(""))
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsMulticast() {
		return ip, false
	}
	if ip.Is4() {
		a := ip.As4()
		switch {
		case a[0] == 0, // this network
			a[0] == 100 && a[1]&0xc0 == 64,        // CGNAT 100.64.0.0/10
			a[0] == 192 && a[1] == 0 && a[2] == 0, // IETF protocol assignments
			a[0] == 198 && a[1]&0xfe == 18,        // benchmarking 198.18.0.0/15
			a[0] >= 240:                           // reserved, broadcast
			return ip, false
		}
		return ip, true
	}
	a := ip.As16()
	switch {
	case a[0] == 0xfe && a[1]&0xc0 == 0xc0: // site-local fec0::/10, deprecated private
		return ip, false
	case a[0] == 0x01 && a[1] == 0 && [6]byte(a[2:8]) == [6]byte{}: // discard-only 100::/64
		return ip, false
	}
	return ip, true
}

// embeddedIPv4 returns the IPv4 address inside an IPv4-compatible, 6to4 or
// Teredo address, and any other address as it is.
func embeddedIPv4(ip netip.Addr) netip.Addr {
	if !ip.Is6() {
		return ip
	}
	a := ip.As16()
	switch {
	case [12]byte(a[:12]) == [12]byte{}: // ::a.b.c.d; :: and ::1 become 0.0.0.0/8
		return netip.AddrFrom4([4]byte(a[12:]))
	case a[0] == 0x20 && a[1] == 0x02: // 6to4: 2002:AABB:CCDD::/48
		return netip.AddrFrom4([4]byte(a[2:6]))
	case a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0: // Teredo: the client, bit-inverted
		return netip.AddrFrom4([4]byte{^a[12], ^a[13], ^a[14], ^a[15]})
	}
	return ip
}
