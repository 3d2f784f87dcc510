package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server counts what the generator sent, checks that each kind is built
// as scripts/load-compare.sh builds it, and answers after delay.
type server struct {
	t      *testing.T
	delay  func(n int64) time.Duration
	n      atomic.Int64
	mu     sync.Mutex
	count  map[string]int
	bad    []string
	first  time.Time
	last   time.Time
	status map[string]int // an answer other than 200, by path
}

func newServer(t *testing.T, delay func(n int64) time.Duration) (*server, *httptest.Server) {
	s := &server{t: t, delay: delay, count: map[string]int{}, status: map[string]int{}}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.n.Add(1)
	kind, problem := "", ""
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/products/42":
		kind = "other"
	case r.Method == http.MethodGet && r.URL.Path == "/account":
		kind = "jwt"
		if r.Header.Get("Authorization") != "Bearer tok" {
			problem = "jwt without its token"
		}
	case r.Method == http.MethodPost && r.URL.Path == "/login":
		kind = "login"
		user, err := strconv.Atoi(strings.TrimPrefix(r.PostFormValue("username"), "user"))
		if err != nil || user < 1 || user > 50 || r.PostFormValue("password") != "wrong" {
			problem = "login form " + r.Form.Encode()
		}
	default:
		problem = r.Method + " " + r.URL.Path
	}
	now := time.Now()
	s.mu.Lock()
	s.count[kind]++
	if problem != "" {
		s.bad = append(s.bad, problem)
	}
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	code := s.status[r.URL.Path]
	s.mu.Unlock()
	if s.delay != nil {
		time.Sleep(s.delay(n))
	}
	if code != 0 {
		w.WriteHeader(code)
	}
	_, _ = w.Write([]byte("ok"))
}

// snapshot is what the server saw, read under its lock.
func (s *server) snapshot() (count map[string]int, bad []string, span time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	count = map[string]int{}
	for k, v := range s.count {
		count[k] = v
	}
	return count, append([]string(nil), s.bad...), s.last.Sub(s.first)
}

func config(url string, rates ...Rate) Config {
	return Config{URL: url, Duration: time.Second, Rates: rates, Token: "tok", Users: 50,
		Conns: 16, MaxInFlight: 1024, Timeout: 5 * time.Second, Tick: time.Millisecond}
}

func TestRatesAndLatency(t *testing.T) {
	s, ts := newServer(t, func(int64) time.Duration { return 20 * time.Millisecond })
	s.status["/account"] = http.StatusForbidden
	c := config(ts.URL, Rate{"other", 100}, Rate{"login", 40}, Rate{"jwt", 10})
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	count, bad, span := s.snapshot()
	if len(bad) > 0 {
		t.Fatalf("badly formed requests: %q", bad[:min(5, len(bad))])
	}
	for _, r := range c.Rates {
		want := int(r.PerSec * c.Duration.Seconds())
		k := rep.Kinds[r.Kind]
		if k == nil {
			t.Fatalf("%s: not in the report", r.Kind)
		}
		// the schedule is exact; the server must have seen nearly all of
		// them (the tolerance is for a very slow machine only)
		if k.Scheduled != want || k.Sent+k.Dropped != want {
			t.Errorf("%s: scheduled %d, sent %d, dropped %d, want %d", r.Kind, k.Scheduled, k.Sent, k.Dropped, want)
		}
		if got := count[r.Kind]; got < want*9/10 || got > want {
			t.Errorf("%s: the server saw %d, want %d (within 10%%)", r.Kind, got, want)
		}
		if k.Errors != 0 || k.Dropped != 0 {
			t.Errorf("%s: %d errors (%s), %d dropped", r.Kind, k.Errors, k.FirstError, k.Dropped)
		}
		if l := k.Latency; l.P50 < 20 || l.P90 < l.P50 || l.P99 < l.P90 || l.Max < l.P99 || l.Max >= 5000 {
			t.Errorf("%s: latency %+v: want 20 ms <= p50 <= p90 <= p99 <= max < the timeout", r.Kind, l)
		}
	}
	if k := rep.Kinds["jwt"]; k.OK != 0 || k.Status["403"] != k.Sent {
		t.Errorf("jwt answered 403: ok %d, status %v, sent %d", k.OK, k.Status, k.Sent)
	}
	if k := rep.Kinds["other"]; k.OK != k.Sent || len(k.Status) != 0 {
		t.Errorf("other: ok %d, status %v, sent %d", k.OK, k.Status, k.Sent)
	}
	if tot := rep.Total; tot.Scheduled != 150 || tot.OK+tot.Status["403"] != tot.Sent || tot.Rate != 150 {
		t.Errorf("total %+v", tot)
	}
	// spread over the second, not sent in a burst
	if span < 700*time.Millisecond {
		t.Errorf("the requests arrived within %v, want them spread over about 1 s", span)
	}
}

// TestStallCounted: with one connection, a server that stalls once for
// 300 ms delays every request due during the stall; their latency, from
// their due time, shows it, where a closed-loop tool counts one slow
// request.
func TestStallCounted(t *testing.T) {
	_, ts := newServer(t, func(n int64) time.Duration {
		if n == 20 {
			return 300 * time.Millisecond
		}
		return 0
	})
	c := config(ts.URL, Rate{"other", 100})
	c.Conns = 1
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	k := rep.Kinds["other"]
	if k.OK != 100 {
		t.Fatalf("ok %d, want 100 (%+v)", k.OK, k)
	}
	// about 30 requests are due during the stall, waiting 0 to 300 ms
	if k.Latency.P90 < 100 || k.Latency.Max < 250 {
		t.Errorf("latency %+v: want p90 >= 100 ms and max >= 250 ms", k.Latency)
	}
}

// TestDropped: past max-inflight requests are dropped and counted, and
// the schedule goes on.
func TestDropped(t *testing.T) {
	s, ts := newServer(t, func(int64) time.Duration { return 200 * time.Millisecond })
	c := config(ts.URL, Rate{"other", 50})
	c.MaxInFlight = 2
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	k := rep.Kinds["other"]
	count, _, _ := s.snapshot()
	if k.Dropped == 0 || k.Sent+k.Dropped != 50 || k.OK != k.Sent || count["other"] != k.Sent {
		t.Errorf("dropped %d, sent %d, ok %d, the server saw %d: want drops, sent+dropped = 50", k.Dropped, k.Sent, k.OK, count["other"])
	}
}

func TestErrors(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // refused
	c := config(url, Rate{"login", 20})
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if k := rep.Kinds["login"]; k.Errors != 20 || k.OK != 0 || k.FirstError == "" || k.Latency.Max != 0 {
		t.Errorf("refused: %+v", k)
	}
}

func TestParseRates(t *testing.T) {
	got, err := ParseRates("other=2000, login=200,jwt=0.5")
	if err != nil || len(got) != 3 || got[0] != (Rate{"other", 2000}) || got[1] != (Rate{"login", 200}) || got[2] != (Rate{"jwt", 0.5}) {
		t.Errorf("ParseRates = %v, %v", got, err)
	}
	for _, bad := range []string{"", "other", "other=x", "other=0", "other=-1", "ftp=3", "other=1,other=2"} {
		if _, err := ParseRates(bad); err == nil {
			t.Errorf("ParseRates(%q) accepted", bad)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p := percentiles(d); p != (Percentiles{P50: 50, P90: 90, P99: 99, Max: 100}) {
		t.Errorf("percentiles = %+v", p)
	}
	if p := percentiles(nil); p != (Percentiles{}) {
		t.Errorf("percentiles(nil) = %+v", p)
	}
}
