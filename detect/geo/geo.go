// Package geo judges unusual locations, impossible travel and session
// binding from GeoIP places. It is pure detection: the caller locates the
// address (detect.Facts.Place) and hands the facts over on a background
// goroutine; findings go to the detect.Actor.
//
//   - Login learns the places of a user's successful logins and raises
//     UNUSUAL_LOCATION for a place unlike every remembered one, and
//     IMPOSSIBLE_TRAVEL against the previous successful login.
//   - Session binds a verified token to the country and network of its
//     first use and raises SESSION_ANOMALY when it shows up elsewhere.
//
// State lives in detect.Profiles: kind "places" per user (keyed by
// detect.AccountKey) and kind "session" per token (keyed by
// detect.HashID("jti", id)).
package geo

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Profile kinds this package stores.
const (
	PlacesKind  detect.ProfileKind = "places"
	SessionKind detect.ProfileKind = "session"
)

// Defaults of the options left at zero.
const (
	DefaultLearn       = 3
	DefaultRemember    = 10
	DefaultTravelKmh   = 1000
	DefaultTravelMinKm = 100
	DefaultForget      = 90 * 24 * time.Hour
	// MaxRemember bounds Remember so a user's record stays far below
	// detect.MaxProfileBytes.
	MaxRemember = 50
	// DefaultSessionCache is how many tokens the local cache of Session
	// holds (last address and verdict per token).
	DefaultSessionCache = 10000
	// defaultSessionTTL is how long a token without an expiry stays bound.
	defaultSessionTTL = 24 * time.Hour
)

// Options configure a Detector.
type Options struct {
	// Learn is how many successful logins (from places that teach) a user
	// needs before a new place is reported; default 3.
	Learn int
	// Remember is how many distinct places are kept per user, the most
	// recently seen; default 10, at most MaxRemember.
	Remember int
	// What makes a place new; when none is set, a new country.
	NewCountry bool
	NewCityKm  float64 // > 0: a place farther than this (minus accuracy radii) from every known place
	NewASN     bool
	// TravelKmh is the fastest believable speed between two logins;
	// default 1000. TravelMinKm is the least distance (minus both
	// accuracy radii) that counts as a journey; default 100.
	TravelKmh   float64
	TravelMinKm float64
	// Trusted ranges (corporate egress, VPN) are never new, never travel
	// and never learned.
	Trusted []netip.Prefix
	// Revoke: IMPOSSIBLE_TRAVEL also ends the user's sessions and
	// SESSION_ANOMALY also revokes the token.
	Revoke   bool
	Profiles detect.Profiles
	Actor    detect.Actor
	// Forget is how long a user's places are kept after their last
	// successful login; default 90 days.
	Forget time.Duration
	// SessionCache bounds the local token cache; default
	// DefaultSessionCache.
	SessionCache int
	Logger       *slog.Logger
}

// Detector judges places. It is safe for concurrent use.
type Detector struct {
	opt     Options
	trusted []netip.Prefix // IPv4 ranges unmapped, all masked
	cache   *sessionCache
}

// New validates o and fills in its defaults.
func New(o Options) (*Detector, error) {
	if o.Profiles == nil {
		return nil, errors.New("geo: no profile store")
	}
	if o.Actor == nil {
		return nil, errors.New("geo: no actor")
	}
	if err := fillDefaults(&o); err != nil {
		return nil, err
	}
	d := &Detector{opt: o, cache: newSessionCache(o.SessionCache)}
	for _, p := range o.Trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("geo: invalid trusted range %v", p)
		}
		d.trusted = append(d.trusted, unmapPrefix(p))
	}
	return d, nil
}

func fillDefaults(o *Options) error {
	switch {
	case o.Learn < 0:
		return fmt.Errorf("geo: learn %d is negative", o.Learn)
	case o.Remember < 0 || o.Remember > MaxRemember:
		return fmt.Errorf("geo: remember %d is outside 1..%d", o.Remember, MaxRemember)
	case badNumber(o.NewCityKm), badNumber(o.TravelKmh), badNumber(o.TravelMinKm):
		return errors.New("geo: city, travel speed and travel distance must be finite and not negative")
	case o.Forget < 0:
		return fmt.Errorf("geo: forget %v is negative", o.Forget)
	case o.SessionCache < 0:
		return fmt.Errorf("geo: session cache %d is negative", o.SessionCache)
	}
	if o.Learn == 0 {
		o.Learn = DefaultLearn
	}
	if o.Remember == 0 {
		o.Remember = DefaultRemember
	}
	if !o.NewCountry && o.NewCityKm == 0 && !o.NewASN {
		o.NewCountry = true
	}
	if o.TravelKmh == 0 {
		o.TravelKmh = DefaultTravelKmh
	}
	if o.TravelMinKm == 0 {
		o.TravelMinKm = DefaultTravelMinKm
	}
	if o.Forget == 0 {
		o.Forget = DefaultForget
	}
	if o.SessionCache == 0 {
		o.SessionCache = DefaultSessionCache
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func badNumber(x float64) bool { return x < 0 || math.IsNaN(x) || math.IsInf(x, 0) }

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96), so an
// IPv4 range written either way matches IPv4 clients, and masks it.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// isTrusted reports whether ip is in a trusted range (an IPv4-mapped
// address matches as its IPv4 form).
func (d *Detector) isTrusted(ip netip.Addr) bool {
	if len(d.trusted) == 0 || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range d.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// counts reports whether a place at ip may be judged at all: known to the
// database, of an address that can have a location (never a private or
// loopback one, whatever a database says) and not in a trusted range.
func (d *Detector) counts(ip netip.Addr, p detect.Place) bool {
	if !p.Known() {
		return false
	}
	if ip.IsValid() {
		if _, ok := detect.Locatable(ip); !ok {
			return false
		}
	}
	return !d.isTrusted(ip)
}
