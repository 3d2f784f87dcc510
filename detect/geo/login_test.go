package geo

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geotest"
)

func TestImpossibleTravel(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{})
		f.login("alice", geotest.Berlin, t0)
		f.login("alice", geotest.NewYork, t0.Add(10*time.Minute))
		got := f.expect(detect.ImpossibleTravel)[0]
		d := got.Details
		if d["from"] != "Berlin, DE (AS3320 Deutsche Telekom AG)" || got.Facts.Place.Country != "US" || got.Facts.User != "alice" {
			t.Fatalf("finding %+v", got)
		}
		// 6385 km minus both 20 km radii, in a sixth of an hour
		if km := d["km"].(float64); km < 6300 || km > 6400 || d["kmh"].(float64) < 30000 || d["hours"].(float64) != 0.17 {
			t.Fatalf("details %v", d)
		}
		if got.Action != detect.NoAction || got.Severity != 0 || !got.Time.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("action %v severity %v time %v", got.Action, got.Severity, got.Time)
		}
	})
}

func TestTravelRevokesWithRevoke(t *testing.T) {
	f := newFixture(t, newMem(), Options{Revoke: true})
	f.login("alice", geotest.Berlin, t0)
	f.login("alice", geotest.Tokyo, t0.Add(time.Hour))
	got := f.expect(detect.ImpossibleTravel)[0]
	if got.Action != detect.EndSessions || got.Target != "alice" {
		t.Fatalf("action %v target %q", got.Action, got.Target)
	}
}

func TestPossibleTravel(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{})
		// Potsdam is 27 km away; the accuracy circles overlap
		f.login("bob", geotest.Berlin, t0)
		f.login("bob", geotest.Potsdam, t0.Add(time.Minute))
		f.login("bob", geotest.Berlin, t0.Add(2*time.Minute))
		// Munich is 504 km away: fine in an hour, not in ten minutes
		f.login("bob", geotest.Munich, t0.Add(62*time.Minute))
		f.expect()
		f.login("bob", geotest.Berlin, t0.Add(72*time.Minute))
		f.expect(detect.ImpossibleTravel)
		// New York a day later: no travel (a new country, though)
		f.login("bob", geotest.NewYork, t0.Add(25*time.Hour))
		f.expect(detect.UnusualLocation)
	})
}

func TestTravelOutOfOrder(t *testing.T) {
	f := newFixture(t, newMem(), Options{})
	// background work may see the later login first
	f.login("carol", geotest.NewYork, t0.Add(10*time.Minute))
	f.login("carol", geotest.Berlin, t0)
	f.expect(detect.ImpossibleTravel)
	if last := f.profile("carol").Last; last.Place.City != "New York" {
		t.Fatalf("last login %+v, want New York (the later one)", last)
	}
	// the same second: no division by zero, a finite speed
	f.login("dave", geotest.Berlin, t0)
	f.login("dave", geotest.Sydney, t0)
	if kmh := f.expect(detect.ImpossibleTravel)[0].Details["kmh"].(float64); math.IsInf(kmh, 0) || math.IsNaN(kmh) {
		t.Fatalf("kmh %v", kmh)
	}
}

func TestUnusualLocation(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{})
		// during learning (two logins behind) a new country says nothing
		f.learn("erin", geotest.Berlin, 2, t0)
		f.login("erin", geotest.Paris, t0.Add(24*time.Hour))
		f.expect()
		// after learning it does
		f.learn("frank", geotest.Berlin, 3, t0)
		f.login("frank", geotest.Potsdam, t0.Add(24*time.Hour)) // same country
		f.expect()
		f.login("frank", geotest.Paris, t0.Add(48*time.Hour))
		got := f.expect(detect.UnusualLocation)[0]
		d := got.Details
		if !slices.Equal(d["new"].([]string), []string{"country"}) || d["place"] != "Paris, FR (AS3215 Orange S.A.)" ||
			!slices.Equal(d["known"].([]string), []string{"Potsdam, DE (AS3209)", "Berlin, DE (AS3320)"}) || d["logins"] != 4 {
			t.Fatalf("details %v", d)
		}
		if got.Facts.Place.City != "Paris" || got.Facts.IP != geotest.Paris {
			t.Fatalf("facts %+v", got.Facts)
		}
		// learned: Paris is known now
		f.login("frank", geotest.Paris, t0.Add(72*time.Hour))
		f.expect()
		if c := cities(f.profile("frank")); !slices.Equal(c, []string{"Paris", "Potsdam", "Berlin"}) {
			t.Fatalf("places %v", c)
		}
	})
}

