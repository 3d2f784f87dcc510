package caddymodule

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/vigilsec/vigil/detect/geo"
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
