package integration

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
)

// Faults under load (issue 13): each test runs its own gateway on its own
// redis-server (never the shared one) with `fail_mode open`, puts the load
// of faults_load_test.go through it, makes a fault happen and checks every
// request's outcome. The tests are not parallel: they measure latency, and
// run alone before the suite's parallel tests. Their figures are logged
// (go test -v -run TestFault ./integration) and kept in
// docs/operations.md ("Measured under faults").

// The Redis client's limits, as internal/store/redis.go sets them.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = 500 * time.Millisecond
	redisMaxRetries  = 1
)

// Wall-clock lengths of the faults, as issue 13 sets them: Redis killed
// for 30 s (past every Redis timeout and six times the event writer's
// longest backoff) and paused for 10 s.
const (
	outageFor = 30 * time.Second
	pauseFor  = 10 * time.Second
)

// needMigratedListenQueues fails (under VIGIL_REQUIRE_TOOLS=1) or skips
// loudly unless net.ipv4.tcp_migrate_req is 1. On Linux, Caddy binds each
// new config's listener as a new SO_REUSEPORT socket and closes the old
// one once the old server has stopped; without that setting the kernel
// resets the connections still waiting in the old socket's accept queue
// instead of handing them to the new socket, so a reload under load can
// fail a request that arrived in that instant (a CI run caught one login
// of 87). docs/operations.md tells operators to set it.
func needMigratedListenQueues(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req")
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return
	}
	msg := "net.ipv4.tcp_migrate_req is NOT 1 (sysctl -w net.ipv4.tcp_migrate_req=1): a reload can reset connections queued on the old listener, so the zero-failure reload check did NOT run"
	if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (VIGIL_REQUIRE_TOOLS=1)")
	}
	t.Skip(msg + " (set VIGIL_REQUIRE_TOOLS=1 to make this a failure)")
}

func faultGateway(t *testing.T, storeAddr string) *gateway {
	t.Helper()
	return startGateway(t, gatewayConfig{Global: redisAt(storeAddr) + "\n\t\tfail_mode open", Policy: countOnlyPolicy})
}

// TestFaultReloadUnderLoad: `caddy reload` three times while the load runs
// fails no request, GET or login.
func TestFaultReloadUnderLoad(t *testing.T) {
	needMigratedListenQueues(t)
	srv := redistest.StartServer(t, 0)
	g := faultGateway(t, srv.Addr)
	l := startLoad(t, g, true)
	l.waitRequests(t, 300)
	start := time.Now()
	var took []time.Duration
	for i := 0; i < 3; i++ {
		// alternate the policy so that each reload really replaces the config
		policy := countOnlyPolicy
		if i%2 == 0 {
			policy += "\n\t\tlockout 1000 within 1m for 1s"
		}
		t0 := time.Now()
		g.reload(gatewayConfig{Global: g.cfg.Global, Policy: policy})
		took = append(took, time.Since(t0).Round(time.Millisecond))
		l.waitRequests(t, 500)
	}
	l.stopLoad()
	gets, logins := statsOf(l.outcomes(start, time.Time{}, false)), statsOf(l.outcomes(start, time.Time{}, true))
	t.Logf("reload under load: 3 reloads (%v each); GETs %s; logins %s", took, gets, logins)
	if gets.failed+logins.failed != 0 {
		t.Fatalf("%d GETs and %d logins failed during reloads; first GET failure: %s; first login failure: %s",
			gets.failed, logins.failed, gets.firstFailure, logins.firstFailure)
	}
	if logins.n == 0 {
		t.Fatal("no login was sent during the reloads")
	}
}

