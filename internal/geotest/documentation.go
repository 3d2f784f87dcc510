package geotest

import (
	"net/netip"

	"github.com/vigilsec/vigil/detect"
)

// Documentation maps the documentation ranges to real cities with realistic
// coordinates, accuracy radii and ASNs. Tests in every package use it, so
// entries are only ever added, never changed. Distances (great circle,
// before radii): Berlin–Potsdam 27 km, Berlin–Munich 504 km, Berlin–Nuremberg
// 378 km, Berlin–Paris 877 km, Berlin–New York 6385 km, Berlin–Tokyo 8916 km,
// Berlin–Sydney 16095 km.
//
// 2001:db8:3::/48 is in the table with a country only (no city, location or
// ASN), and the rest of 2001:db8::/32 is not in it: Unknown is such an
// address.
var Documentation = []Entry{
	// A German home address: the baseline of most tests.
	{Network: "192.0.2.0/25", Country: "DE", City: "Berlin", Lat: 52.5200, Lon: 13.4050, RadiusKm: 20,
		ASN: 3320, Org: "Deutsche Telekom AG"},
	// Another German ISP 27 km from Berlin whose accuracy circle (50 km)
	// overlaps Berlin's: never impossible travel, never a new country.
	{Network: "192.0.2.128/25", Country: "DE", City: "Potsdam", Lat: 52.3906, Lon: 13.0645, RadiusKm: 50,
		ASN: 3209, Org: "Vodafone GmbH"},
	// A US residential ISP: Berlin then New York minutes later is
	// impossible travel.
	{Network: "198.51.100.0/24", Country: "US", City: "New York", Lat: 40.7128, Lon: -74.0060, RadiusKm: 20,
		ASN: 7922, Org: "Comcast Cable Communications, LLC"},
	// The other side of the world.
	{Network: "203.0.113.0/25", Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.2093, RadiusKm: 20,
		ASN: 1221, Org: "Telstra Limited"},
	// A hosting provider (VPN exits, cloud servers) in Germany: the same
	// country as Berlin but another ASN, marked Hosting, so it is not used
	// as a travel baseline. The radius is coarse, as for data centres.
	{Network: "203.0.113.128/25", Country: "DE", City: "Nuremberg", Lat: 49.4521, Lon: 11.0767, RadiusKm: 100,
		ASN: 24940, Org: "Hetzner Online GmbH", Hosting: true},
	// IPv6: a French ISP.
	{Network: "2001:db8::/48", Country: "FR", City: "Paris", Lat: 48.8566, Lon: 2.3522, RadiusKm: 20,
		ASN: 3215, Org: "Orange S.A."},
	// IPv6: a Japanese ISP.
	{Network: "2001:db8:1::/48", Country: "JP", City: "Tokyo", Lat: 35.6762, Lon: 139.6503, RadiusKm: 50,
		ASN: 2516, Org: "KDDI CORPORATION"},
	// The same country and ISP as Berlin, a city 504 km away: new for
	// `new city 100`, not for `new country` or `new asn`.
	{Network: "2001:db8:2::/48", Country: "DE", City: "Munich", Lat: 48.1374, Lon: 11.5755, RadiusKm: 20,
		ASN: 3320, Org: "Deutsche Telekom AG"},
	// Missing fields: the database knows the country only.
	{Network: "2001:db8:3::/48", Country: "DE"},
}

// An address inside each Documentation entry, for tests that need one (and
// their String for X-Forwarded-For).
var (
	Berlin      = netip.MustParseAddr("192.0.2.10")
	Potsdam     = netip.MustParseAddr("192.0.2.130")
	NewYork     = netip.MustParseAddr("198.51.100.10")
	Sydney      = netip.MustParseAddr("203.0.113.10")
	Hosting     = netip.MustParseAddr("203.0.113.130") // Hetzner, Nuremberg
	Paris       = netip.MustParseAddr("2001:db8::10")
	Tokyo       = netip.MustParseAddr("2001:db8:1::10")
	Munich      = netip.MustParseAddr("2001:db8:2::10")
	CountryOnly = netip.MustParseAddr("2001:db8:3::10") // DE, nothing else
	Unknown     = netip.MustParseAddr("2001:db8:ffff::10")
)

// Place is the detect.Place a Locator returns for an address of e when
// both the City and the ASN database hold e.
func (e Entry) Place() detect.Place {
	return detect.Place{
		Country:  e.Country,
		City:     e.City,
		Lat:      e.Lat,
		Lon:      e.Lon,
		RadiusKm: float64(e.RadiusKm),
		ASN:      e.ASN,
		Org:      e.Org,
		Hosting:  e.Hosting,
	}
}

// Find returns the entry whose network holds ip (IPv4-mapped addresses as
// IPv4), the most specific one when networks nest.
func Find(entries []Entry, ip netip.Addr) (Entry, bool) {
	ip = ip.Unmap()
	var (
		best Entry
		bits = -1
	)
	for _, e := range entries {
		p, err := netip.ParsePrefix(e.Network)
		if err != nil || !p.Contains(ip) || p.Bits() <= bits {
			continue
		}
		best, bits = e, p.Bits()
	}
	return best, bits >= 0
}

// Table is a detect.Locator over entries without a database file, for
// detector unit tests that need places but not GeoIP: it applies
// detect.Locatable and returns what internal/geoip returns for the same
// entries written with WriteCity and WriteASN (internal/geoip tests that
// the two agree).
func Table(entries []Entry) detect.Locator {
	return detect.LocatorFunc(func(ip netip.Addr) detect.Place {
		ip, ok := detect.Locatable(ip)
		if !ok {
			return detect.Place{}
		}
		e, ok := Find(entries, ip)
		if !ok {
			return detect.Place{}
		}
		return e.Place()
	})
}
