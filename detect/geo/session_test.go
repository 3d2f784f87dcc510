package geo

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geotest"
)

// use is a request carrying the token jti from ip at at.
func (f *fixture) use(jti string, ip netip.Addr, at time.Time) {
	fa := f.facts("nora", ip)
	fa.Session, fa.SessionKey = "nora", detect.AccountKey("nora")
	f.d.Session(context.Background(), fa, jti, t0.Add(time.Hour), at)
}

func TestSessionAnomaly(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{Revoke: true})
		at := t0
		step := func() time.Time { at = at.Add(time.Second); return at }
		f.use("tok-1", geotest.Berlin, step())
		f.use("tok-1", geotest.Munich, step()) // same country and network
		f.use("tok-1", geotest.Unknown, step())
		f.use("tok-1", netip.MustParseAddr("10.0.0.8"), step())
		f.expect()
		f.use("tok-1", geotest.NewYork, step())
		got := f.expect(detect.SessionAnomaly)[0]
		d := got.Details
		if !slices.Equal(d["changed"].([]string), []string{"country", "asn"}) ||
			d["bound"] != "Berlin, DE (AS3320 Deutsche Telekom AG)" || d["token"] != detect.HashID("jti", "tok-1") ||
			d["since"] != t0.Add(time.Second).Format(time.RFC3339) {
			t.Fatalf("details %v", d)
		}
		if got.Action != detect.EndSession || got.Target != "tok-1" || got.Facts.Place.Country != "US" || got.Facts.Session != "nora" {
			t.Fatalf("finding %+v", got)
		}
		// repeated use, from there or back home: no duplicate
		for range 5 {
			f.use("tok-1", geotest.NewYork, step())
			f.use("tok-1", geotest.Berlin, step())
		}
		f.expect()
		// another instance sharing the store agrees
		other := newFixture(t, p, Options{})
		other.use("tok-1", geotest.NewYork, step())
		other.expect()
		// the same country on another network is a new place
		f.use("tok-1", geotest.Potsdam, step())
		if d := f.expect(detect.SessionAnomaly)[0].Details; !slices.Equal(d["changed"].([]string), []string{"asn"}) {
			t.Fatalf("details %v", d)
		}
		// another token is bound on its own
		f.use("tok-2", geotest.NewYork, step())
		f.expect()
	})
}

func TestSessionWithoutRevoke(t *testing.T) {
	f := newFixture(t, newMem(), Options{})
	f.use("t", geotest.Paris, t0)
	f.use("t", geotest.Tokyo, t0.Add(time.Minute))
	if got := f.expect(detect.SessionAnomaly)[0]; got.Action != detect.NoAction || got.Target != "" {
		t.Fatalf("finding %+v", got)
	}
}

func TestSessionTrustedAndUnknown(t *testing.T) {
	f := newFixture(t, newMem(), Options{Trusted: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	// first located use decides the binding: unknown and trusted ones do not
	f.use("t", geotest.Unknown, t0)
	f.use("t", geotest.NewYork, t0)
	f.use("t", geotest.Berlin, t0)
	f.use("t", netip.AddrFrom16(geotest.NewYork.As16()), t0) // IPv4-mapped, trusted too
	f.use("t", geotest.NewYork, t0)
	f.expect()
	f.use("t", geotest.Sydney, t0)
	f.expect(detect.SessionAnomaly)
	// no jti, no address: nothing
	f.d.Session(context.Background(), f.facts("nora", geotest.Tokyo), "", t0.Add(time.Hour), t0)
	f.d.Session(context.Background(), detect.Facts{Place: f.loc.Locate(geotest.Tokyo)}, "t", t0.Add(time.Hour), t0)
	f.expect()
}

func TestSessionCacheSkipsStore(t *testing.T) {
	c := &counting{Profiles: newMem()}
	f := newFixture(t, c, Options{})
	f.use("t", geotest.Berlin, t0)
	if c.gets.Load() != 1 || c.updates.Load() != 1 {
		t.Fatalf("first use: %d gets, %d updates", c.gets.Load(), c.updates.Load())
	}
	before := c.trips()
	for i := range 100 {
		f.use("t", geotest.Berlin, t0.Add(time.Duration(i)*time.Second))
	}
	if c.trips() != before {
		t.Fatalf("%d store round trips for repeated use from one address", c.trips()-before)
	}
	// another address of the bound place: one read, no write
	f.use("t", geotest.Munich, t0)
	if c.gets.Load() != 2 || c.updates.Load() != 1 {
		t.Fatalf("another address: %d gets, %d updates", c.gets.Load(), c.updates.Load())
	}
	// past the token's expiry the cache forgets it
	f.use("t", geotest.Munich, t0.Add(2*time.Hour))
	if c.gets.Load() != 3 {
		t.Fatalf("after expiry: %d gets", c.gets.Load())
	}
}

func TestSessionCacheBounded(t *testing.T) {
	f := newFixture(t, newMem(), Options{SessionCache: 100})
	long := string(make([]byte, 1000))
	for i := range 1000 {
		f.use(long+string(rune('a'+i%26))+string(rune(i)), geotest.Berlin, t0)
	}
	if n := f.d.cache.len(); n > 100 || n < 50 {
		t.Fatalf("cache holds %d", n)
	}
	for k := range f.d.cache.entries {
		if len(k) > maxCachedID {
			t.Fatalf("cache key of %d bytes", len(k))
		}
	}
}
