package coordinated

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/redistest"
	"github.com/vigilsec/vigil/internal/store"
)

// recorder is a fake Actor that keeps every finding it is given.
type recorder struct {
	mu       sync.Mutex
	findings []detect.Finding
}

func (r *recorder) Act(_ context.Context, f detect.Finding) detect.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.findings = append(r.findings, f)
	if f.Action != detect.NoAction {
		return detect.Outcome{Enforced: true, Fresh: true, Until: f.Time.Add(f.Ban.Base)}
	}
	return detect.Outcome{}
}

// of returns the findings of type t.
func (r *recorder) of(t detect.Type) []detect.Finding {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []detect.Finding
	for _, f := range r.findings {
		if f.Type == t {
			out = append(out, f)
		}
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.findings)
}

// stores is one implementation of the state the detector counts in.
type stores struct {
	windows detect.WindowCounter
	sums    detect.SumWindow
	keys    func() []string // the Redis keys written (nil in memory)
}

// newStores returns the memory stores, or stores in Redis under a fresh
// key prefix deleted at the end of the test.
func newStores(tb testing.TB, redis bool) stores {
	if !redis {
		return stores{windows: store.NewMemoryWindowsEvicting(nil), sums: store.NewMemorySums(nil)}
	}
	client, prefix := redistest.Client(tb)
	ks := store.NewKeyspace(client, prefix)
	return stores{windows: store.NewRedisWindows(ks), sums: store.NewRedisSums(ks),
		keys: func() []string { return redistest.Keys(tb, client, prefix) }}
}

// eachStore runs fn against the memory stores and against Redis.
func eachStore(t *testing.T, fn func(t *testing.T, st stores)) {
	t.Run("memory", func(t *testing.T) { fn(t, newStores(t, false)) })
	t.Run("redis", func(t *testing.T) { fn(t, newStores(t, true)) })
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const site = "shop"

var (
	testSpray = &Spray{IPs: 5, Accounts: 8, Within: 15 * time.Minute, Tighten: 2}
	testDist  = &Distributed{IPs: 10, Attempts: 10, Within: 15 * time.Minute,
		Lock: detect.Ban{Base: 15 * time.Minute, Max: 24 * time.Hour}}
	testNet = &NetworkBan{detect.Ban{Failures: 20, Within: 10 * time.Minute, Base: time.Hour, Max: 24 * time.Hour}}
)

func newDetector(t testing.TB, st stores, o Options) (*Detector, *recorder) {
	t.Helper()
	rec := &recorder{}
	o.Windows, o.Sums, o.Actor = st.windows, st.sums, rec
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d, rec
}

// facts are a failed login's facts from ip at site.
func facts(ip string) detect.Facts {
	a := netip.MustParseAddr(ip)
	return detect.Facts{Site: site, Method: "POST", Path: "/login", IP: a, Net: detect.ClientNet(a)}
}

func wantN(t *testing.T, rec *recorder, typ detect.Type, n int) []detect.Finding {
	t.Helper()
	got := rec.of(typ)
	if len(got) != n {
		t.Fatalf("%s findings = %d, want %d (all: %d)", typ, len(got), n, rec.count())
	}
	return got
}

// Six sources over ten accounts, one try per account: one spray, the
// site's lockout tightened for a window after the last sprayed failure.
func TestSpray(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		ctx := context.Background()
		d, rec := newDetector(t, st, Options{Spray: testSpray, Distributed: testDist, Network: testNet})
		if d.Tightened(site, base) {
			t.Fatal("tightened before any failure")
		}
		var last time.Time
		for i := range 10 {
			last = base.Add(time.Duration(i) * time.Second)
			d.Failure(ctx, facts(fmt.Sprintf("198.51.%d.7", i%6)), fmt.Sprintf("user%d", i), last)
		}
		f := wantN(t, rec, detect.PasswordSpray, 1)[0]
		if f.Severity != detect.High || f.Details["ips"] != 6 || f.Details["accounts"] != 8 ||
			f.Details["attempts"] != int64(8) || f.Details["within"] != "15m0s" {
			t.Fatalf("spray finding = %+v", f)
		}
		if rec.count() != 1 {
			t.Fatalf("findings = %d, want only the spray", rec.count())
		}
		if !d.Tightened(site, last) || d.Tightened("other", last) || d.Tightened(site, last.Add(16*time.Minute)) {
			t.Fatal("Tightened: want on at the site for one window only")
		}
		if got := d.Lockout(site, last, 5); got != 2 {
			t.Fatalf("Lockout during the spray = %d, want 2", got)
		}
		if got := d.Lockout("other", last, 5); got != 5 {
			t.Fatalf("Lockout elsewhere = %d, want 5", got)
		}
		if st.keys != nil {
			for _, k := range st.keys() {
				if strings.Contains(k, "user") || strings.Contains(k, "198.51") || strings.Contains(k, site) {
					t.Fatalf("Redis key %q holds client input", k)
				}
			}
		}
	})
}

