package detect

import (
	"encoding/json"
	"math"
	"net/netip"
	"testing"
)

var (
	berlin  = Place{Country: "DE", City: "Berlin", Lat: 52.5200, Lon: 13.4050, RadiusKm: 20}
	potsdam = Place{Country: "DE", City: "Potsdam", Lat: 52.3906, Lon: 13.0645, RadiusKm: 50}
	newYork = Place{Country: "US", City: "New York", Lat: 40.7128, Lon: -74.0060, RadiusKm: 20}
	sydney  = Place{Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.2093, RadiusKm: 20}
)

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b Place
		km   float64 // reference great-circle distance
		tol  float64
	}{
		{"Berlin-New York", berlin, newYork, 6385, 10},
		{"Berlin-Sydney", berlin, sydney, 16095, 5},
		{"Berlin-Potsdam", berlin, potsdam, 27, 1},
		{"same place", berlin, berlin, 0, 1e-9},
		{"antipodes", Place{Lat: 10, Lon: 20}, Place{Lat: -10, Lon: -160}, math.Pi * earthRadiusKm, 1e-6},
		{"across the date line", Place{Lat: 0.5, Lon: 179.5}, Place{Lat: 0.5, Lon: -179.5}, 111.2, 0.5},
		{"pole to pole", Place{Lat: 90, Lon: 1}, Place{Lat: -90, Lon: 1}, math.Pi * earthRadiusKm, 1e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Distance(tc.a, tc.b)
			if math.Abs(got-tc.km) > tc.tol {
				t.Errorf("Distance = %.3f km, want %.3f ± %.3f", got, tc.km, tc.tol)
			}
			if back := Distance(tc.b, tc.a); math.Abs(back-got) > 1e-9 {
				t.Errorf("not symmetric: %.6f vs %.6f", got, back)
			}
		})
	}
}

func TestDistanceWithoutCoordinates(t *testing.T) {
	countryOnly := Place{Country: "DE"}
	for _, p := range []Place{
		countryOnly,
		{Lat: math.NaN(), Lon: 13},
		{Lat: 91, Lon: 13},
		{Lat: 52, Lon: 181},
		{Lat: 52, Lon: math.Inf(1)},
	} {
		if p.HasCoords() {
			t.Errorf("%+v: HasCoords = true", p)
		}
		if d := Distance(berlin, p); d != 0 {
			t.Errorf("Distance(berlin, %+v) = %v, want 0", p, d)
		}
		if d := MinDistance(p, newYork); d != 0 {
			t.Errorf("MinDistance(%+v, newYork) = %v, want 0", p, d)
		}
	}
	// The equator and the prime meridian are real places.
	if !(Place{Lat: 0, Lon: 13}).HasCoords() || !(Place{Lat: 52, Lon: 0}).HasCoords() {
		t.Error("a place on the equator or the prime meridian has no coordinates")
	}
}

func TestMinDistance(t *testing.T) {
	// Berlin and Potsdam are 27 km apart and their radii (20 + 50 km)
	// overlap: they could be the same place.
	if d := MinDistance(berlin, potsdam); d != 0 {
		t.Errorf("MinDistance(Berlin, Potsdam) = %v, want 0", d)
	}
	full := Distance(berlin, newYork)
	if d := MinDistance(berlin, newYork); math.Abs(d-(full-40)) > 1e-9 {
		t.Errorf("MinDistance(Berlin, New York) = %v, want %v", d, full-40)
	}
	// A negative or NaN radius counts as no radius.
	odd := newYork
	odd.RadiusKm = math.NaN()
	b := berlin
	b.RadiusKm = -100
	if d := MinDistance(b, odd); math.Abs(d-full) > 1e-9 {
		t.Errorf("MinDistance with bad radii = %v, want %v", d, full)
	}
}

func TestPlaceKnown(t *testing.T) {
	for _, tc := range []struct {
		p     Place
		known bool
		str   string
	}{
		{Place{}, false, "unknown"},
		{Place{Org: "Some Org"}, false, "Some Org"},
		{Place{Country: "DE"}, true, "DE"},
		{Place{Lat: 1, Lon: 2}, true, "unknown"},
		{Place{ASN: 3320}, true, "AS3320"},
		{Place{ASN: 3320, Org: "Deutsche Telekom AG"}, true, "AS3320 Deutsche Telekom AG"},
		{berlin, true, "Berlin, DE"},
		{Place{City: "Berlin", Country: "DE", ASN: 3320, Org: "Deutsche Telekom AG"}, true, "Berlin, DE (AS3320 Deutsche Telekom AG)"},
		{Place{Country: "DE", Org: "Hetzner Online GmbH"}, true, "DE (Hetzner Online GmbH)"},
	} {
		if got := tc.p.Known(); got != tc.known {
			t.Errorf("%+v: Known = %v, want %v", tc.p, got, tc.known)
		}
		if got := tc.p.String(); got != tc.str {
			t.Errorf("%+v: String = %q, want %q", tc.p, got, tc.str)
		}
	}
	if !(Place{}).IsZero() || berlin.IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestPlaceJSON(t *testing.T) {
	b, err := json.Marshal(Place{})
	if err != nil || string(b) != "{}" {
		t.Errorf("zero Place = %s, %v; want {}", b, err)
	}
	p := Place{Country: "DE", City: "Nuremberg", Lat: 49.4521, Lon: 11.0767, RadiusKm: 100, ASN: 24940, Org: "Hetzner Online GmbH", Hosting: true}
	b, err = json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Place
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Errorf("round trip: %+v, %v; want %+v (json %s)", back, err, p, b)
	}
}

