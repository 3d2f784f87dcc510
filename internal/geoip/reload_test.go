package geoip

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/geotest"
	"github.com/vigilsec/vigil/internal/poll"
)

// moved is the second version of the data: the same networks in other
// places and networks, so a Place mixing the two versions is detectable.
var moved = []geotest.Entry{
	{Network: "192.0.2.0/25", Country: "PT", City: "Lisbon", Lat: 38.7223, Lon: -9.1393, RadiusKm: 10,
		ASN: 3243, Org: "MEO - Servicos De Comunicacoes E Multimedia S.A."},
	{Network: "2001:db8::/48", Country: "ES", City: "Madrid", Lat: 40.4168, Lon: -3.7038, RadiusKm: 5,
		ASN: 3352, Org: "TELEFONICA DE ESPANA S.A.U.", Hosting: true},
}

func writeVersion(t *testing.T, city, asn string, entries []geotest.Entry) {
	t.Helper()
	if err := geotest.WriteCity(city, entries); err != nil {
		t.Fatal(err)
	}
	if err := geotest.WriteASN(asn, entries); err != nil {
		t.Fatal(err)
	}
}

func want(t *testing.T, entries []geotest.Entry, ip netip.Addr) detect.Place {
	t.Helper()
	e, ok := geotest.Find(entries, ip)
	if !ok {
		t.Fatalf("%s is not in the table", ip)
	}
	return e.Place()
}

