package caddymodule

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/behaviour"
	"github.com/vigilsec/vigil/detect/coordinated"
	"github.com/vigilsec/vigil/detect/geo"
	"github.com/vigilsec/vigil/detect/risk"
)

// LocationConfig judges where users log in from (it needs the global
// geoip option). Places are learned from successful logins only.
type LocationConfig struct {
	// Learn is the number of successful logins before a user's places
	// count; until then nothing is new. Default 3.
	Learn int `json:"learn,omitempty"`
	// Remember is how many distinct recent places are kept per user.
	// Default 10.
	Remember int `json:"remember,omitempty"`
	// New says what makes a place new: "country" (the default), "city"
	// (farther than NewCityKm from every known place) and/or "asn".
	New []string `json:"new,omitempty"`
	// NewCityKm is the distance for "city". Default 100.
	NewCityKm float64 `json:"new_city_km,omitempty"`
	// TravelKmh is the speed above which two successive logins are
	// impossible travel: the distance minus both accuracy radii, over the
	// time between them. Default 1000.
	TravelKmh float64 `json:"travel_kmh,omitempty"`
	// TravelMinKm ignores shorter distances (after the radii). Default 100.
	TravelMinKm float64 `json:"travel_min_km,omitempty"`
	// Trusted ranges (corporate egress, VPN) are never new and never
	// travel.
	Trusted []string `json:"trusted,omitempty"`
	// OnTravel is "alert" (default) or "revoke": IMPOSSIBLE_TRAVEL then
	// also ends the user's sessions, and SESSION_ANOMALY revokes the token.
	OnTravel string `json:"on_travel,omitempty"`
}

// RiskConfig scores each login against the user's history (Freeman et
// al., NDSS 2016) on a 0–100 scale (docs/risk.md). A threshold of 0 turns
// its step off. The Caddyfile's bare `risk` sets Alert and Challenge to
// their defaults (30 and 16) and leaves Block off.
type RiskConfig struct {
	// Alert raises SUSPICIOUS_LOGIN for a successful login at or above
	// it, with the score and the features that drove it.
	Alert int `json:"alert,omitempty"`
	// Challenge forwards a login at or above it with its score in Header,
	// so the app can ask for a second factor. Below it the header is
	// absent, and a client-sent one never reaches the app.
	Challenge int `json:"challenge,omitempty"`
	// Header carries the score. Default X-Vigil-Risk.
	Header string `json:"header,omitempty"`
	// Block refuses a login at or above it with 403 (counted as a failed
	// attempt) and raises SUSPICIOUS_LOGIN.
	Block int `json:"block,omitempty"`
	// Learn is the number of successful logins before a user's profile
	// counts (default 5): until then the score is 0.
	Learn int `json:"learn,omitempty"`
}

// SprayConfig is "<ips> ips <accounts> accounts within <dur> [tighten <n>]":
// failures from at least IPs sources over at least Accounts accounts,
// each tried only a few times, site-wide, raise PASSWORD_SPRAY.
type SprayConfig struct {
	IPs      int            `json:"ips"`
	Accounts int            `json:"accounts"`
	Within   caddy.Duration `json:"within"`
	// Tighten lowers the lockout threshold to this many failures while a
	// spray is on (0: the lockout is unchanged).
	Tighten int `json:"tighten,omitempty"`
}

// DistributedConfig is "<ips> ips <attempts> attempts within <dur>": one
// account failing from at least IPs sources and Attempts times raises
// DISTRIBUTED_BRUTE_FORCE and locks the account (for the lockout's
// duration, 15m without one).
type DistributedConfig struct {
	IPs      int            `json:"ips"`
	Attempts int            `json:"attempts"`
	Within   caddy.Duration `json:"within"`
}

// defaultDistributedLock is the lock of a distributed brute force on a
// site without a lockout policy.
const defaultDistributedLock = 15 * time.Minute

