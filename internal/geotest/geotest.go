// Package geotest writes real MaxMind DB files for tests, with
// github.com/maxmind/mmdbwriter, so GeoIP code is tested against the format
// it reads in production rather than against a mock.
//
// Documentation is a ready-made table that maps the documentation ranges
// (RFC 5737, RFC 3849) to real cities; Files writes it as a City and an ASN
// database into a test's temporary directory:
//
//	city, asn := geotest.Files(t)
//	loc, err := geoip.Open(city, asn)
//
// The files are written to a temporary name and renamed into place, as
// geoipupdate does, so rewriting a file a Locator watches is an atomic swap.
package geotest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Database types, as MaxMind names them in a database's metadata.
const (
	TypeCity    = "GeoLite2-City"
	TypeCountry = "GeoLite2-Country"
	TypeASN     = "GeoLite2-ASN"
)

// Entry is what a database says about one network. Zero fields are left out
// of the record, which is how a database with missing fields is written: an
// Entry with only Country has no city and no location.
type Entry struct {
	Network  string // CIDR
	Country  string // ISO 3166-1 alpha-2
	City     string // English name
	Lat, Lon float64
	RadiusKm uint16 // accuracy radius
	ASN      uint
	Org      string // the ASN's organisation
	// Hosting marks a hosting provider or VPN exit. The City database
	// records it as MaxMind does in GeoIP2 Enterprise/Insights
	// (traits.user_type "hosting") and in GeoIP2 Anonymous IP
	// (traits.is_hosting_provider); GeoLite2 has no such data.
	Hosting bool
}

// Write writes entries as city-shaped records (country, registered
// country, city, location, traits) under any database type name: another
// City flavour (GeoIP2-City, DBIP-City-Lite) or one a reader must refuse.
func Write(path, databaseType string, entries []Entry) error {
	return write(path, databaseType, entries, cityRecord)
}

// WriteCity writes entries as a GeoLite2-City database.
func WriteCity(path string, entries []Entry) error {
	return write(path, TypeCity, entries, cityRecord)
}

// WriteCountry writes entries as a GeoLite2-Country database: the country
// only, like the real one.
func WriteCountry(path string, entries []Entry) error {
	return write(path, TypeCountry, entries, countryRecord)
}

// WriteASN writes the ASN and organisation of entries as a GeoLite2-ASN
// database; entries without either are left out, as networks without an
// ASN are in the real one.
func WriteASN(path string, entries []Entry) error {
	return WriteASNType(path, TypeASN, entries)
}

// WriteASNType is WriteASN with another database type, e.g. GeoIP2-ISP.
func WriteASNType(path, databaseType string, entries []Entry) error {
	return write(path, databaseType, entries, asnRecord)
}

// Files writes Documentation as a City and an ASN database in a temporary
// directory of tb and returns their paths.
func Files(tb testing.TB) (city, asn string) {
	tb.Helper()
	dir := tb.TempDir()
	city = filepath.Join(dir, "GeoLite2-City.mmdb")
	asn = filepath.Join(dir, "GeoLite2-ASN.mmdb")
	if err := WriteCity(city, Documentation); err != nil {
		tb.Fatal(err)
	}
	if err := WriteASN(asn, Documentation); err != nil {
		tb.Fatal(err)
	}
	return city, asn
}

func write(path, databaseType string, entries []Entry, record func(Entry) mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: databaseType,
		Description:  map[string]string{"en": "Vigil test database (" + databaseType + ")"},
		Languages:    []string{"en"},
		RecordSize:   28,
		// The documentation and private ranges are reserved networks
		// that the writer refuses unless told otherwise.
		IncludeReservedNetworks: true,
	})
	if err != nil {
		return fmt.Errorf("writing test database %s: %w", path, err)
	}
	for _, e := range entries {
		_, network, err := net.ParseCIDR(e.Network)
		if err != nil {
			return fmt.Errorf("writing test database %s: %w", path, err)
		}
		r := record(e)
		if len(r) == 0 {
			continue
		}
		if err := tree.Insert(network, r); err != nil {
			return fmt.Errorf("writing test database %s: network %s: %w", path, e.Network, err)
		}
	}
	// A temporary file in the same directory, renamed over the target: a
	// reader sees the old file or the new one, never a partial one.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".geotest-*.mmdb")
	if err != nil {
		return fmt.Errorf("writing test database %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tree.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing test database %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing test database %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing test database %s: %w", path, err)
	}
	return nil
}

func cityRecord(e Entry) mmdbtype.Map {
	r := countryRecord(e)
	if e.City != "" {
		r["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(e.City)}}
	}
	if e.Lat != 0 || e.Lon != 0 {
		loc := mmdbtype.Map{
			"latitude":  mmdbtype.Float64(e.Lat),
			"longitude": mmdbtype.Float64(e.Lon),
		}
		if e.RadiusKm != 0 {
			loc["accuracy_radius"] = mmdbtype.Uint16(e.RadiusKm)
		}
		r["location"] = loc
	}
	if e.Hosting {
		r["traits"] = mmdbtype.Map{
			"user_type":           mmdbtype.String("hosting"),
			"is_hosting_provider": mmdbtype.Bool(true),
		}
	}
	return r
}

func countryRecord(e Entry) mmdbtype.Map {
	r := mmdbtype.Map{}
	if e.Country != "" {
		country := mmdbtype.Map{"iso_code": mmdbtype.String(e.Country)}
		r["country"] = country
		// Real databases carry the country where the network is
		// registered too; readers must not confuse the two.
		r["registered_country"] = country
	}
	return r
}

func asnRecord(e Entry) mmdbtype.Map {
	r := mmdbtype.Map{}
	if e.ASN != 0 {
		r["autonomous_system_number"] = mmdbtype.Uint32(uint32(e.ASN))
	}
	if e.Org != "" {
		r["autonomous_system_organization"] = mmdbtype.String(e.Org)
	}
	return r
}