func TestNewCityAndASN(t *testing.T) {
	f := newFixture(t, newMem(), Options{NewCityKm: 100, NewASN: true})
	f.learn("gina", geotest.Berlin, 3, t0)
	f.login("gina", geotest.Potsdam, t0.Add(24*time.Hour)) // near, another ISP
	if d := f.expect(detect.UnusualLocation)[0].Details; !slices.Equal(d["new"].([]string), []string{"asn"}) {
		t.Fatalf("details %v", d)
	}
	f.login("gina", geotest.Munich, t0.Add(48*time.Hour)) // far, a known ISP
	if d := f.expect(detect.UnusualLocation)[0].Details; !slices.Equal(d["new"].([]string), []string{"city"}) {
		t.Fatalf("details %v", d)
	}
	// country only when asked: a new country is not new by itself here
	// (Paris is far and on a new ASN, so it is new for those reasons)
	f.login("gina", geotest.Paris, t0.Add(72*time.Hour))
	if d := f.expect(detect.UnusualLocation)[0].Details; !slices.Equal(d["new"].([]string), []string{"city", "asn"}) {
		t.Fatalf("details %v", d)
	}
}

func TestTrustedNeverNew(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		trusted := []netip.Prefix{netip.MustParsePrefix("::ffff:198.51.100.0/120"), netip.MustParsePrefix("2001:db8:1::/48")}
		f := newFixture(t, p, Options{Trusted: trusted})
		f.learn("hank", geotest.Berlin, 3, t0)
		f.login("hank", geotest.NewYork, t0.Add(5*time.Minute))
		f.login("hank", netip.AddrFrom16(geotest.NewYork.As16()), t0.Add(6*time.Minute)) // IPv4-mapped
		f.login("hank", geotest.Tokyo, t0.Add(7*time.Minute))
		f.expect()
		pr := f.profile("hank")
		if pr.Logins != 3 || !slices.Equal(cities(pr), []string{"Berlin"}) || pr.Last.Place.City != "Berlin" {
			t.Fatalf("profile %+v", pr)
		}
		// and the trusted logins were no travel baseline either
		f.login("hank", geotest.Sydney, t0.Add(30*24*time.Hour))
		f.expect(detect.UnusualLocation)
	})
}

func TestHostingNotBaseline(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{})
		f.learn("ivy", geotest.Berlin, 3, t0)
		// a German VPN exit: not a new country, not travel, not learned
		f.login("ivy", geotest.Hosting, t0.Add(24*time.Hour))
		f.expect()
		// New York ten minutes after the VPN, a day after Berlin: a new
		// country, but no travel (the VPN exit is no baseline)
		f.login("ivy", geotest.NewYork, t0.Add(24*time.Hour+10*time.Minute))
		f.expect(detect.UnusualLocation)
		// nor a destination: the exit says nothing of where ivy is
		f.login("ivy", geotest.Hosting, t0.Add(24*time.Hour+11*time.Minute))
		f.expect()
		pr := f.profile("ivy")
		if pr.Logins != 4 || !slices.Equal(cities(pr), []string{"New York", "Berlin"}) || !pr.Last.Place.Hosting {
			t.Fatalf("profile %+v", pr)
		}
	})
}