func (l *LocationConfig) validate() error {
	if l == nil {
		return nil
	}
	if l.Learn < 0 || l.Remember < 0 || l.NewCityKm < 0 || l.TravelKmh < 0 || l.TravelMinKm < 0 {
		return errors.New("location: values must not be negative")
	}
	if l.Remember > geo.MaxRemember {
		return fmt.Errorf("location: remember %d: at most %d places are kept per user", l.Remember, geo.MaxRemember)
	}
	for _, n := range l.New {
		if n != "country" && n != "city" && n != "asn" {
			return fmt.Errorf("location: new %q: want country, city or asn", n)
		}
	}
	if l.OnTravel != "" && l.OnTravel != "alert" && l.OnTravel != "revoke" {
		return fmt.Errorf("location: on_travel %q: want alert or revoke", l.OnTravel)
	}
	_, err := l.trusted()
	return err
}

func (l *LocationConfig) trusted() ([]netip.Prefix, error) {
	p, err := parsePrefixes(l.Trusted)
	if err != nil {
		return nil, fmt.Errorf("location: trusted: %w", err)
	}
	return p, nil
}

func (r *RiskConfig) validate() error {
	if r == nil {
		return nil
	}
	for _, t := range []struct {
		name string
		v    int
	}{{"alert", r.Alert}, {"challenge", r.Challenge}, {"block", r.Block}} {
		if t.v < 0 || t.v > 100 {
			return fmt.Errorf("risk: %s %d: want a score from 0 to 100", t.name, t.v)
		}
	}
	if r.Alert == 0 && r.Challenge == 0 && r.Block == 0 {
		return errors.New("risk: set at least one of alert, challenge and block")
	}
	if r.Block > 0 && r.Challenge > 0 && r.Block < r.Challenge {
		return fmt.Errorf("risk: block (%d) is below challenge (%d)", r.Block, r.Challenge)
	}
	if r.Learn < 0 {
		return errors.New("risk: learn must not be negative")
	}
	return nil
}

// validateBehaviour checks the geography and behaviour options.
func (h *Handler) validateBehaviour() error {
	if err := h.Location.validate(); err != nil {
		return err
	}
	if err := h.Risk.validate(); err != nil {
		return err
	}
	if s := h.Spray; s != nil && (s.IPs < 2 || s.Accounts < 2 || s.Within <= 0 || s.Tighten < 0) {
		return errors.New("spray: needs at least 2 ips, 2 accounts and a positive window")
	}
	if s := h.Distributed; s != nil && (s.IPs < 2 || s.Attempts < 1 || s.Within <= 0) {
		return errors.New("distributed: needs at least 2 ips, 1 attempt and a positive window")
	}
	if err := h.BlockNetwork.validate("block_network"); err != nil {
		return err
	}
	if (h.Location != nil || h.Risk != nil || h.Spray != nil || h.Distributed != nil || h.BlockNetwork != nil) && len(h.Logins) == 0 {
		return errors.New("location, risk, spray, distributed and block_network judge logins: add a login route")
	}
	return nil
}

// behaviourParts are the detectors of the geography and behaviour
// options, built before the pipeline so the login detector can ask the
// coordinated one whether a spray tightens the lockout.
type behaviourParts struct {
	detector    *behaviour.Detector // nil when no option is set
	coordinated *coordinated.Detector
	siteKey     string
}

// defaultSiteKey names a site without a `site` name for its site-wide
// counts: the Host header would let an attacker split them.
const defaultSiteKey = "default"

