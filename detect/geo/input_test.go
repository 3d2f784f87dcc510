package geo

import (
	"context"
	"encoding/json"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geotest"
)

func TestNewValidates(t *testing.T) {
	ok := Options{Profiles: newMem(), Actor: &recorder{}}
	bad := map[string]func(o *Options){
		"no store":        func(o *Options) { o.Profiles = nil },
		"no actor":        func(o *Options) { o.Actor = nil },
		"negative learn":  func(o *Options) { o.Learn = -1 },
		"remember":        func(o *Options) { o.Remember = MaxRemember + 1 },
		"NaN city":        func(o *Options) { o.NewCityKm = math.NaN() },
		"infinite speed":  func(o *Options) { o.TravelKmh = math.Inf(1) },
		"negative min":    func(o *Options) { o.TravelMinKm = -1 },
		"negative forget": func(o *Options) { o.Forget = -time.Hour },
		"invalid range":   func(o *Options) { o.Trusted = []netip.Prefix{{}} },
	}
	for name, mod := range bad {
		o := ok
		mod(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	o := d.opt
	if o.Learn != 3 || o.Remember != 10 || !o.NewCountry || o.NewASN || o.TravelKmh != 1000 || o.TravelMinKm != 100 ||
		o.Forget != 90*24*time.Hour || o.Logger == nil {
		t.Fatalf("defaults %+v", o)
	}
	// an explicit criterion replaces the default
	if d, _ := New(Options{Profiles: newMem(), Actor: &recorder{}, NewASN: true}); d.opt.NewCountry {
		t.Fatal("new asn kept the country default")
	}
}

func TestMappedAddress(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{})
		mapped := netip.AddrFrom16(geotest.Berlin.As16())
		f.login("olga", mapped, t0)
		f.login("olga", geotest.NewYork, t0.Add(5*time.Minute))
		f.expect(detect.ImpossibleTravel)
		if c := cities(f.profile("olga")); len(c) != 2 || c[1] != "Berlin" {
			t.Fatalf("places %v", c)
		}
		f.use("m", mapped, t0)
		f.use("m", geotest.Berlin, t0) // the same place written the other way
		f.expect()
	})
}

func TestNaNCoordinates(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{NewCityKm: 50})
		nan := detect.Place{Country: "DE", City: "Nowhere", Lat: math.NaN(), Lon: math.NaN(), RadiusKm: math.NaN(), ASN: 3320}
		inf := detect.Place{Country: "DE", City: "Far", Lat: math.Inf(1), Lon: 10, RadiusKm: math.Inf(-1), ASN: 3320}
		f.learn("pia", geotest.Berlin, 3, t0)
		for i, pl := range []detect.Place{nan, inf, nan} {
			f.d.Login(context.Background(), detect.Facts{User: "pia", IP: geotest.Berlin, Place: pl}, t0.Add(time.Duration(i+1)*time.Minute))
		}
		f.expect()
		pr := f.profile("pia")
		if pr.Logins != 6 || len(pr.Places) != 3 {
			t.Fatalf("profile %+v", pr)
		}
		// the stored record is plain JSON: no NaN reached it
		b, _ := p.Get(context.Background(), PlacesKind, detect.AccountKey("pia"))
		if !json.Valid(b) {
			t.Fatalf("record %q", b)
		}
		// the baseline is still Berlin: New York right after is travel
		f.login("pia", geotest.NewYork, t0.Add(10*time.Minute))
		f.expect(detect.UnusualLocation, detect.ImpossibleTravel)
		// an event's details must encode
		f.login("pia", geotest.Sydney, t0.Add(10*time.Minute))
		for _, g := range f.rec.take() {
			if _, err := g.Facts.Event(g.Type, t0, g.Details).Canonical(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestCorruptRecords(t *testing.T) {
	stores(t, func(t *testing.T, p detect.Profiles) {
		f := newFixture(t, p, Options{})
		ctx := context.Background()
		put := func(kind detect.ProfileKind, key string, b []byte) {
			if _, err := p.Update(ctx, kind, key, time.Hour, func([]byte) []byte { return b }); err != nil {
				t.Fatal(err)
			}
		}
		garbage := [][]byte{
			[]byte("\x00\xff not json"), []byte(`{"v":2,"n":9}`), []byte(`{"v":1,"n":-5,"p":"x"}`),
			[]byte(`{"v":1,"n":7,"p":[{"c":"DE","la":1e308,"lo":-1e308,"r":-3,"t":-1}],"b":{"la":91,"lo":0,"t":1}}`),
			[]byte(`[]`), []byte(`null`), {},
		}
		for i, g := range garbage {
			user := "quinn" + string(rune('a'+i))
			put(PlacesKind, detect.AccountKey(user), g)
			if _, err := f.d.Profile(ctx, user); err != nil {
				t.Fatalf("%q: %v", g, err)
			}
			f.login(user, geotest.Berlin, t0)
			f.login(user, geotest.Potsdam, t0.Add(time.Minute))
			f.rec.take()
			if pr := f.profile(user); len(pr.Places) == 0 || pr.Places[0].Place.City != "Potsdam" {
				t.Fatalf("%q: profile %+v", g, pr)
			}
			// a corrupt session binding is a first use
			jti := "c" + user
			put(SessionKind, detect.HashID("jti", jti), g)
			f.use(jti, geotest.Berlin, t0)
			f.use(jti, geotest.Sydney, t0)
			f.expect(detect.SessionAnomaly)
		}
	})
}
