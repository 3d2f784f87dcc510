package caddymodule

import (
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/behaviour"
	"github.com/vigilsec/vigil/detect/coordinated"
	"github.com/vigilsec/vigil/detect/geo"
	"github.com/vigilsec/vigil/detect/risk"
)

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