// buildBehaviour builds the location, risk and coordinated-attack
// detectors the site's options ask for.
func (h *Handler) buildBehaviour(log *slog.Logger) (behaviourParts, error) {
	var parts behaviourParts
	if h.Location == nil && h.Risk == nil && h.Spray == nil && h.Distributed == nil && h.BlockNetwork == nil {
		return parts, nil
	}
	st, loc := h.app.store(), h.app.locator
	parts.siteKey = h.Site
	if parts.siteKey == "" {
		parts.siteKey = defaultSiteKey
	}
	o := behaviour.Options{Actor: h.responder, Pool: h.pool, MonitorOnly: h.MonitorOnly, Logger: log, Site: parts.siteKey}
	if loc != nil {
		o.Locator = loc
	}
	if h.Location != nil {
		if loc == nil {
			return parts, errors.New("location: needs the global geoip option (a City or Country database)")
		}
		places, err := h.Location.detector(st.Profiles, h.responder, log)
		if err != nil {
			return parts, err
		}
		o.Places = places
	}
	if r := h.Risk; r != nil {
		if st.Risk == nil {
			return parts, errors.New("risk: the store keeps no risk profiles")
		}
		model, err := risk.New(st.Risk, risk.Options{Learn: r.Learn})
		if err != nil {
			return parts, err
		}
		o.Risk = model
		o.Thresholds = behaviour.Thresholds{Alert: r.Alert, Challenge: r.Challenge, Block: r.Block, Header: r.Header}
		if loc == nil {
			h.logger.Warn("risk without the global geoip option: logins are scored on address, browser and hour, without country and network")
		}
	}
	if h.Spray != nil || h.Distributed != nil || h.BlockNetwork != nil {
		cd, err := coordinated.New(h.coordinatedOptions(log))
		if err != nil {
			return parts, err
		}
		o.Coordinated, parts.coordinated = cd, cd
	}
	d, err := behaviour.New(o)
	parts.detector = d
	return parts, err
}

func (l *LocationConfig) detector(profiles detect.Profiles, actor detect.Actor, log *slog.Logger) (*geo.Detector, error) {
	trusted, err := l.trusted()
	if err != nil {
		return nil, err
	}
	return geo.New(geo.Options{
		Learn: l.Learn, Remember: l.Remember,
		NewCountry: slices.Contains(l.New, "country"), NewASN: slices.Contains(l.New, "asn"),
		NewCityKm: l.cityKm(),
		TravelKmh: l.TravelKmh, TravelMinKm: l.TravelMinKm,
		Trusted: trusted, Revoke: l.OnTravel == "revoke",
		Profiles: profiles, Actor: actor, Logger: log,
	})
}

// cityKm is the distance that makes a city new, when "city" is asked for.
func (l *LocationConfig) cityKm() float64 {
	if !slices.Contains(l.New, "city") {
		return 0
	}
	if l.NewCityKm > 0 {
		return l.NewCityKm
	}
	return 100
}

func (h *Handler) coordinatedOptions(log *slog.Logger) coordinated.Options {
	st := h.app.store()
	o := coordinated.Options{Windows: st.Windows, Sums: st.Sums, Actor: h.responder, Logger: log}
	if s := h.Spray; s != nil {
		o.Spray = &coordinated.Spray{IPs: s.IPs, Accounts: s.Accounts, Within: time.Duration(s.Within), Tighten: s.Tighten}
	}
	if c := h.Distributed; c != nil {
		lock := detect.Ban{Base: defaultDistributedLock, Max: 24 * time.Hour}
		if h.Lockout != nil {
			lock = h.Lockout.ban()
		}
		o.Distributed = &coordinated.Distributed{IPs: c.IPs, Attempts: c.Attempts, Within: time.Duration(c.Within), Lock: lock}
	}
	if h.BlockNetwork != nil {
		o.Network = &coordinated.NetworkBan{Ban: h.BlockNetwork.ban()}
	}
	return o
}

// tighten is the login detector's view of a spray's tightened lockout.
func (p behaviourParts) tighten() func(site string, now time.Time) int {
	cd := p.coordinated
	if cd == nil {
		return nil
	}
	key := p.siteKey
	return func(_ string, now time.Time) int { return cd.Lockout(key, now, int(^uint(0)>>1)) }
}
