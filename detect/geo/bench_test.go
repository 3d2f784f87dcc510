package geo

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geotest"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// BenchmarkLogin judges and learns logins of 1000 users, each with a few
// known places, on the memory store (the Redis store adds its round trips).
func BenchmarkLogin(b *testing.B) {
	f := newFixture(b, newMem(), Options{NewCityKm: 100, NewASN: true})
	benchLogins(b, f)
}

func BenchmarkLoginRedis(b *testing.B) {
	client, prefix := redistest.Client(b)
	f := newFixture(b, store.NewRedisProfiles(store.NewKeyspace(client, prefix)), Options{})
	benchLogins(b, f)
}

func benchLogins(b *testing.B, f *fixture) {
	users := make([]detect.Facts, 1000)
	ips := []detect.Facts{f.facts("", geotest.Berlin), f.facts("", geotest.Potsdam), f.facts("", geotest.Munich)}
	for i := range users {
		users[i] = ips[i%len(ips)]
		users[i].User = "user" + strconv.Itoa(i)
		for j := range 5 {
			fa := ips[j%len(ips)]
			fa.User = users[i].User
			f.d.Login(context.Background(), fa, t0.Add(time.Duration(j)*24*time.Hour))
		}
	}
	f.rec.take()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f.d.Login(ctx, users[i%len(users)], t0.Add(10*24*time.Hour+time.Duration(i)*time.Second))
	}
}

// BenchmarkSessionCached is a token used again from the address it was
// last seen at: no store round trip.
func BenchmarkSessionCached(b *testing.B) {
	c := &counting{Profiles: newMem()}
	f := newFixture(b, c, Options{})
	fa := f.facts("nora", geotest.Berlin)
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	f.d.Session(ctx, fa, "tok", exp, t0)
	before := c.trips()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.d.Session(ctx, fa, "tok", exp, t0)
	}
	b.StopTimer()
	if c.trips() != before {
		b.Fatalf("%d store round trips on the cached path", c.trips()-before)
	}
	b.ReportMetric(float64(c.trips()-before)/float64(b.N), "trips/op")
}

// BenchmarkSessionMoving is a token alternating between two addresses of
// its bound place: one store read per use.
func BenchmarkSessionMoving(b *testing.B) {
	f := newFixture(b, newMem(), Options{})
	fas := []detect.Facts{f.facts("nora", geotest.Berlin), f.facts("nora", geotest.Munich)}
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f.d.Session(ctx, fas[i%2], "tok", exp, t0)
	}
}
