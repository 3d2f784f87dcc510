package geoip

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geotest"
)

// addrFromBytes reads an address the way a fuzzer can reach every kind: 4
// bytes are IPv4, 16 IPv6, more than 16 IPv6 with the rest as a zone, and
// other lengths the invalid address.
func addrFromBytes(b []byte) netip.Addr {
	switch {
	case len(b) == 4 || len(b) == 16:
		ip, _ := netip.AddrFromSlice(b)
		return ip
	case len(b) > 16:
		return netip.AddrFrom16([16]byte(b[:16])).WithZone(string(b[16:]))
	}
	return netip.Addr{}
}

// FuzzLocate looks up arbitrary addresses in the Documentation databases:
// Locate never panics, addresses without a location get the zero Place,
// and the answer is exactly what the table says (geotest.Table), so every
// mapped, zoned or odd address resolves like its plain form.
func FuzzLocate(f *testing.F) {
	city, asn := geotest.Files(f)
	l, err := Open(city, asn)
	if err != nil {
		f.Fatal(err)
	}
	table := geotest.Table(geotest.Documentation)
	for _, ip := range []netip.Addr{geotest.Berlin, geotest.Tokyo, geotest.CountryOnly, geotest.Unknown} {
		f.Add(ip.AsSlice())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ip := addrFromBytes(b)
		got := l.Locate(ip)
		if _, ok := detect.Locatable(ip); !ok && got != (detect.Place{}) {
			t.Fatalf("Locate(%s) = %+v for an address without a location", ip, got)
		}
		if want := table.Locate(ip); got != want {
			t.Fatalf("Locate(%s) = %+v, the table says %+v", ip, got, want)
		}
	})
}

// FuzzLoad parses arbitrary bytes as a database (in memory: the file
// handling around it is TestOpenErrors's): damage is an error or a
// database whose lookups work, never a panic or a hang.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	for i, write := range []func(string) error{
		func(p string) error { return geotest.WriteCity(p, geotest.Documentation) },
		func(p string) error { return geotest.WriteASN(p, geotest.Documentation) },
	} {
		p := filepath.Join(dir, "seed.mmdb")
		if err := write(p); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, i == 1)
	}
	addrs := []netip.Addr{geotest.Berlin, geotest.Paris, geotest.Unknown, netip.MustParseAddr("8.8.8.8")}
	f.Fuzz(func(t *testing.T, b []byte, asASN bool) {
		r := roleCity
		if asASN {
			r = roleASN
		}
		d, err := parse(b, r)
		if err != nil {
			return
		}
		var p detect.Place
		for _, ip := range addrs {
			d.fill(r, ip, &p)
		}
	})
}