func TestReload(t *testing.T) {
	city, asn := geotest.Files(t)
	l := open(t, city, asn)
	if changed, err := l.Reload(); changed || err != nil {
		t.Fatalf("Reload of unchanged files = %v, %v", changed, err)
	}

	writeVersion(t, city, asn, moved)
	if changed, err := l.Reload(); !changed || err != nil {
		t.Fatalf("Reload after a swap = %v, %v", changed, err)
	}
	if got := l.Locate(geotest.Berlin); got != want(t, moved, geotest.Berlin) {
		t.Errorf("after the swap: %+v", got)
	}
	if got := l.Locate(geotest.NewYork); got != (detect.Place{}) {
		t.Errorf("New York is gone from the new data, got %+v", got)
	}

	// A broken file keeps the loaded database, and the error names it.
	if err := os.WriteFile(city+".tmp", []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(city+".tmp", city); err != nil {
		t.Fatal(err)
	}
	changed, err := l.Reload()
	if changed || err == nil || !strings.Contains(err.Error(), "loading geoip database "+city+":") ||
		!strings.Contains(err.Error(), "keeping the loaded one") {
		t.Fatalf("Reload of a broken file = %v, %v", changed, err)
	}
	if got := l.Locate(geotest.Berlin); got != want(t, moved, geotest.Berlin) {
		t.Errorf("after a failed reload: %+v", got)
	}
	// The same broken file is not read again, and says the same.
	if _, again := l.Reload(); again == nil || again.Error() != err.Error() {
		t.Errorf("second Reload = %v, want %v", again, err)
	}

	// A deleted file: the same.
	if err := os.Remove(asn); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reload(); err == nil || !strings.Contains(err.Error(), asn) {
		t.Errorf("Reload of a deleted file = %v", err)
	}
	if got := l.Locate(geotest.Berlin); got.ASN != 3243 {
		t.Errorf("the ASN database was dropped: %+v", got)
	}

	// Fixed files are picked up.
	writeVersion(t, city, asn, geotest.Documentation)
	if changed, err := l.Reload(); !changed || err != nil {
		t.Fatalf("Reload of fixed files = %v, %v", changed, err)
	}
	if got := l.Locate(geotest.Berlin); got != want(t, geotest.Documentation, geotest.Berlin) {
		t.Errorf("after the fix: %+v", got)
	}
}

// TestReloadUnderLoad swaps both files back and forth while goroutines
// look up addresses, and checks that every answer comes whole from one
// version of each file. Run with -race.
func TestReloadUnderLoad(t *testing.T) {
	city, asn := geotest.Files(t)
	l := open(t, city, asn)
	versions := [][]geotest.Entry{geotest.Documentation, moved}
	addrs := []netip.Addr{geotest.Berlin, geotest.Paris, netip.MustParseAddr("::ffff:192.0.2.10")}

	// where and who split a Place into what each file contributes.
	where := func(p detect.Place) detect.Place { p.ASN, p.Org = 0, ""; return p }
	who := func(p detect.Place) detect.Place { return detect.Place{ASN: p.ASN, Org: p.Org} }
	expect := map[netip.Addr][]detect.Place{}
	for _, ip := range addrs {
		for _, v := range versions {
			expect[ip] = append(expect[ip], want(t, v, ip))
		}
	}
	consistent := func(ip netip.Addr, p detect.Place) bool {
		okWhere, okWho := false, false
		for _, w := range expect[ip] {
			okWhere = okWhere || where(p) == where(w)
			okWho = okWho || who(p) == who(w)
		}
		return okWhere && okWho
	}

	var (
		stop    atomic.Bool
		lookups atomic.Int64
		wg      sync.WaitGroup
		bad     = make(chan string, 8)
	)
	for g := range 8 {
		wg.Go(func() {
			for i := g; !stop.Load(); i++ {
				ip := addrs[i%len(addrs)]
				if p := l.Locate(ip); !consistent(ip, p) {
					select {
					case bad <- ip.String() + ": " + p.String():
					default:
					}
					return
				}
				lookups.Add(1)
			}
		})
	}
	const swaps = 20
	for i := 1; i <= swaps; i++ {
		v := versions[i%2]
		writeVersion(t, city, asn, v)
		if changed, err := l.Reload(); !changed || err != nil {
			t.Fatalf("swap %d: Reload = %v, %v", i, changed, err)
		}
		for _, ip := range addrs {
			if got := l.Locate(ip); got != want(t, v, ip) {
				t.Fatalf("swap %d: Locate(%s) = %+v, want %+v", i, ip, got, want(t, v, ip))
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Errorf("an inconsistent place: %s", b)
	}
	if lookups.Load() < swaps {
		t.Errorf("only %d lookups ran during the swaps", lookups.Load())
	}
	t.Logf("%d lookups during %d swaps", lookups.Load(), swaps)
}

func TestWatch(t *testing.T) {
	city, asn := geotest.Files(t)
	l := open(t, city, asn)

	var (
		mu      sync.Mutex
		reports []error
	)
	reported := func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), reports...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Watch(ctx, 5*time.Millisecond, func(err error) {
			mu.Lock()
			reports = append(reports, err)
			mu.Unlock()
		})
	}()

	failures := func() (errs []error) {
		for _, err := range reported() {
			if err != nil {
				errs = append(errs, err)
			}
		}
		return errs
	}

	writeVersion(t, city, asn, moved)
	poll.True(t, 5*time.Second, "the new data", func() bool {
		p := l.Locate(geotest.Berlin)
		return p.City == "Lisbon" && p.ASN == 3243
	})
	poll.True(t, 5*time.Second, "a reload report", func() bool { return len(reported()) > 0 })
	if errs := failures(); len(errs) > 0 {
		t.Errorf("successful reloads reported %v", errs)
	}

	// A broken file is reported once, however many polls see it.
	broken := filepath.Join(filepath.Dir(city), "broken")
	if err := os.WriteFile(broken, []byte("half a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, city); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "the failure report", func() bool { return len(failures()) > 0 })
	time.Sleep(50 * time.Millisecond) // ten more polls
	if errs := failures(); len(errs) != 1 || !strings.Contains(errs[0].Error(), city) {
		t.Errorf("reports after a broken file: %v", errs)
	}
	if l.Locate(geotest.Berlin).City != "Lisbon" {
		t.Error("a broken file replaced the loaded database")
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
	noWatchers(t)
}

// noWatchers fails the test if a Watch goroutine is still running (a
// goleak-style check without the dependency).
func noWatchers(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	if bytes.Contains(buf, []byte("geoip.(*Locator).Watch")) {
		t.Errorf("a Watch goroutine is still running:\n%s", buf)
	}
}

func TestWatchStopsOnClose(t *testing.T) {
	city, asn := geotest.Files(t)
	l := open(t, city, asn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Watch(context.Background(), time.Millisecond, nil)
	}()
	l.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after Close")
	}
	noWatchers(t)
}
