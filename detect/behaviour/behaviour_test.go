package behaviour

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/risk"
)

// fixedScore scores every login the same and records what it learned.
type fixedScore struct {
	score   int
	mu      sync.Mutex
	learned []risk.Observation
}

func (s *fixedScore) Score(_ context.Context, o risk.Observation) (risk.Assessment, error) {
	return risk.Assessment{Score: s.score, Learned: true}, nil
}

func (s *fixedScore) Learn(_ context.Context, o risk.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.learned = append(s.learned, o)
	return nil
}

type actor struct {
	mu       sync.Mutex
	findings []detect.Finding
}

func (a *actor) Act(_ context.Context, f detect.Finding) detect.Outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.findings = append(a.findings, f)
	return detect.Outcome{}
}

type places struct {
	mu               sync.Mutex
	logins, sessions []detect.Facts
}

func (p *places) Login(_ context.Context, f detect.Facts, _ time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logins = append(p.logins, f)
}

func (p *places) Session(_ context.Context, f detect.Facts, _ string, _, _ time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sessions = append(p.sessions, f)
}

var berlin = detect.Place{Country: "DE", City: "Berlin", ASN: 3320}

func loginRequest(user string, header http.Header) *detect.Request {
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	req := &detect.Request{HTTP: r, IP: netip.MustParseAddr("192.0.2.10"), Start: time.Now()}
	req.MarkLogin(0)
	req.Login.User = user
	return req
}

