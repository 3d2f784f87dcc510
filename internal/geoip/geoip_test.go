package geoip

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geotest"
)

func open(t *testing.T, city, asn string) *Locator {
	t.Helper()
	l, err := Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func write(t *testing.T, name string, fn func(path string) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := fn(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// addrsIn returns the first, a middle and the last address of a network.
func addrsIn(t *testing.T, cidr string) []netip.Addr {
	t.Helper()
	p := netip.MustParsePrefix(cidr).Masked()
	first := p.Addr()
	last := first
	for next := last.Next(); next.IsValid() && p.Contains(next); next = last.Next() {
		last = next
		if last.Is6() && p.Bits() < 120 {
			break // IPv6 /48s are too big to walk: first, second is enough
		}
	}
	return []netip.Addr{first, first.Next(), last}
}

func TestLocateDocumentation(t *testing.T) {
	city, asn := geotest.Files(t)
	l := open(t, city, asn)
	table := geotest.Table(geotest.Documentation)
	for _, e := range geotest.Documentation {
		for _, ip := range addrsIn(t, e.Network) {
			got := l.Locate(ip)
			if got != e.Place() {
				t.Errorf("Locate(%s) = %+v, want %+v", ip, got, e.Place())
			}
			if tab := table.Locate(ip); tab != got {
				t.Errorf("geotest.Table(%s) = %+v, but the database says %+v", ip, tab, got)
			}
		}
	}
	named := map[netip.Addr]string{
		geotest.Berlin: "Berlin", geotest.Potsdam: "Potsdam", geotest.NewYork: "New York",
		geotest.Sydney: "Sydney", geotest.Hosting: "Nuremberg", geotest.Paris: "Paris",
		geotest.Tokyo: "Tokyo", geotest.Munich: "Munich", geotest.CountryOnly: "", geotest.Unknown: "",
	}
	for ip, city := range named {
		if got := l.Locate(ip).City; got != city {
			t.Errorf("Locate(%s).City = %q, want %q", ip, got, city)
		}
	}
	if p := l.Locate(geotest.Hosting); !p.Hosting || p.ASN != 24940 {
		t.Errorf("the hosting entry: %+v", p)
	}
	if p := l.Locate(geotest.Berlin); p.Hosting {
		t.Errorf("Berlin is hosting: %+v", p)
	}
	if p := l.Locate(geotest.CountryOnly); p != (detect.Place{Country: "DE"}) || !p.Known() || p.HasCoords() {
		t.Errorf("the country-only entry: %+v", p)
	}
}

func TestLocateMappedAndUnknown(t *testing.T) {
	entries := append([]geotest.Entry{
		// A database that (wrongly) maps private and loopback ranges must
		// still not give them a place.
		{Network: "10.0.0.0/8", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, ASN: 3320},
		{Network: "127.0.0.0/8", Country: "US", City: "New York", Lat: 40.7, Lon: -74, ASN: 7922},
		{Network: "100.64.0.0/10", Country: "US", ASN: 7922},
		{Network: "fd00::/8", Country: "FR", ASN: 3215},
	}, geotest.Documentation...)
	city := write(t, "city.mmdb", func(p string) error { return geotest.WriteCity(p, entries) })
	asn := write(t, "asn.mmdb", func(p string) error { return geotest.WriteASN(p, entries) })
	l := open(t, city, asn)

	berlin, _ := geotest.Find(geotest.Documentation, geotest.Berlin)
	// Every IPv6 form that carries an IPv4 address is that address.
	for _, s := range []string{"::ffff:192.0.2.10", "::ffff:c000:020a", "::192.0.2.10", "2002:c000:20a::1",
		"2001:0:4136:e378:8000:63bf:3fff:fdf5"} {
		if got := l.Locate(netip.MustParseAddr(s)); got != berlin.Place() {
			t.Errorf("Locate(%s) = %+v, want Berlin", s, got)
		}
	}
	for _, s := range []string{
		"10.1.2.3", "::ffff:10.1.2.3", "::10.1.2.3", "2002:a01:203::1", "2001:0:4136:e378:8000:63bf:f5fe:fdfc", "127.0.0.1", "::1", "100.64.1.1", "fd00::1", "169.254.1.1",
		"fe80::1%eth0", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255",
		"8.8.8.8", "2001:db8:ffff::1", geotest.Unknown.String(),
	} {
		if got := l.Locate(netip.MustParseAddr(s)); got != (detect.Place{}) || got.Known() {
			t.Errorf("Locate(%s) = %+v, want no place", s, got)
		}
	}
	if got := l.Locate(netip.Addr{}); got != (detect.Place{}) {
		t.Errorf("Locate(invalid) = %+v", got)
	}
}

func TestDatabaseTypes(t *testing.T) {
	berlin, _ := geotest.Find(geotest.Documentation, geotest.Berlin)
	withASN := func(p detect.Place) detect.Place { p.ASN, p.Org = berlin.ASN, berlin.Org; return p }
	for _, tc := range []struct {
		name      string
		writeCity func(string) error
		writeASN  func(string) error // nil: no ASN database
		want      detect.Place
	}{
		{"GeoLite2-City without ASN", func(p string) error { return geotest.WriteCity(p, geotest.Documentation) }, nil,
			detect.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, RadiusKm: 20}},
		{"GeoIP2-City", func(p string) error { return geotest.Write(p, "GeoIP2-City", geotest.Documentation) }, nil,
			detect.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, RadiusKm: 20}},
		{"DBIP-City-Lite", func(p string) error { return geotest.Write(p, "DBIP-City-Lite", geotest.Documentation) }, nil,
			detect.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, RadiusKm: 20}},
		{"GeoLite2-Country", func(p string) error { return geotest.WriteCountry(p, geotest.Documentation) },
			func(p string) error { return geotest.WriteASN(p, geotest.Documentation) },
			withASN(detect.Place{Country: "DE"})},
		{"GeoIP2-Country", func(p string) error {
			return geotest.Write(p, "GeoIP2-Country", []geotest.Entry{{Network: "192.0.2.0/24", Country: "DE"}})
		}, nil,
			detect.Place{Country: "DE"}},
		{"GeoIP2-ISP", func(p string) error { return geotest.WriteCity(p, geotest.Documentation) },
			func(p string) error { return geotest.WriteASNType(p, "GeoIP2-ISP", geotest.Documentation) },
			berlin.Place()},
		{"DBIP-ASN-Lite", func(p string) error { return geotest.WriteCity(p, geotest.Documentation) },
			func(p string) error {
				return geotest.WriteASNType(p, "DBIP-ASN-Lite (compat=GeoLite2-ASN)", geotest.Documentation)
			},
			berlin.Place()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			city := write(t, "city.mmdb", tc.writeCity)
			asn := ""
			if tc.writeASN != nil {
				asn = write(t, "asn.mmdb", tc.writeASN)
			}
			l := open(t, city, asn)
			if got := l.Locate(geotest.Berlin); got != tc.want {
				t.Errorf("Locate = %+v, want %+v", got, tc.want)
			}
			dbs := l.Databases()
			if len(dbs) == 0 || dbs[0].Path != city || dbs[0].Type == "" || dbs[0].Built.IsZero() || dbs[0].Size == 0 {
				t.Errorf("Databases = %+v", dbs)
			}
		})
	}
}

