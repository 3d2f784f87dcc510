package risk

import (
	"net/netip"
	"time"
)

// Feature is one property of a login that the model compares with the
// user's history and with everyone's.
type Feature uint8

// The features, in the order of every per-feature array.
const (
	// IP is the client address; an IPv6 client by its /64, which one
	// household or phone usually holds whole and rotates through.
	IP Feature = iota
	// ASN is the autonomous system (network operator) of the address.
	ASN
	// Country is the ISO 3166-1 alpha-2 code of the address.
	Country
	// Browser is the browser family and major version ("Chrome 124"), or
	// the scripted client's name ("curl").
	Browser
	// OS is the operating system family ("Windows", "iOS").
	OS
	// Device is the device class: desktop, mobile, tablet, tv, bot, script.
	Device
	// Hour is the hour of the week in UTC (0 = Monday 00:00), one of 168.
	Hour
)

// NumFeatures is how many features a login has.
const NumFeatures = 7

// HoursPerWeek is the number of hour-of-week bins.
const HoursPerWeek = 168

var featureNames = [NumFeatures]string{"ip", "asn", "country", "browser", "os", "device", "hour"}

// String is the feature's name in events and documentation.
func (f Feature) String() string {
	if int(f) < NumFeatures {
		return featureNames[f]
	}
	return "unknown"
}

// Code is the one-byte name stores use for the feature's fields.
func (f Feature) Code() byte { return "iacbodh"[f] }

// Observation is one login as the model sees it.
type Observation struct {
	// User is the account's key: detect.AccountKey of the name the app
	// authenticates (normalised, hashed), never the raw name.
	User string
	IP   netip.Addr
	// Country (ISO 3166-1 alpha-2) and ASN of IP, from GeoIP; "" and 0
	// when unknown, and the feature is then left out of the score and of
	// the profile.
	Country string
	ASN     uint32
	// UserAgent is the request's User-Agent header as sent.
	UserAgent string
	Time      time.Time
}

// hourOfWeek is t's bin: hours since Monday 00:00 UTC. UTC rather than
// the user's zone, which Vigil does not know: a user's habits are as
// regular in UTC, and a daylight-saving shift moves them by one bin, which
// the histogram's smoothing across neighbouring hours absorbs.
func hourOfWeek(t time.Time) int {
	t = t.UTC()
	day := (int(t.Weekday()) + 6) % 7 // Monday = 0
	return day*24 + t.Hour()
}

// hourNear lists the bins whose counts smooth bin b's: the hour before and
// after (across midnight and the week's end), then the same hour on the
// six other days.
func hourNear(near *[NumNear]uint64, b int) {
	near[0] = uint64((b + HoursPerWeek - 1) % HoursPerWeek)
	near[1] = uint64((b + 1) % HoursPerWeek)
	for d := 1; d < 7; d++ {
		near[1+d] = uint64((b + 24*d) % HoursPerWeek)
	}
}

// A query also reads nearby values, whose counts smooth its own: the
// hour's neighbours (NearHours of them), then the browser's previous major
// versions (NearVersions), so that an update is not a new browser.
const (
	NearHours    = 8
	NearVersions = 2
	NumNear      = NearHours + NearVersions
)

// NearFeature is the table the query's Near[i] belongs to.
func NearFeature(i int) Feature {
	if i < NearHours {
		return Hour
	}
	return Browser
}

// The weights of the neighbouring bins in a user's smoothed hour count:
// a login an hour off the usual one is half as usual, the same hour on
// another day a quarter. So a user seen only on weekdays at nine is not
// "new" at ten, nor at nine on Saturday.
const (
	weightAdjacent = 0.5
	weightSameHour = 0.25
)

// FNV-1a, 64 bits: stable across processes and instances (the keys are
// shared through Redis), fast, and allocation-free. It is not collision
// resistant, which does not matter here: a value an attacker chooses (a
// user agent, a country through a VPN) is one they could copy outright,
// and one they cannot choose (their address, their network) leaves them
// no way to search for a collision.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// featureSeed starts each feature's hash with its code, so equal values of
// two features (the ASN 7 and the hour 7) never share a key.
func featureSeed(f Feature) uint64 {
	return (fnvOffset ^ uint64(f.Code())) * fnvPrime
}

// keyIP is the key of an address: an IPv4 (or IPv4-mapped) address whole,
// an IPv6 address by its /64. Its high 32 bits are those of its network's
// key (keyASN), so that a store can tell the addresses of one network.
func keyIP(ip netip.Addr, asn uint32) uint64 {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	b := ip.As16()
	return keyASN(asn)&^0xffffffff | fnvBytes(featureSeed(IP), b[:])&0xffffffff
}

func keyASN(asn uint32) uint64 {
	b := [4]byte{byte(asn >> 24), byte(asn >> 16), byte(asn >> 8), byte(asn)}
	return fnvBytes(featureSeed(ASN), b[:])
}

// keyCountry folds ASCII case: GeoIP databases say "DE", a caller might
// say "de".
func keyCountry(c string) uint64 {
	var b [8]byte
	n := copy(b[:], c)
	for i := 0; i < n; i++ {
		if 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return fnvBytes(featureSeed(Country), b[:n])
}
