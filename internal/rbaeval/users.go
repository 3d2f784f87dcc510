package rbaeval

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"time"
)

// place is somewhere a user logs in from: a network and, except on a
// phone's mobile data, one address.
type place struct {
	net *network
	ip  netip.Addr
}

// addr is the address a login from p comes from: a mobile carrier hands
// out a new one for every session.
func (p place) addr(r *rand.Rand) netip.Addr {
	if p.net.kind == mobile {
		return p.net.addr(r)
	}
	return p.ip
}

// user is one legitimate user and their habits.
type user struct {
	id      int
	home    *country
	house   place   // home broadband; the address changes with the lease
	lease   float64 // mean days between address changes
	work    *place  // nil: no office
	carrier place   // the phone's mobile data
	thirds  []place // friends, cafés, a gym: rarely, some more than others
	devices []*device
	rate    float64   // logins a day
	peaks   []float64 // preferred local hours
	trip    *trip
}

// trip is a journey: hours follow the destination's time zone; the
// laptop uses the hotel's network, the phone roams (its carrier, its home
// country's address: mobile data is routed home) or the hotel's Wi-Fi.
type trip struct {
	until time.Time
	dest  *country
	hotel place
}

func (w *world) newUser(r *rand.Rand, id int, cfg *Config) *user {
	c := w.users[pickWeighted(r, w.weights)]
	u := &user{id: id, home: c}
	home := c.pick(r, residential)
	u.house = place{home, home.addr(r)}
	u.lease = []float64{7, 30, 30, 90, 365}[r.IntN(5)]
	if r.Float64() < 0.6 {
		kind := business
		net := c.pick(r, kind)
		u.work = &place{net, net.addr(r)}
	}
	u.carrier = place{net: c.pick(r, mobile)}
	for range cfg.ThirdPlaces {
		kind := []netKind{residential, business}[r.IntN(2)]
		n := c.pick(r, kind)
		u.thirds = append(u.thirds, place{n, n.addr(r)})
	}
	// devices: most have a computer and a phone, some one of them, some a tablet too
	if r.Float64() < 0.8 {
		u.devices = append(u.devices, &device{spec: pickAgent(r, desktop)})
	}
	if r.Float64() < 0.85 || len(u.devices) == 0 {
		u.devices = append(u.devices, &device{spec: pickAgent(r, phone)})
	}
	if r.Float64() < 0.2 {
		u.devices = append(u.devices, &device{spec: pickAgent(r, tablet)})
	}
	for _, d := range u.devices {
		if r.Float64() < 0.25 {
			d.lag = 1
		}
	}
	// 0.15 to 4 logins a day, log-uniform
	u.rate = 0.15 * math.Exp(r.Float64()*math.Log(4/0.15))
	peaks := []float64{7.5, 8.5, 9, 12.5, 13, 18, 19.5, 20.5, 21, 22}
	for range 1 + r.IntN(3) {
		u.peaks = append(u.peaks, peaks[r.IntN(len(peaks))])
	}
	return u
}

// localHour is when in the user's day a login happens: near one of their
// peaks mostly, at any waking hour sometimes, at any hour rarely.
func (u *user) localHour(r *rand.Rand, weekend bool) float64 {
	switch x := r.Float64(); {
	case x < 0.02:
		return r.Float64() * 24
	case x < 0.10:
		return 7 + r.Float64()*17
	}
	h := u.peaks[r.IntN(len(u.peaks))] + r.NormFloat64()*0.75
	if weekend {
		h += 1.5
	}
	return math.Mod(h+24, 24)
}

// tz is the user's UTC offset at the moment.
func (u *user) tz() int {
	if u.trip != nil {
		return u.trip.dest.tz
	}
	return u.home.tz
}

// dayEvents moves the user's life on by a day: a new home address when the
// lease ends, a trip starting or ending, a device replaced.
func (w *world) dayEvents(r *rand.Rand, u *user, day time.Time, cfg *Config) {
	if r.Float64() < 1/u.lease {
		u.house.ip = u.house.net.addr(r)
	}
	if u.trip != nil && !day.Before(u.trip.until) {
		u.trip = nil
	}
	if u.trip == nil && r.Float64() < cfg.TripsPerDay {
		dest := u.home
		if r.Float64() < 0.5 {
			for dest == u.home {
				dest = w.users[pickWeighted(r, w.weights)]
			}
		}
		hotel := dest.pick(r, business)
		u.trip = &trip{until: day.Add(time.Duration(2+r.IntN(8)) * 24 * time.Hour), dest: dest, hotel: place{hotel, hotel.addr(r)}}
	}
	for i, d := range u.devices {
		if r.Float64() < 1.0/500 {
			kind := d.spec.device
			nd := &device{spec: d.spec}
			if r.Float64() < 0.3 {
				nd.spec = pickAgent(r, kind)
			}
			u.devices[i] = nd
		}
	}
}

// where picks the device and the place of one login.
func (u *user) where(r *rand.Rand, weekday, office bool, cfg *Config) (*device, place) {
	weights := make([]float64, len(u.devices))
	for i, d := range u.devices {
		weights[i] = []float64{0.5, 0.4, 0.1}[d.spec.device]
	}
	d := u.devices[pickWeighted(r, weights)]
	if u.trip != nil {
		if d.spec.device == phone && r.Float64() < 0.5 {
			return d, u.carrier
		}
		return d, u.trip.hotel
	}
	if len(u.thirds) > 0 && r.Float64() < cfg.ThirdPlaceRate {
		w := make([]float64, len(u.thirds))
		for i := range w {
			w[i] = 1 / float64(i+1)
		}
		return d, u.thirds[pickWeighted(r, w)]
	}
	atWork := u.work != nil && weekday && office
	switch d.spec.device {
	case desktop:
		if atWork && r.Float64() < 0.7 {
			return d, *u.work
		}
		return d, u.house
	case phone:
		switch x := r.Float64(); {
		case x < 0.45:
			return d, u.carrier
		case x < 0.6 && atWork:
			return d, *u.work
		}
		return d, u.house
	}
	if r.Float64() < 0.1 {
		return d, u.carrier
	}
	return d, u.house
}

// knows reports whether the user has logged in, or may, from n: a
// targeted attacker comes from another network (one inside the victim's
// own provider is seen only through the address).
func (u *user) knows(n *network) bool {
	if n == u.house.net || n == u.carrier.net || u.work != nil && n == u.work.net {
		return true
	}
	for _, p := range u.thirds {
		if n == p.net {
			return true
		}
	}
	return u.trip != nil && n == u.trip.hotel.net
}