// TestFaultRedisKilledUnderLoad: with Redis killed for outageFor, no
// non-login request fails and every login is answered (counted locally);
// when Redis is back on the same port, the events of the outage reach the
// stream, and those missing are exactly the dropped events of the metric.
func TestFaultRedisKilledUnderLoad(t *testing.T) {
	srv := redistest.StartServer(t, 0)
	g := faultGateway(t, srv.Addr)
	l := startLoad(t, g, true)
	l.waitRequests(t, 300)

	srv.Stop()
	down := time.Now()
	l.phase.Store("out")
	poll.True(t, 10*time.Second, "the store-down WARN line", func() bool { return strings.Contains(g.output(), logStoreDown) })
	if _, h := g.health(); !h.Store.FallbackActive {
		t.Fatalf("Redis down, but the health check reports no local fallback: %+v", h.Store)
	}
	// the fault is wall time: Redis stays away for the whole outage
	time.Sleep(time.Until(down.Add(outageFor)))
	redistest.StartServer(t, srv.Port)
	up := time.Now()
	l.phase.Store("post")
	poll.True(t, 20*time.Second, "the store-up INFO line", func() bool { return strings.Contains(g.output(), logStoreUp) })
	l.waitRequests(t, 300)
	l.stopLoad()

	gets := statsOf(l.outcomes(down, up, false))
	logins := l.outcomes(down, up, true)
	t.Logf("Redis killed for %s: GETs during the outage %s; logins during it %s; store back after %s",
		outageFor, gets, statsOf(logins), time.Since(up).Round(time.Millisecond))
	if all := statsOf(l.outcomes(time.Time{}, time.Time{}, false)); all.failed != 0 {
		t.Fatalf("%d non-login requests failed (first: %s)", all.failed, all.firstFailure)
	}
	if len(logins) < 10 {
		t.Fatalf("only %d logins during the outage", len(logins))
	}
	for _, o := range logins {
		if o.err != nil || o.status != http.StatusFound {
			t.Fatalf("login %s during the outage: status %d, error %v (want the app's 302)", o.user, o.status, o.err)
		}
	}

	// every login was counted, those of the outage by the local fallback
	all := l.outcomes(time.Time{}, time.Time{}, true)
	if n, _ := metricValue(g.scrape(), "vigil_login_attempts_total", `outcome="failure"`); int(n) != len(all) {
		t.Fatalf("vigil_login_attempts_total{outcome=\"failure\"} = %g for %d failed logins sent", n, len(all))
	}

	// the outage's FAILED_LOGIN events, queued in memory, reach the new
	// Redis (the writer retries with a backoff of at most 5 s)
	want := map[string]bool{}
	for _, o := range all {
		if strings.HasPrefix(o.user, "out-") {
			want[o.user] = true
		}
	}
	var missing []string
	var dropped float64
	poll.Until(t, 15*time.Second, "the outage's events in the stream, or counted as dropped", func() (bool, string) {
		seen := map[string]bool{}
		for _, e := range g.events(q("type", "FAILED_LOGIN", "limit", "1000")) {
			seen[e.User] = true
		}
		missing = missing[:0]
		for u := range want {
			if !seen[u] {
				missing = append(missing, u)
			}
		}
		dropped, _ = metricValue(g.scrape(), "vigil_events_dropped_total", `sink="store"`)
		return float64(len(missing)) == dropped, fmt.Sprintf("%d of %d missing, %g dropped", len(missing), len(want), dropped)
	})
	t.Logf("events: %d failed logins during the outage, %d in the stream after it, %d missing, vigil_events_dropped_total{sink=\"store\"} = %g",
		len(want), len(want)-len(missing), len(missing), dropped)
	if dropped != 0 {
		t.Fatalf("%g events dropped with the default bound (10,000) for %d events", dropped, len(want))
	}
}

// TestFaultRedisPausedUnderLoad: with Redis stopped (SIGSTOP) for
// pauseFor, non-login latency stays far below the Redis timeouts, logins
// answer within them, and the gateway's goroutines do not pile up.
func TestFaultRedisPausedUnderLoad(t *testing.T) {
	srv := redistest.StartServer(t, 0)
	pid := childRedisPID(t, srv.Port)
	g := faultGateway(t, srv.Addr)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // before the gateway stops
	l := startLoad(t, g, true)
	l.waitRequests(t, 300)
	before := g.goroutines()

	signalPID(t, pid, syscall.SIGSTOP)
	paused := time.Now()
	// the fault is wall time: Redis stays frozen for the whole pause; the
	// goroutines are counted halfway and just before it ends
	time.Sleep(pauseFor / 2)
	during := g.goroutines()
	time.Sleep(time.Until(paused.Add(pauseFor)))
	during = max(during, g.goroutines())
	signalPID(t, pid, syscall.SIGCONT)
	resumed := time.Now()
	l.waitRequests(t, 300)
	l.stopLoad()
	var after float64
	poll.Until(t, 10*time.Second, "goroutines back to their level before the pause", func() (bool, string) {
		after = g.goroutines()
		return after <= before+10, fmt.Sprintf("%g (before: %g)", after, before)
	})

	gets := statsOf(l.outcomes(paused, resumed, false))
	logins := statsOf(l.outcomes(paused, resumed, true))
	t.Logf("Redis paused for %s: GETs %s; logins %s; goroutines before %g, during %g, after %g",
		pauseFor, gets, logins, before, during, after)
	if gets.failed != 0 || logins.failed != 0 {
		t.Fatalf("%d GETs and %d logins failed during the pause (first: %s %s)", gets.failed, logins.failed, gets.firstFailure, logins.firstFailure)
	}
	for _, o := range l.outcomes(paused, resumed, true) {
		if o.status != http.StatusFound {
			t.Fatalf("login %s during the pause: status %d (want the app's 302)", o.user, o.status)
		}
	}
	// a non-login request never waits on Redis: had it waited, it would
	// have waited out a timeout
	if gets.p99 >= redisIOTimeout {
		t.Fatalf("non-login p99 %s during the pause: as slow as the Redis I/O timeout (%s)", gets.p99, redisIOTimeout)
	}
	// one store operation: a try and its retry, each a dial (the server's
	// kernel still accepts) and a write and a read that time out
	bound := (1 + redisMaxRetries) * (redisDialTimeout + 2*redisIOTimeout)
	if logins.max > bound {
		t.Fatalf("a login took %s during the pause, longer than the Redis timeouts allow (%s)", logins.max, bound)
	}
	if during > before+50 {
		t.Fatalf("goroutines piled up during the pause: %g before, %g during", before, during)
	}
}