func newDetector(t *testing.T, score int, th Thresholds, monitor bool) (*Detector, *actor, *places, *detect.Pool) {
	t.Helper()
	a, p, pool := &actor{}, &places{}, detect.NewPool(8, nil)
	d, err := New(Options{
		Locator: detect.LocatorFunc(func(netip.Addr) detect.Place { return berlin }),
		Places:  p, Risk: &fixedScore{score: score}, Thresholds: th,
		Actor: a, Pool: pool, MonitorOnly: monitor,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, a, p, pool
}

func TestRiskHeader(t *testing.T) {
	th := Thresholds{Alert: 30, Challenge: 16, Block: 80}
	cases := []struct {
		score  int
		header string
		refuse bool
	}{{0, "", false}, {15, "", false}, {16, "16", false}, {79, "79", false}, {80, "", true}}
	for _, tc := range cases {
		d, a, _, pool := newDetector(t, tc.score, th, false)
		req := loginRequest("alice", http.Header{"X-Vigil-Risk": {"0"}, "x-vigil-risk": {"0"}})
		ref := d.Check(req)
		pool.Wait()
		if (ref != nil) != tc.refuse {
			t.Fatalf("score %d: refusal %v, want %v", tc.score, ref, tc.refuse)
		}
		if ref != nil && (ref.Status != http.StatusForbidden || len(a.findings) != 1 || a.findings[0].Type != detect.SuspiciousLogin) {
			t.Fatalf("score %d: a block is a 403 with SUSPICIOUS_LOGIN: %+v %+v", tc.score, ref, a.findings)
		}
		if ref == nil && req.HTTP.Header.Get("X-Vigil-Risk") != tc.header {
			t.Fatalf("score %d: the app gets X-Vigil-Risk %q, want %q", tc.score, req.HTTP.Header.Get("X-Vigil-Risk"), tc.header)
		}
		if req.Login.Place != berlin {
			t.Fatalf("the login is not located: %+v", req.Login.Place)
		}
	}
}

func TestClientRiskHeaderStrippedEverywhere(t *testing.T) {
	d, _, _, _ := newDetector(t, 0, Thresholds{Challenge: 16, Header: "X-Login-Risk"}, false)
	r := httptest.NewRequest(http.MethodGet, "/account", nil)
	r.Header.Set("X-Login-Risk", "0")
	if ref := d.Check(&detect.Request{HTTP: r}); ref != nil || r.Header.Get("X-Login-Risk") != "" {
		t.Fatalf("a client-sent risk header reached the app on a non-login route: %q", r.Header.Get("X-Login-Risk"))
	}
}

func TestMonitorOnlyNeverBlocks(t *testing.T) {
	d, _, _, _ := newDetector(t, 95, Thresholds{Block: 80, Challenge: 16}, true)
	req := loginRequest("alice", nil)
	if ref := d.Check(req); ref != nil {
		t.Fatalf("monitor_only refused a login: %+v", ref)
	}
	if req.HTTP.Header.Get("X-Vigil-Risk") != "95" || req.Login.RiskDetails["monitor_only"] != true {
		t.Fatalf("monitor_only: header %q details %v", req.HTTP.Header.Get("X-Vigil-Risk"), req.Login.RiskDetails)
	}
}

// TestOnlySuccessesTeach: a failure teaches neither the places nor the
// risk profile; a success teaches both, and reports a risky one.
func TestOnlySuccessesTeach(t *testing.T) {
	a, p, pool := &actor{}, &places{}, detect.NewPool(8, nil)
	s := &fixedScore{score: 40}
	d, err := New(Options{Places: p, Risk: s, Thresholds: Thresholds{Alert: 30}, Actor: a, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	fail := loginRequest("alice", nil)
	d.Check(fail)
	fail.Login.Outcome = detect.OutcomeFailure
	d.Observe(fail, detect.Answer{Status: 401, Time: time.Now()})
	pool.Wait()
	if len(p.logins) != 0 || len(s.learned) != 0 || len(a.findings) != 0 {
		t.Fatalf("a failure taught or reported: places %d risk %d findings %d", len(p.logins), len(s.learned), len(a.findings))
	}
	ok := loginRequest("alice", nil)
	d.Check(ok)
	ok.Login.Outcome = detect.OutcomeSuccess
	d.Observe(ok, detect.Answer{Status: 302, Time: time.Now()})
	pool.Wait()
	if len(p.logins) != 1 || len(s.learned) != 1 || len(a.findings) != 1 || a.findings[0].Type != detect.SuspiciousLogin {
		t.Fatalf("a success: places %d risk %d findings %+v", len(p.logins), len(s.learned), a.findings)
	}
	if s.learned[0].User != detect.AccountKey("alice") {
		t.Fatal("the risk model must learn the account's key, never the name")
	}
}

// TestSessionsJudgedOnNewAddressOnly: a session is handed to Places on its
// first use and when its address changes, not on every request.
func TestSessionsJudgedOnNewAddressOnly(t *testing.T) {
	d, _, p, pool := newDetector(t, 0, Thresholds{}, false)
	id := &detect.Identity{User: "alice", UserKey: detect.AccountKey("alice"), JTI: "t1", Expires: time.Now().Add(time.Hour)}
	for _, ip := range []string{"192.0.2.10", "192.0.2.10", "192.0.2.10", "198.51.100.7", "198.51.100.7"} {
		req := &detect.Request{HTTP: httptest.NewRequest(http.MethodGet, "/", nil), IP: netip.MustParseAddr(ip), Identity: id}
		d.Observe(req, detect.Answer{Status: 200, Time: time.Now()})
	}
	pool.Wait()
	if len(p.sessions) != 2 || p.sessions[0].Place != berlin {
		t.Fatalf("want 2 located session checks, got %+v", p.sessions)
	}
}

// gatedScore blocks every Score until release is closed, and counts calls.
type gatedScore struct {
	fixedScore
	release chan struct{}
	calls   atomic.Int32
}

func (s *gatedScore) Score(ctx context.Context, o risk.Observation) (risk.Assessment, error) {
	s.calls.Add(1)
	<-s.release
	return s.fixedScore.Score(ctx, o)
}

// TestAheadOverlapsTheReservation: Ahead starts the score without waiting
// for it (the login detector reserves meanwhile), Check then waits for that
// score instead of reading the store a second time, and the challenge is
// the one the score calls for.
func TestAheadOverlapsTheReservation(t *testing.T) {
	s := &gatedScore{fixedScore: fixedScore{score: 20}, release: make(chan struct{})}
	pool := detect.NewPool(8, nil)
	d, err := New(Options{
		Locator: detect.LocatorFunc(func(netip.Addr) detect.Place { return berlin }),
		Risk:    s, Thresholds: Thresholds{Challenge: 16}, Actor: &actor{}, Pool: pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	req := loginRequest("alice", nil)
	d.Ahead(req) // returns while Score is held: it did not wait
	if req.Login.Place != berlin || req.Login.Ahead == nil {
		t.Fatalf("Ahead did not locate the login or start its score: %+v", req.Login)
	}
	checked := make(chan *detect.Refusal)
	go func() { checked <- d.Check(req) }()
	select {
	case <-checked:
		t.Fatal("Check answered before the score it waits for")
	case <-time.After(20 * time.Millisecond):
	}
	close(s.release)
	if ref := <-checked; ref != nil {
		t.Fatalf("refused: %+v", ref)
	}
	pool.Wait()
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("Score called %d times, want once (Check must use Ahead's)", n)
	}
	if got := req.HTTP.Header.Get("X-Vigil-Risk"); got != "20" {
		t.Fatalf("X-Vigil-Risk %q, want the prefetched score 20", got)
	}
}

// TestAheadWithoutAccountOrRisk: nothing is started for a login without an
// account, or on a site that does not score risk.
func TestAheadWithoutAccountOrRisk(t *testing.T) {
	d, _, _, _ := newDetector(t, 10, Thresholds{}, false)
	req := loginRequest("", nil)
	d.Ahead(req)
	if req.Login.Ahead != nil {
		t.Fatal("a score was started for a login without an account")
	}
	plain, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	req = loginRequest("alice", nil)
	plain.Ahead(req)
	if req.Login.Ahead != nil {
		t.Fatal("a score was started on a site without risk")
	}
}