// One source over many accounts is credential stuffing, not a spray.
func TestOneSourceIsNotSpray(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		d, rec := newDetector(t, st, Options{Spray: testSpray})
		for i := range 10 {
			d.Failure(context.Background(), facts("203.0.113.9"), fmt.Sprintf("user%d", i), base.Add(time.Duration(i)*time.Second))
		}
		wantN(t, rec, detect.PasswordSpray, 0)
		if d.Tightened(site, base.Add(time.Minute)) {
			t.Fatal("tightened without a spray")
		}
	})
}

// Many failures on one account drown a few tries elsewhere: past three
// per account on average it is a hammered account, not a spray.
func TestHammeredAccountIsNotSpray(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		d, rec := newDetector(t, st, Options{Spray: testSpray})
		ctx, at := context.Background(), base
		for i := range 30 {
			at = at.Add(time.Second)
			d.Failure(ctx, facts(fmt.Sprintf("198.51.100.%d", i%6)), "admin", at)
		}
		for i := range 8 {
			at = at.Add(time.Second)
			d.Failure(ctx, facts(fmt.Sprintf("198.51.100.%d", i%6)), fmt.Sprintf("user%d", i), at)
		}
		wantN(t, rec, detect.PasswordSpray, 0)
	})
}

// Twenty sources on one account: one distributed brute force and one lock
// of that account, no spray.
func TestDistributed(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		d, rec := newDetector(t, st, Options{Spray: testSpray, Distributed: testDist, Network: testNet})
		for i := range 20 {
			d.Failure(context.Background(), facts(fmt.Sprintf("192.0.%d.1", i)), "Alice", base.Add(time.Duration(i)*time.Second))
		}
		f := wantN(t, rec, detect.DistributedBruteForce, 1)[0]
		if f.Severity != detect.High || f.Details["ips"] != 10 || f.Details["attempts"] != int64(10) {
			t.Fatalf("distributed finding = %+v", f)
		}
		lock := wantN(t, rec, detect.AccountLocked, 1)[0]
		if lock.Action != detect.LockAccount || lock.Target != "Alice" || lock.Ban.Base != 15*time.Minute ||
			lock.Ban.Max != 24*time.Hour || lock.Reason != "distributed_brute_force" {
			t.Fatalf("lock finding = %+v", lock)
		}
		wantN(t, rec, detect.PasswordSpray, 0)
		if rec.count() != 2 {
			t.Fatalf("findings = %d, want 2", rec.count())
		}
	})
}

// A lock that has run out lets the next distributed attack lock again.
func TestDistributedAgainAfterLock(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		d, rec := newDetector(t, st, Options{Distributed: testDist})
		for round, start := range []time.Time{base, base.Add(20 * time.Minute)} {
			for i := range 10 {
				d.Failure(context.Background(), facts(fmt.Sprintf("192.0.%d.%d", i, round)), "alice", start.Add(time.Duration(i)*time.Second))
			}
		}
		wantN(t, rec, detect.DistributedBruteForce, 2)
		wantN(t, rec, detect.AccountLocked, 2)
	})
}

func TestNetwork(t *testing.T) {
	cases := []struct {
		name, want string
		ip         func(i int) string
	}{
		{"ipv4 /24", "203.0.113.0/24", func(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }},
		// each address in its own /64, so each is its own ClientNet
		{"ipv6 /48", "2001:db8:42::/48", func(i int) string { return fmt.Sprintf("2001:db8:42:%x::1", i) }},
		{"ipv4-mapped", "198.51.100.0/24", func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf("::ffff:198.51.100.%d", i+1)
			}
			return fmt.Sprintf("198.51.100.%d", i+1)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st stores) {
				d, rec := newDetector(t, st, Options{Network: testNet})
				for i := range 30 {
					d.Failure(context.Background(), facts(c.ip(i)), "", base.Add(time.Duration(i)*time.Second))
				}
				f := wantN(t, rec, detect.IPBlocked, 1)[0]
				if f.Action != detect.BlockAddress || f.Target != c.want || f.Reason != "block_network" ||
					f.Ban != testNet.Ban || f.Details["network"] != c.want || f.Details["failures"] != int64(20) {
					t.Fatalf("block = %+v", f)
				}
				// a neighbouring network has its own count
				for i := range 19 {
					d.Failure(context.Background(), facts(fmt.Sprintf("192.0.2.%d", i)), "bob", base.Add(time.Minute))
				}
				wantN(t, rec, detect.IPBlocked, 1)
			})
		})
	}
}

// An unreadable account counts for the network and the spray's sources,
// never as an account or an attempt on one.
func TestUnreadableUser(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		ctx, at := context.Background(), base
		d, rec := newDetector(t, st, Options{Spray: testSpray, Distributed: &Distributed{IPs: 3, Attempts: 3, Within: time.Hour}, Network: testNet})
		for i := range 25 {
			at = at.Add(time.Second)
			d.Failure(ctx, facts(fmt.Sprintf("192.0.2.%d", i)), "", at)
		}
		wantN(t, rec, detect.IPBlocked, 1)
		wantN(t, rec, detect.DistributedBruteForce, 0)
		wantN(t, rec, detect.PasswordSpray, 0)
		// one more source naming eight accounts: the unreadable failures'
		// sources make it a spray, and they are not attempts (else 33
		// failures over 8 accounts would be a hammering)
		for i := range 8 {
			at = at.Add(time.Second)
			d.Failure(ctx, facts("198.51.100.1"), fmt.Sprintf("user%d", i), at)
		}
		f := wantN(t, rec, detect.PasswordSpray, 1)[0]
		if f.Details["ips"] != 26 || f.Details["attempts"] != int64(8) {
			t.Fatalf("spray = %+v", f.Details)
		}
	})
}

