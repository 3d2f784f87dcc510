package geotest

import (
	"math"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/vigilsec/vigil/detect"
)

// The table's promises, which tests in other packages rely on.
func TestDocumentation(t *testing.T) {
	var prefixes []netip.Prefix
	for _, e := range Documentation {
		p, err := netip.ParsePrefix(e.Network)
		if err != nil || p != p.Masked() {
			t.Fatalf("%s: not a canonical CIDR (%v)", e.Network, err)
		}
		doc := false
		for _, d := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"} {
			doc = doc || netip.MustParsePrefix(d).Contains(p.Addr())
		}
		if !doc {
			t.Errorf("%s is not a documentation range", e.Network)
		}
		for _, q := range prefixes {
			if q.Overlaps(p) {
				t.Errorf("%s overlaps %s", p, q)
			}
		}
		prefixes = append(prefixes, p)
	}

	place := func(ip netip.Addr) detect.Place {
		t.Helper()
		e, ok := Find(Documentation, ip)
		if !ok {
			t.Fatalf("%s is not in the table", ip)
		}
		return e.Place()
	}
	berlin := place(Berlin)
	for _, tc := range []struct {
		ip  netip.Addr
		km  float64 // distance from Berlin, as the table's comment says
		min bool    // MinDistance is 0: the accuracy circles overlap
	}{
		{Potsdam, 27, true},
		{Munich, 504, false},
		{Hosting, 378, false},
		{Paris, 877, false},
		{NewYork, 6385, false},
		{Tokyo, 8916, false},
		{Sydney, 16095, false},
	} {
		p := place(tc.ip)
		if d := detect.Distance(berlin, p); math.Abs(d-tc.km) > 1 {
			t.Errorf("Berlin–%s = %.0f km, the comment says %.0f", p.City, d, tc.km)
		}
		if overlap := detect.MinDistance(berlin, p) == 0; overlap != tc.min {
			t.Errorf("Berlin–%s: circles overlap = %v", p.City, overlap)
		}
	}
	if p := place(Hosting); !p.Hosting || p.Country != "DE" || p.ASN == berlin.ASN {
		t.Errorf("the hosting entry: %+v", p)
	}
	if p := place(Munich); p.Country != "DE" || p.ASN != berlin.ASN {
		t.Errorf("Munich: %+v", p)
	}
	if p := place(CountryOnly); p != (detect.Place{Country: "DE"}) {
		t.Errorf("the country-only entry: %+v", p)
	}
	if _, ok := Find(Documentation, Unknown); ok {
		t.Error("Unknown is in the table")
	}
	if _, ok := Find(Documentation, netip.MustParseAddr("::ffff:192.0.2.10")); !ok {
		t.Error("Find does not unmap IPv4-mapped addresses")
	}
}

func TestTable(t *testing.T) {
	l := Table(Documentation)
	if p := l.Locate(Berlin); p.City != "Berlin" {
		t.Errorf("Berlin: %+v", p)
	}
	for _, s := range []string{"10.0.0.1", "127.0.0.1", "2001:db8:ffff::1", "8.8.8.8"} {
		if p := l.Locate(netip.MustParseAddr(s)); p != (detect.Place{}) {
			t.Errorf("%s: %+v", s, p)
		}
	}
	// Nested networks: the most specific wins.
	nested := Table([]Entry{
		{Network: "192.0.2.0/24", Country: "DE"},
		{Network: "192.0.2.0/28", Country: "FR"},
	})
	if got := nested.Locate(netip.MustParseAddr("192.0.2.1")).Country; got != "FR" {
		t.Errorf("nested: %s", got)
	}
	if got := nested.Locate(netip.MustParseAddr("192.0.2.100")).Country; got != "DE" {
		t.Errorf("nested: %s", got)
	}
}

// The files are real MaxMind DBs: the raw records have MaxMind's shape and
// the declared type.
func TestWrittenFiles(t *testing.T) {
	dir := t.TempDir()
	city, asn, country := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "country.mmdb")
	for _, err := range []error{WriteCity(city, Documentation), WriteASN(asn, Documentation), WriteCountry(country, Documentation)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(path string, ip netip.Addr) (string, map[string]any) {
		t.Helper()
		r, err := maxminddb.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var rec map[string]any
		if err := r.Lookup(ip).Decode(&rec); err != nil {
			t.Fatal(err)
		}
		return r.Metadata.DatabaseType, rec
	}
	typ, rec := lookup(city, Hosting)
	if typ != TypeCity {
		t.Errorf("type %q", typ)
	}
	for _, key := range []string{"country", "registered_country", "city", "location", "traits"} {
		if rec[key] == nil {
			t.Errorf("the City record has no %s: %v", key, rec)
		}
	}
	if loc := rec["location"].(map[string]any); loc["accuracy_radius"] != uint64(100) {
		t.Errorf("location: %v", loc)
	}
	if typ, rec = lookup(asn, Hosting); typ != TypeASN || rec["autonomous_system_number"] != uint64(24940) ||
		rec["autonomous_system_organization"] != "Hetzner Online GmbH" {
		t.Errorf("ASN record: %s %v", typ, rec)
	}
	if typ, rec = lookup(country, Berlin); typ != TypeCountry || rec["city"] != nil || rec["location"] != nil ||
		rec["country"].(map[string]any)["iso_code"] != "DE" {
		t.Errorf("Country record: %s %v", typ, rec)
	}
	if _, rec = lookup(asn, CountryOnly); rec != nil {
		t.Errorf("an entry without ASN is in the ASN database: %v", rec)
	}
	if err := WriteCity(filepath.Join(dir, "bad.mmdb"), []Entry{{Network: "not a network"}}); err == nil ||
		!strings.Contains(err.Error(), "bad.mmdb") {
		t.Errorf("a bad network: %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, ".geotest-*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

// libmaxminddb, the reference C reader, reads the files too (skipped
// without mmdblookup, from the mmdb-bin package).
func TestMmdblookup(t *testing.T) {
	bin, err := exec.LookPath("mmdblookup")
	if err != nil {
		t.Skip("mmdblookup is not installed")
	}
	city, asn := Files(t)
	for _, tc := range []struct {
		file, ip string
		path     []string
		want     string
	}{
		{city, Berlin.String(), []string{"city", "names", "en"}, `"Berlin"`},
		{city, "::ffff:192.0.2.10", []string{"country", "iso_code"}, `"DE"`},
		{city, Tokyo.String(), []string{"location", "accuracy_radius"}, "50"},
		{city, Hosting.String(), []string{"traits", "user_type"}, `"hosting"`},
		{asn, NewYork.String(), []string{"autonomous_system_number"}, "7922"},
	} {
		args := append([]string{"--file", tc.file, "--ip", tc.ip}, tc.path...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("mmdblookup %v: %v\n%s", args, err, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("mmdblookup %s %v = %s, want %s", tc.ip, tc.path, strings.TrimSpace(string(out)), tc.want)
		}
	}
}