func TestLocatable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the address to look up; "" = no location
	}{
		// Documentation ranges: tests map them to cities.
		{"192.0.2.1", "192.0.2.1"},
		{"198.51.100.77", "198.51.100.77"},
		{"203.0.113.200", "203.0.113.200"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:db8:1::1", "2001:db8:1::1"},
		// Public addresses.
		{"8.8.8.8", "8.8.8.8"},
		{"100.63.255.255", "100.63.255.255"},   // just below CGNAT
		{"100.128.0.1", "100.128.0.1"},         // just above CGNAT
		{"198.17.255.255", "198.17.255.255"},   // just below benchmarking
		{"198.20.0.1", "198.20.0.1"},           // just above benchmarking
		{"192.0.1.1", "192.0.1.1"},             // not 192.0.0.0/24
		{"223.255.255.255", "223.255.255.255"}, // last unicast /8
		{"2a00:1450:4001::1", "2a00:1450:4001::1"},
		{"fe00::1", "fe00::1"},
		{"100:0:0:1::1", "100:0:0:1::1"}, // outside 100::/64
		// IPv4-mapped IPv6 is looked up as IPv4, with the same rules.
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"::ffff:8.8.4.4", "8.8.4.4"},
		{"::ffff:10.1.2.3", ""},
		{"::ffff:127.0.0.1", ""},
		// So are the other forms that carry an IPv4 address.
		{"::192.0.2.48", "192.0.2.48"},                         // IPv4-compatible
		{"::10.0.0.1", ""},                                     // IPv4-compatible, private
		{"2002:c000:20a::1", "192.0.2.10"},                     // 6to4
		{"2002:a00:1::1", ""},                                  // 6to4 of 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"}, // Teredo (RFC 4380's example client, re-addressed)
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", ""},           // Teredo of 10.0.0.1
		// A zone is dropped.
		{"2001:db8::1%eth0", "2001:db8::1"},
		// No location.
		{"0.0.0.0", ""},
		{"0.1.2.3", ""},
		{"10.0.0.1", ""},
		{"172.16.5.4", ""},
		{"172.31.255.255", ""},
		{"192.168.1.1", ""},
		{"127.0.0.1", ""},
		{"127.255.0.1", ""},
		{"169.254.169.254", ""},
		{"100.64.0.1", ""},
		{"100.127.255.255", ""},
		{"192.0.0.8", ""},
		{"198.18.0.1", ""},
		{"198.19.255.255", ""},
		{"224.0.0.1", ""},
		{"239.255.255.255", ""},
		{"240.0.0.1", ""},
		{"255.255.255.255", ""},
		{"::", ""},
		{"::1", ""},
		{"fc00::1", ""},
		{"fd12:3456::1", ""},
		{"fe80::1", ""},
		{"fe80::1%eth0", ""},
		{"fec0::1", ""},
		{"ff02::1", ""},
		{"ff05::2", ""},
		{"100::1", ""},
	} {
		ip := netip.MustParseAddr(tc.in)
		got, ok := Locatable(ip)
		if tc.want == "" {
			if ok {
				t.Errorf("Locatable(%s) = %s, true; want no location", tc.in, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("Locatable(%s) = %s, %v; want %s, true", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := Locatable(netip.Addr{}); ok {
		t.Error("the invalid address is locatable")
	}
}

func TestLocatorFunc(t *testing.T) {
	var l Locator = LocatorFunc(func(ip netip.Addr) Place {
		if ip == netip.MustParseAddr("192.0.2.1") {
			return berlin
		}
		return Place{}
	})
	if got := l.Locate(netip.MustParseAddr("192.0.2.1")); got != berlin {
		t.Errorf("Locate = %+v", got)
	}
}

func BenchmarkLocatable(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("::ffff:198.51.100.7"),
		netip.MustParseAddr("2001:db8::1"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Locatable(addrs[i%len(addrs)])
	}
}

func BenchmarkDistance(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		MinDistance(berlin, newYork)
	}
}