func TestUnknownNeverNew(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{})
		f.learn("jack", geotest.Berlin, 3, t0)
		at := t0.Add(time.Minute)
		f.login("jack", geotest.Unknown, at) // not in the database
		f.login("jack", netip.MustParseAddr("10.1.2.3"), at)
		f.login("jack", netip.MustParseAddr("::1"), at)
		// a private address with a place a confused database gave it
		forged := f.facts("jack", netip.MustParseAddr("192.168.1.1"))
		forged.Place = f.loc.Locate(geotest.Sydney)
		f.d.Login(context.Background(), forged, at)
		f.expect()
		// a country-only place: not new (DE known), no coordinates to travel
		f.login("jack", geotest.CountryOnly, at)
		f.expect()
		if pr := f.profile("jack"); pr.Logins != 4 {
			t.Fatalf("profile %+v", pr)
		}
	})
}

func TestConcurrentLogins(t *testing.T) {
	shared(t, func(t *testing.T, a, b detect.Profiles) {
		f := newFixture(t, a, Options{})
		g := newFixture(t, b, Options{})
		g.rec = f.rec
		g.d.opt.Actor = f.rec
		ips := []netip.Addr{geotest.Berlin, geotest.Potsdam, geotest.Munich}
		const workers, each = 12, 5
		var wg sync.WaitGroup
		for w := range workers {
			inst := []*fixture{f, g}[w%2]
			wg.Go(func() {
				for i := range each {
					n := w*each + i
					inst.login("kate", ips[n%len(ips)], t0.Add(time.Duration(n)*time.Hour))
				}
			})
		}
		wg.Wait()
		pr := f.profile("kate")
		sum := 0
		for _, k := range pr.Places {
			sum += k.Logins
		}
		if pr.Logins != workers*each || sum != workers*each || len(pr.Places) != 3 {
			t.Fatalf("profile %+v", pr)
		}
		for _, g := range f.rec.take() {
			if g.Type != detect.ImpossibleTravel { // out-of-order hours can make Munich look fast
				t.Fatalf("unexpected %v", g.Type)
			}
		}
	})
}

func TestRememberBound(t *testing.T) {
	f := newFixture(t, newMem(), Options{Remember: 2})
	for i, ip := range []netip.Addr{geotest.Berlin, geotest.Paris, geotest.Tokyo, geotest.Sydney} {
		f.login("liam", ip, t0.Add(time.Duration(i)*30*24*time.Hour))
	}
	if c := cities(f.profile("liam")); !slices.Equal(c, []string{"Sydney", "Tokyo"}) {
		t.Fatalf("places %v", c)
	}
	// Berlin was forgotten: new again
	f.rec.take()
	f.login("liam", geotest.Berlin, t0.Add(200*24*time.Hour))
	f.expect(detect.UnusualLocation)
}

func TestRecordBounded(t *testing.T) {
	f := newFixture(t, newMem(), Options{Remember: MaxRemember, NewASN: true})
	long := strings.Repeat("x\x00", 2500)
	for i := range MaxRemember + 5 {
		fa := detect.Facts{User: "mia", IP: geotest.Berlin, Place: detect.Place{
			Country: fmt.Sprintf("C%d", i), City: "<&>\u2028" + long, Org: long + "é",
			Lat: float64(i), Lon: 1, RadiusKm: math.Inf(1), ASN: uint(i + 1)}}
		f.d.Login(context.Background(), fa, t0.Add(time.Duration(i)*time.Hour))
	}
	b, err := f.p.Get(context.Background(), PlacesKind, detect.AccountKey("mia"))
	if err != nil || len(b) > maxRecordBytes || len(b) < 1000 {
		t.Fatalf("record %d bytes, %v", len(b), err)
	}
	pr := f.profile("mia")
	if pr.Logins != MaxRemember+5 || len(pr.Places) == 0 || len(pr.Places[0].Place.City) > maxText || pr.Places[0].Place.RadiusKm != halfEarthKm {
		t.Fatalf("profile: %d logins, %d places, %+v", pr.Logins, len(pr.Places), pr.Places[0])
	}
}