// A spray that goes on is one finding; one that comes back after a quiet
// window is another.
func TestSprayEpisodes(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		d, rec := newDetector(t, st, Options{Spray: testSpray})
		spray := func(start time.Time, n int) time.Time {
			for i := range n {
				start = start.Add(30 * time.Second)
				d.Failure(context.Background(), facts(fmt.Sprintf("198.51.100.%d", i%7)), fmt.Sprintf("user%d", i), start)
			}
			return start
		}
		end := spray(base, 100) // 50 minutes, always over the thresholds
		wantN(t, rec, detect.PasswordSpray, 1)
		if !d.Tightened(site, end) || d.Tightened(site, end.Add(15*time.Minute)) {
			t.Fatal("Tightened: want on until a window after the spray")
		}
		spray(end.Add(16*time.Minute), 20)
		wantN(t, rec, detect.PasswordSpray, 2)
	})
}

// Parallel failures on one instance: still exactly one finding of each.
func TestConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, st stores) {
		d, rec := newDetector(t, st, Options{Spray: testSpray, Distributed: testDist, Network: testNet})
		var wg sync.WaitGroup
		for g := range 40 {
			wg.Go(func() {
				ctx, at := context.Background(), base.Add(time.Duration(g)*time.Millisecond)
				for i := range 5 { // the spray: 40 sources, 200 accounts
					d.Failure(ctx, facts(fmt.Sprintf("198.18.%d.1", g)), fmt.Sprintf("u%d-%d", g, i), at)
				}
				d.Failure(ctx, facts(fmt.Sprintf("198.19.%d.1", g)), "victim", at) // distributed
				d.Failure(ctx, facts(fmt.Sprintf("203.0.113.%d", g)), "", at)      // network
				d.Failure(ctx, facts(fmt.Sprintf("203.0.113.%d", g+100)), "", at)  // network
			})
		}
		wg.Wait()
		wantN(t, rec, detect.PasswordSpray, 1)
		wantN(t, rec, detect.DistributedBruteForce, 1)
		wantN(t, rec, detect.AccountLocked, 1)
		wantN(t, rec, detect.IPBlocked, 1)
	})
}

func TestNew(t *testing.T) {
	st := stores{windows: store.NewMemoryWindows(), sums: store.NewMemorySums(nil)}
	bad := []Options{
		{Spray: &Spray{IPs: 0, Accounts: 8, Within: time.Minute}},
		{Spray: &Spray{IPs: 5, Accounts: detect.MaxWindowEntries + 1, Within: time.Minute}},
		{Distributed: &Distributed{IPs: 5, Attempts: 0, Within: time.Minute}},
		{Network: &NetworkBan{detect.Ban{Failures: 5, Within: time.Minute}}},
	}
	for i, o := range bad {
		o.Windows, o.Sums, o.Actor = st.windows, st.sums, &recorder{}
		if _, err := New(o); err == nil {
			t.Errorf("case %d: New accepted %+v", i, o)
		}
	}
	if _, err := New(Options{Network: testNet}); err == nil {
		t.Error("New accepted a detector without a store or an actor")
	}
	var nilD *Detector
	nilD.Failure(context.Background(), facts("192.0.2.1"), "a", base)
	if nilD.Tightened(site, base) || nilD.Lockout(site, base, 5) != 5 {
		t.Error("a nil detector must do nothing")
	}
}

func TestNetworkOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.77": "192.0.2.0/24", "::ffff:192.0.2.77": "192.0.2.0/24",
		"2001:db8:1:2:3::4": "2001:db8:1::/48", "fe80::1%eth0": "fe80::/48",
	} {
		if got := Network(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Network(%s) = %s, want %s", in, got, want)
		}
	}
}

// Sites past the bound age out the soonest-ending sprays.
func TestTightenedBound(t *testing.T) {
	var tt tightened
	for i := range maxTightSites + 10 {
		tt.mark(fmt.Sprint("site", i), base, base.Add(time.Duration(i+1)*time.Second))
	}
	if len(tt.until) != maxTightSites {
		t.Fatalf("sites held = %d, want %d", len(tt.until), maxTightSites)
	}
	if tt.on("site0", base) || !tt.on(fmt.Sprint("site", maxTightSites+9), base) {
		t.Fatal("want the soonest-ending spray aged out, the newest kept")
	}
	long := strings.Repeat("h", 300)
	tt.mark(long, base, base.Add(time.Hour))
	if !tt.on(long, base) {
		t.Fatal("a long site name is remembered by its hash")
	}
}
