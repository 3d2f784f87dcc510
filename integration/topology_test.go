package integration

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/redistest"
)

// TestThreeGatewaysOnCluster: three gateways on one real Redis Cluster
// (three masters, three replicas). A lockout is exact across the three
// under parallel attempts; a block or a revocation made on one is enforced
// by the others, and the delay is measured.
func TestThreeGatewaysOnCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	topoThree(t, fmt.Sprintf("store redis {\n\t\t\taddrs %s\n\t\t\tcluster\n\t\t\tprefix vigil:\n\t\t}", strings.Join(c.Addrs(), " ")))
}

// TestThreeGatewaysOnRedis: the same on one standalone Redis.
func TestThreeGatewaysOnRedis(t *testing.T) {
	topoThree(t, redisStore(t).global)
}

func topoThree(t *testing.T, global string) {
	up := jwtUpstream(t)
	policy := sessionPolicy + "\n\t\tlockout 5 within 1m for 1m"
	var gws []*gateway
	for i := range 3 {
		gws = append(gws, startNamedGateway(t, fmt.Sprintf("gateway %c", 'A'+i), gatewayConfig{Global: global, Policy: policy, Upstream: up}))
	}
	t.Run("lockout exact under parallel attempts", func(t *testing.T) { topoLockout(t, gws, up) })
	t.Run("block propagation", func(t *testing.T) { topoBlocks(t, gws) })
	t.Run("revocation propagation", func(t *testing.T) { topoRevocation(t, gws) })
}

// topoLockout sends 30 wrong passwords for one account at once, spread
// over the gateways: with lockout 5, exactly 5 reach the app.
func topoLockout(t *testing.T, gws []*gateway, up *upstream) {
	before := up.hits()
	const n = 30
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = topoStatus(gws[i%3], http.MethodPost, "/login", "username=carol&password=wrong")
		}()
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	reached := up.hits() - before
	t.Logf("%d parallel wrong passwords over 3 gateways: %d reached the app; statuses %v", n, reached, counts)
	if reached != 5 || counts[http.StatusFound] != 5 || counts[http.StatusTooManyRequests] != n-5 {
		t.Fatalf("lockout 5: %d attempts reached the app, statuses %v; want exactly 5 and %d refusals", reached, counts, n-5)
	}
	for _, g := range gws {
		if s := topoStatus(g, http.MethodPost, "/login", "username=carol&password=right"); s != http.StatusTooManyRequests {
			t.Fatalf("%s lets the locked account try again: %d", g.name, s)
		}
	}
}

// topoBlocks blocks the tests' address on one gateway through the admin
// API and measures when the two others refuse it; then lifts it.
func topoBlocks(t *testing.T, gws []*gateway) {
	const rounds = 100
	var blocks, made, lifts []time.Duration
	for i := range rounds {
		on, others := gws[i%3], []*gateway{gws[(i+1)%3], gws[(i+2)%3]}
		start := time.Now()
		if status, body := on.adminDo(http.MethodPost, "/vigil/blocks", map[string]string{"ip": "127.0.0.1", "duration": "1h"}); status != http.StatusCreated {
			t.Fatalf("POST /vigil/blocks on %s: %d %s", on.name, status, body)
		}
		answered := time.Since(start)
		for _, d := range topoUntil(t, others, start, func(s int) bool { return s == http.StatusForbidden }) {
			blocks, made = append(blocks, d), append(made, max(0, d-answered))
		}
		start = time.Now()
		if status, body := on.adminDo(http.MethodDelete, "/vigil/blocks/127.0.0.1", nil); status != http.StatusOK {
			t.Fatalf("DELETE /vigil/blocks/127.0.0.1 on %s: %d %s", on.name, status, body)
		}
		lifts = append(lifts, topoUntil(t, others, start, func(s int) bool { return s != http.StatusForbidden })...)
	}
	bp50, bp99 := topoPercentiles(blocks)
	mp50, mp99 := topoPercentiles(made)
	lp50, lp99 := topoPercentiles(lifts)
	t.Logf("block enforced on another gateway, from the admin call (%d samples): p50 %v, p99 %v, max %v",
		len(blocks), bp50, bp99, slices.Max(blocks))
	t.Logf("histogram: %s", topoHistogram(blocks))
	t.Logf("from the admin call's answer (the block made): p50 %v, p99 %v", mp50, mp99)
	t.Logf("lift: p50 %v, p99 %v", lp50, lp99)
	// The 10 ms p99 budget is a figure to measure on a quiet machine (the
	// numbers above, in docs/scaling.md), not to assert here: under the
	// race detector or a busy CI host it says nothing about Vigil. What
	// the test holds is that every block reached every other gateway well
	// inside the 5 s resync backstop, through pub/sub.
	if worst := slices.Max(blocks); worst > 2*time.Second {
		t.Errorf("a block took %v to reach another gateway (pub/sub should carry it in milliseconds)", worst)
	}
}

// topoRevocation revokes a user's sessions on one gateway and measures
// when the others refuse the session.
func topoRevocation(t *testing.T, gws []*gateway) {
	cookie := sessionCookie(t, gws[0], "bob", "builder")
	for _, g := range gws[1:] {
		if u, r := me(t, g, cookie); u != "bob" {
			t.Fatalf("%s does not know bob's session: %s", g.name, r)
		}
	}
	start := time.Now()
	if status, body := gws[0].adminDo(http.MethodPost, "/vigil/revocations", map[string]string{"user": "bob"}); status != http.StatusCreated {
		t.Fatalf("POST /vigil/revocations: %d %s", status, body)
	}
	var delays []time.Duration
	for _, g := range gws[1:] {
		for deadline := start.Add(5 * time.Second); ; {
			r, err := topoDo(g, http.MethodGet, "/api/me", "", cookie)
			if err == nil && r == http.StatusUnauthorized {
				delays = append(delays, time.Since(start))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts bob's revoked session after 5 s (%d, %v)", g.name, r, err)
			}
		}
	}
	t.Logf("revocation made on one gateway, enforced on the others after %v", delays)
}

// topoUntil polls the gateways at once until each answers a status ok
// accepts, and returns how long after start each did.
func topoUntil(t *testing.T, gws []*gateway, start time.Time, ok func(int) bool) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for deadline := start.Add(5 * time.Second); time.Now().Before(deadline); {
				if ok(topoStatus(g, http.MethodGet, "/", "")) {
					out[i] = time.Since(start)
					return
				}
			}
			out[i] = -1
		}()
	}
	wg.Wait()
	for i, d := range out {
		if d < 0 {
			t.Fatalf("%s did not follow within 5 s", gws[i].name)
		}
	}
	return out
}

// topoStatus sends a request (a form body when body is set) and returns
// the status, 0 when the request failed.
func topoStatus(g *gateway, method, path, body string) int {
	s, _ := topoDo(g, method, path, body, nil)
	return s
}

func topoDo(g *gateway, method, path, body string, header http.Header) (int, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		return 0, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func topoPercentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99+99)/100-1]
}

// topoHistogram counts the delays in buckets of powers of two from 250 µs.
func topoHistogram(ds []time.Duration) string {
	var b strings.Builder
	lo := time.Duration(0)
	for hi := 250 * time.Microsecond; lo < slices.Max(ds); hi *= 2 {
		n := 0
		for _, d := range ds {
			if d >= lo && d < hi {
				n++
			}
		}
		fmt.Fprintf(&b, "[%v,%v):%d ", lo, hi, n)
		lo = hi
	}
	return strings.TrimSpace(b.String())
}
