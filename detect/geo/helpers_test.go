package geo

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geoip"
	"github.com/vigilsec/vigil/internal/geotest"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// t0 is the tests' clock origin.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// recorder is a detect.Actor that keeps every finding.
type recorder struct {
	mu  sync.Mutex
	got []detect.Finding
}

func (r *recorder) Act(_ context.Context, f detect.Finding) detect.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, f)
	return detect.Outcome{}
}

// take returns the findings so far and forgets them.
func (r *recorder) take() []detect.Finding {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// counting wraps a store and counts its round trips.
type counting struct {
	detect.Profiles
	gets, updates atomic.Int64
}

func (c *counting) Get(ctx context.Context, kind detect.ProfileKind, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Profiles.Get(ctx, kind, key)
}

func (c *counting) Update(ctx context.Context, kind detect.ProfileKind, key string, ttl time.Duration, fn func([]byte) []byte) ([]byte, error) {
	c.updates.Add(1)
	return c.Profiles.Update(ctx, kind, key, ttl, fn)
}

func (c *counting) trips() int64 { return c.gets.Load() + c.updates.Load() }

// locator opens the documentation databases (real MaxMind DB files).
func locator(tb testing.TB) *geoip.Locator {
	tb.Helper()
	city, asn := geotest.Files(tb)
	loc, err := geoip.Open(city, asn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = loc.Close() })
	return loc
}

// stores runs fn against a memory store and a Redis one.
func stores(t *testing.T, fn func(t *testing.T, p detect.Profiles)) {
	t.Run("memory", func(t *testing.T) { fn(t, store.NewMemoryProfiles(nil)) })
	t.Run("redis", func(t *testing.T) {
		client, prefix := redistest.Client(t)
		fn(t, store.NewRedisProfiles(store.NewKeyspace(client, prefix)))
	})
}

// shared runs fn against two stores that share their records, as two
// instances do: one memory store twice, or two Redis stores (each with its
// own in-process turns) on one keyspace.
func shared(t *testing.T, fn func(t *testing.T, a, b detect.Profiles)) {
	t.Run("memory", func(t *testing.T) {
		m := store.NewMemoryProfiles(nil)
		fn(t, m, m)
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := redistest.Client(t)
		ks := store.NewKeyspace(client, prefix)
		fn(t, store.NewRedisProfiles(ks), store.NewRedisProfiles(ks))
	})
}

// fixture is a detector over a store, with a recording actor and the
// documentation databases.
type fixture struct {
	t   testing.TB
	d   *Detector
	rec *recorder
	loc *geoip.Locator
	p   detect.Profiles
}

func newFixture(tb testing.TB, p detect.Profiles, o Options) *fixture {
	tb.Helper()
	f := &fixture{t: tb, rec: &recorder{}, loc: locator(tb), p: p}
	o.Profiles, o.Actor = p, f.rec
	d, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	f.d = d
	return f
}

// facts is a request of user from ip, located as the handler would.
func (f *fixture) facts(user string, ip netip.Addr) detect.Facts {
	return detect.Facts{Site: "app.example", Method: "POST", Path: "/login", IP: ip,
		Net: detect.ClientNet(ip), User: user, Place: f.loc.Locate(ip)}
}

// login is a successful login of user from ip at at.
func (f *fixture) login(user string, ip netip.Addr, at time.Time) {
	f.d.Login(context.Background(), f.facts(user, ip), at)
}

// learn logs user in from ip n times, a day apart, ending at end.
func (f *fixture) learn(user string, ip netip.Addr, n int, end time.Time) {
	for i := n - 1; i >= 0; i-- {
		f.login(user, ip, end.Add(-time.Duration(i)*24*time.Hour))
	}
}

func (f *fixture) profile(user string) Profile {
	f.t.Helper()
	p, err := f.d.Profile(context.Background(), user)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// expect checks that exactly the findings of the given types were raised
// (in order) and returns them.
func (f *fixture) expect(types ...detect.Type) []detect.Finding {
	f.t.Helper()
	got := f.rec.take()
	var names []detect.Type
	for _, g := range got {
		names = append(names, g.Type)
	}
	if !slices.Equal(names, types) {
		f.t.Fatalf("findings %v, want %v (%+v)", names, types, got)
	}
	return got
}

func cities(p Profile) []string {
	var out []string
	for _, k := range p.Places {
		out = append(out, k.Place.City)
	}
	return out
}

func newMem() *store.MemoryProfiles { return store.NewMemoryProfiles(nil) }
