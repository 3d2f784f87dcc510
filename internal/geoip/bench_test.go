package geoip

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/oschwald/geoip2-golang/v2"

	"github.com/vigilsec/vigil/internal/geotest"
)

// benchEntries is a database shaped like a small real one: many networks
// spread over the address space, a few thousand distinct cities and ASNs,
// so lookups walk a deep tree and decode records that share strings.
func benchEntries(n int) ([]geotest.Entry, []netip.Addr) {
	rng := rand.New(rand.NewPCG(1, 2))
	entries := make([]geotest.Entry, 0, n)
	addrs := make([]netip.Addr, 0, n)
	seen := map[netip.Prefix]bool{}
	for len(entries) < n {
		var ip netip.Addr
		var bits int
		if len(entries)%5 == 4 { // a fifth IPv6 /48s in 2a00::/12
			var b [16]byte
			b[0], b[1] = 0x2a, byte(rng.IntN(16))
			b[2], b[3], b[4], b[5] = byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))
			ip, bits = netip.AddrFrom16(b), 48
		} else {
			ip, bits = netip.AddrFrom4([4]byte{byte(1 + rng.IntN(222)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 24
		}
		p := netip.PrefixFrom(ip, bits).Masked()
		if seen[p] || !p.Addr().IsGlobalUnicast() || p.Addr().IsPrivate() {
			continue
		}
		seen[p] = true
		c := rng.IntN(3000)
		entries = append(entries, geotest.Entry{
			Network: p.String(), Country: fmt.Sprintf("%c%c", 'A'+c%26, 'A'+c/26%26),
			City: fmt.Sprintf("City %d", c), Lat: float64(c%170) - 85 + 0.5, Lon: float64(c%350) - 175 + 0.25,
			RadiusKm: uint16(5 + c%200), ASN: uint(64512 + c%1000), Org: fmt.Sprintf("Network Operator %d GmbH", c%1000),
		})
		addrs = append(addrs, p.Addr().Next())
	}
	return entries, addrs
}

func benchLocator(b *testing.B) (*Locator, string, []netip.Addr) {
	b.Helper()
	entries, addrs := benchEntries(20000)
	dir := b.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteCity(city, entries); err != nil {
		b.Fatal(err)
	}
	if err := geotest.WriteASN(asn, entries); err != nil {
		b.Fatal(err)
	}
	l, err := Open(city, asn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l, city, addrs[:1024]
}

func BenchmarkLocate(b *testing.B) {
	l, _, addrs := benchLocator(b)
	for _, bc := range []struct {
		name  string
		addrs []netip.Addr
	}{
		{"hit", addrs},
		{"miss", []netip.Addr{netip.MustParseAddr("223.255.255.1"), netip.MustParseAddr("2c0f:ffff::1")}},
		{"private", []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("::1")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				l.Locate(bc.addrs[i%len(bc.addrs)])
			}
		})
	}
	b.Run("hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				l.Locate(addrs[i%len(addrs)])
			}
		})
	})
}

// BenchmarkGeoip2City is the same lookup through geoip2.Reader.City, which
// decodes every field of the record: the reason Locate decodes its own
// narrow record.
func BenchmarkGeoip2City(b *testing.B) {
	_, city, addrs := benchLocator(b)
	r, err := geoip2.Open(city)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := r.City(addrs[i%len(addrs)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	_, city, _ := benchLocator(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(city, ""); err != nil {
			b.Fatal(err)
		}
	}
}