// TestFaultSlowRedis: through a proxy adding 5 ms each way between Vigil
// and Redis, non-login latency does not change and a login costs about one
// round trip (10 ms) more, not several.
func TestFaultSlowRedis(t *testing.T) {
	if trips := slowRedisTrips(t, countOnlyPolicy, 30); trips < 0.5 || trips >= 2.5 {
		t.Fatalf("a login through the slow Redis added %.2f round trips; want about one", trips)
	}
}

// TestFaultSlowRedisRisk: on a site that scores login risk, the risk
// profile's read overlaps the reservation (login.Options.Ahead), so a
// login still waits for about one round trip, not one after the other
// (two).
func TestFaultSlowRedisRisk(t *testing.T) {
	policy := countOnlyPolicy + "\n\t\trisk {\n\t\t\talert 100\n\t\t}"
	// one round trip measures 1.0–1.6 here (the p50 of a busy host), two
	// at least 2
	if trips := slowRedisTrips(t, policy, 50); trips < 0.5 || trips >= 1.8 {
		t.Fatalf("a scored login through the slow Redis added %.2f round trips; want about one (two would mean the risk read waited for the reservation)", trips)
	}
}

// slowRedisTrips runs the load through a gateway whose Redis is first
// direct, then 5 ms away each way, checks that nothing failed and that the
// non-login path did not slow down, and returns how many round trips the
// delay added to the median of n logins.
func slowRedisTrips(t *testing.T, policy string, n int) float64 {
	t.Helper()
	srv := redistest.StartServer(t, 0)
	p := startDelayProxy(t, srv.Addr)
	g := startGateway(t, gatewayConfig{Global: redisAt(p.addr()) + "\n\t\tfail_mode open", Policy: policy})
	l := startLoad(t, g, true)
	l.waitRequests(t, 300)

	const oneWay = 5 * time.Millisecond
	measure := func(delay time.Duration) (gets, logins stats) {
		p.delay.Store(int64(delay))
		from := time.Now()
		for len(l.outcomes(from, time.Time{}, true)) < n {
			l.waitRequests(t, 50)
		}
		to := time.Now()
		return statsOf(l.outcomes(from, to, false)), statsOf(l.outcomes(from, to, true))
	}
	getsFast, loginsFast := measure(0)
	getsSlow, loginsSlow := measure(oneWay)
	l.stopLoad()

	added := loginsSlow.p50 - loginsFast.p50
	trips := float64(added) / float64(2*oneWay)
	t.Logf("Redis direct: GETs %s; logins %s", getsFast, loginsFast)
	t.Logf("Redis +%s each way: GETs %s; logins %s", oneWay, getsSlow, loginsSlow)
	t.Logf("login p50 added %s = %.2f round trips of %s; GET p50 %s -> %s",
		added.Round(10*time.Microsecond), trips, 2*oneWay, getsFast.p50.Round(10*time.Microsecond), getsSlow.p50.Round(10*time.Microsecond))
	for _, s := range []stats{getsFast, loginsFast, getsSlow, loginsSlow} {
		if s.failed != 0 {
			t.Fatalf("%d requests failed (first: %s)", s.failed, s.firstFailure)
		}
	}
	// a non-login request that waited on Redis would pay at least a
	// round trip (10 ms); half of one is noise on a busy host at most
	if getsSlow.p50 > getsFast.p50+oneWay {
		t.Fatalf("the non-login path slowed down with a slow Redis: p50 %s -> %s", getsFast.p50, getsSlow.p50)
	}
	return trips
}
