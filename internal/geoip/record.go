package geoip

import (
	"net/netip"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/vigilsec/vigil/detect"
)

// cityRecord is the part of a City, Country or Enterprise record that a
// Place needs. Decoding into it instead of geoip2.City skips the names in
// eight languages, the continent, subdivisions and postal code, and with
// pooled records and the reader's string cache a lookup allocates nothing
// (BenchmarkLocate, BenchmarkGeoip2City).
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	City struct {
		Names struct {
			English string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Location struct {
		Latitude       float64 `maxminddb:"latitude"`
		Longitude      float64 `maxminddb:"longitude"`
		AccuracyRadius uint16  `maxminddb:"accuracy_radius"`
	} `maxminddb:"location"`
	// Traits are empty in GeoLite2. GeoIP2 Enterprise has the ASN and the
	// user type; the anonymity flags are those of GeoIP2 Anonymous IP and
	// of the legacy City trait, for databases that merge them in.
	Traits struct {
		ASN               uint   `maxminddb:"autonomous_system_number"`
		Org               string `maxminddb:"autonomous_system_organization"`
		UserType          string `maxminddb:"user_type"`
		IsAnonymous       bool   `maxminddb:"is_anonymous"`
		IsAnonymousProxy  bool   `maxminddb:"is_anonymous_proxy"`
		IsAnonymousVPN    bool   `maxminddb:"is_anonymous_vpn"`
		IsHostingProvider bool   `maxminddb:"is_hosting_provider"`
		IsPublicProxy     bool   `maxminddb:"is_public_proxy"`
		IsTorExitNode     bool   `maxminddb:"is_tor_exit_node"`
	} `maxminddb:"traits"`
}

// asnRecord is a GeoLite2-ASN or GeoIP2-ISP record.
type asnRecord struct {
	ASN uint   `maxminddb:"autonomous_system_number"`
	Org string `maxminddb:"autonomous_system_organization"`
	// GeoIP2-ISP names the organisation here when it has no AS name.
	Organization string `maxminddb:"organization"`
	ISP          string `maxminddb:"isp"`
}

// fillCity sets the City database's fields of p. A record that does not
// decode (a corrupt data section) leaves p as it was: the address counts
// as unknown rather than half-known.
func fillCity(r *maxminddb.Reader, ip netip.Addr, p *detect.Place) error {
	res := r.Lookup(ip)
	if !res.Found() {
		return res.Err()
	}
	rec := cityRecords.Get().(*cityRecord)
	defer cityRecords.Put(rec)
	*rec = cityRecord{}
	if err := res.Decode(rec); err != nil {
		return err
	}
	p.Country = rec.Country.ISOCode
	p.City = rec.City.Names.English
	loc := detect.Place{Lat: rec.Location.Latitude, Lon: rec.Location.Longitude}
	if loc.HasCoords() {
		// Coordinates out of range are dropped, not clamped: a wrong
		// place is worse than no place for impossible travel.
		p.Lat, p.Lon = loc.Lat, loc.Lon
		p.RadiusKm = float64(rec.Location.AccuracyRadius)
	}
	t := &rec.Traits
	if t.ASN != 0 {
		p.ASN, p.Org = t.ASN, t.Org
	}
	p.Hosting = t.UserType == "hosting" || t.IsHostingProvider || t.IsAnonymousVPN ||
		t.IsAnonymous || t.IsAnonymousProxy || t.IsPublicProxy || t.IsTorExitNode
	return nil
}

// fillASN sets the ASN and organisation of p; they replace what an
// Enterprise City database said, the ASN database being the operator's
// explicit choice.
func fillASN(r *maxminddb.Reader, ip netip.Addr, p *detect.Place) error {
	res := r.Lookup(ip)
	if !res.Found() {
		return res.Err()
	}
	rec := asnRecords.Get().(*asnRecord)
	defer asnRecords.Put(rec)
	*rec = asnRecord{}
	if err := res.Decode(rec); err != nil {
		return err
	}
	if rec.ASN == 0 && rec.Org == "" && rec.Organization == "" && rec.ISP == "" {
		return nil
	}
	p.ASN = rec.ASN
	switch {
	case rec.Org != "":
		p.Org = rec.Org
	case rec.Organization != "":
		p.Org = rec.Organization
	default:
		p.Org = rec.ISP
	}
	return nil
}

// Records are pooled because Decode takes an interface: a local record
// would escape to the heap on every lookup.
var (
	cityRecords = sync.Pool{New: func() any { return new(cityRecord) }}
	asnRecords  = sync.Pool{New: func() any { return new(asnRecord) }}
)