func TestMissingFields(t *testing.T) {
	entries := []geotest.Entry{
		{Network: "192.0.2.0/28", City: "Berlin"},                             // a city without a country or location
		{Network: "192.0.2.16/28", Lat: 52.52, Lon: 13.405},                   // a location without radius or names
		{Network: "192.0.2.32/28", Country: "DE", Lat: 95, Lon: 13.405},       // latitude out of range
		{Network: "192.0.2.48/28", Country: "DE", ASN: 3320},                  // an ASN without organisation
		{Network: "192.0.2.64/28", Country: "DE", Org: "Deutsche Telekom AG"}, // an organisation without ASN
		{Network: "192.0.2.80/28", Lon: 181, Lat: 52, RadiusKm: 5},            // longitude out of range
	}
	city := write(t, "city.mmdb", func(p string) error { return geotest.WriteCity(p, entries) })
	asn := write(t, "asn.mmdb", func(p string) error { return geotest.WriteASN(p, entries) })
	l := open(t, city, asn)
	for ip, want := range map[string]detect.Place{
		"192.0.2.1":  {City: "Berlin"},
		"192.0.2.17": {Lat: 52.52, Lon: 13.405},
		"192.0.2.33": {Country: "DE"},
		"192.0.2.49": {Country: "DE", ASN: 3320},
		"192.0.2.65": {Country: "DE", Org: "Deutsche Telekom AG"},
		"192.0.2.81": {},
	} {
		if got := l.Locate(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Locate(%s) = %+v, want %+v", ip, got, want)
		}
	}
	if n := l.LookupErrors(); n != 0 {
		t.Errorf("LookupErrors = %d", n)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mmdb")
	if err := geotest.WriteCity(good, geotest.Documentation); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	asnDB := filepath.Join(dir, "GeoLite2-ASN.mmdb")
	if err := geotest.WriteASN(asnDB, geotest.Documentation); err != nil {
		t.Fatal(err)
	}
	typed := func(name, typ string) string {
		p := filepath.Join(dir, name)
		if err := geotest.Write(p, typ, geotest.Documentation); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name      string
		city, asn string
		bad       string // the file the error must name
		says      string
	}{
		{"missing city", filepath.Join(dir, "nope.mmdb"), "", filepath.Join(dir, "nope.mmdb"), "no such file"},
		{"missing asn", good, filepath.Join(dir, "nope-asn.mmdb"), filepath.Join(dir, "nope-asn.mmdb"), "no such file"},
		{"directory", dir, "", dir, "not a regular file"},
		{"empty", file("empty.mmdb", nil), "", filepath.Join(dir, "empty.mmdb"), "empty"},
		{"truncated", file("half.mmdb", data[:len(data)/2]), "", filepath.Join(dir, "half.mmdb"), "truncated"},
		{"metadata only", file("tail.mmdb", data[len(data)/2:]), "", filepath.Join(dir, "tail.mmdb"), ""},
		{"not a database", file("text.mmdb", []byte("GeoLite2-City, honest\n")), "", filepath.Join(dir, "text.mmdb"), "not a valid MaxMind DB"},
		{"ASN as city", asnDB, "", asnDB, `"GeoLite2-ASN": not a City or Country`},
		{"city as ASN", good, typed("city2.mmdb", "GeoLite2-City"), filepath.Join(dir, "city2.mmdb"), `"GeoLite2-City": not an ASN`},
		{"anonymous IP", typed("anon.mmdb", "GeoIP2-Anonymous-IP"), "", filepath.Join(dir, "anon.mmdb"), "GeoIP2-Anonymous-IP"},
		{"domain", typed("domain.mmdb", "GeoIP2-Domain"), "", filepath.Join(dir, "domain.mmdb"), "GeoIP2-Domain"},
		{"custom type", typed("custom.mmdb", "My-Custom-DB"), "", filepath.Join(dir, "custom.mmdb"), `"My-Custom-DB": not a City`},
		{"custom ASN type", good, typed("custom-asn.mmdb", "My-ASN-DB"), filepath.Join(dir, "custom-asn.mmdb"), `"My-ASN-DB": not an ASN`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(tc.city, tc.asn)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, "loading geoip database "+tc.bad+":") {
				t.Errorf("the error does not name %s: %v", tc.bad, err)
			}
			if strings.Count(msg, tc.bad) != 1 {
				t.Errorf("the error names the file more than once: %v", err)
			}
			if !strings.Contains(msg, tc.says) {
				t.Errorf("error %q does not say %q", msg, tc.says)
			}
		})
	}
	if _, err := Open(filepath.Join(dir, "nope.mmdb"), ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file is not fs.ErrNotExist: %v", err)
	}
	if _, err := Open("", ""); err == nil {
		t.Error("Open without a City database succeeded")
	}
}

func TestClosedAndNil(t *testing.T) {
	city, asn := geotest.Files(t)
	l, err := Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.String(), "GeoLite2-City") || !strings.Contains(l.String(), "GeoLite2-ASN") {
		t.Errorf("String = %q", l.String())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Locate(geotest.Berlin); got != (detect.Place{}) {
		t.Errorf("Locate after Close = %+v", got)
	}
	if _, err := l.Reload(); err == nil {
		t.Error("Reload after Close succeeded")
	}
	var none *Locator
	var loc detect.Locator = none
	if got := loc.Locate(geotest.Berlin); got != (detect.Place{}) {
		t.Errorf("nil Locator: %+v", got)
	}
}
