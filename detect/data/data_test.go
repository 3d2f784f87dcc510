package data

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/baseline"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/internal/store"
)

// prefix matches paths under a prefix, as the glue's Caddy matcher would.
type prefix string

func (p prefix) Match(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, string(p)) }

type recorder struct {
	mu       sync.Mutex
	findings []detect.Finding
}

func (r *recorder) Act(_ context.Context, f detect.Finding) detect.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.findings = append(r.findings, f)
	return detect.Outcome{}
}

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

type fixture struct {
	d    *Detector
	rec  *recorder
	pool *detect.Pool
}

func newFixture(t *testing.T, groups []Group, sens []Sensitive) fixture {
	t.Helper()
	rec, pool := &recorder{}, detect.NewPool(64, nil)
	d, err := New(Options{Groups: groups, Sensitive: sens, Sums: store.NewMemorySums(nil), Profiles: store.NewMemoryProfiles(nil), Actor: rec, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{d, rec, pool}
}

// export runs one request through the check and the tap: a CSV answer of
// n rows for user (with claims) at now. It returns the refusal, if any.
func (fx fixture) export(path, user, dept string, n int, now time.Time) *detect.Refusal {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	req := &detect.Request{HTTP: r, IP: netip.MustParseAddr("198.51.100.9"), Start: now}
	if user != "" {
		req.Identity = &detect.Identity{User: user, UserKey: detect.AccountKey(user), ClaimRoles: map[string][]string{"dept": {dept}}}
	}
	if ref := fx.d.Check(req); ref != nil {
		return ref
	}
	tap := fx.d.Tap(req)
	if tap == nil {
		return nil
	}
	tap.Header(http.StatusOK, http.Header{"Content-Type": {"text/csv"}})
	var b strings.Builder
	b.WriteString("id,name\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,x\n", i)
	}
	tap.Write([]byte(b.String()))
	tap.Done(true)
	fx.pool.Wait()
	return nil
}

func exportGroup(t *testing.T, over Over) Group {
	bl, err := baseline.New(baseline.Options{Window: time.Hour, Factor: 5, MinHistory: 4, Profiles: store.NewMemoryProfiles(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return Group{Routes: []Route{{Pattern: "/export/*", Match: prefix("/export/")}}, Rows: Limit{Max: 50_000, Within: time.Hour},
		Baseline: bl, Peers: "dept", Over: over}
}

var t0 = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

// TestVolumeAboveBaseline: a user at a steady 100 rows an hour who takes
// 20 times that is DATA_ACCESS_ANOMALY with the baseline and the figure.
func TestVolumeAboveBaseline(t *testing.T) {
	fx := newFixture(t, []Group{exportGroup(t, OverAlert)}, nil)
	for h := 0; h < 6; h++ {
		fx.export("/export/c.csv", "alice", "", 100, t0.Add(time.Duration(h)*time.Hour))
	}
	if got := fx.rec.of(detect.DataAccessAnomaly); len(got) != 0 {
		t.Fatalf("a steady user is anomalous: %+v", got)
	}
	fx.export("/export/c.csv", "alice", "", 2000, t0.Add(6*time.Hour))
	got := fx.rec.of(detect.DataAccessAnomaly)
	if len(got) != 1 || got[0].Details["measure"] != "rows" || got[0].Details["observed"] == nil || got[0].Details["baseline"] == nil {
		t.Fatalf("want one anomaly with its figures: %+v", got)
	}
}

// TestPeersAtTheSameVolume: an analyst taking what their whole team takes
// is not anomalous; far above the team, and above their own habit, is an
// insider.
func TestPeersAtTheSameVolume(t *testing.T) {
	fx := newFixture(t, []Group{exportGroup(t, OverAlert)}, nil)
	for h := 0; h < 8; h++ {
		for i := 0; i < 5; i++ {
			fx.export("/export/c.csv", fmt.Sprintf("analyst%d", i), "analytics", 10_000, t0.Add(time.Duration(h)*time.Hour))
		}
		fx.export("/export/c.csv", "newcomer", "analytics", 10, t0.Add(time.Duration(h)*time.Hour))
	}
	fx.export("/export/c.csv", "newcomer", "analytics", 10_000, t0.Add(8*time.Hour))
	if got := fx.rec.of(detect.DataAccessAnomaly); len(got) != 0 {
		t.Fatalf("an analyst at the team's volume is anomalous: %+v", got[0].Details)
	}
	fx.export("/export/c.csv", "analyst0", "analytics", 200_000, t0.Add(9*time.Hour))
	got := fx.rec.of(detect.DataAccessAnomaly)
	if len(got) != 1 || got[0].Details["insider"] != true {
		t.Fatalf("want one insider anomaly: %+v", got)
	}
}

// TestOverRevokeEndsSessions: passing a limit under over revoke asks the
// responder to end the user's sessions; an anonymous subject has none.
func TestOverRevokeEndsSessions(t *testing.T) {
	g := exportGroup(t, OverRevoke)
	g.Baseline = nil
	fx := newFixture(t, []Group{g}, nil)
	fx.export("/export/c.csv", "mallory", "", 60_000, t0)
	got := fx.rec.of(detect.BulkExport)
	if len(got) != 1 || got[0].Action != detect.EndSessions || got[0].Target != "mallory" || got[0].Details["observed"] != int64(60_000) {
		t.Fatalf("want BULK_EXPORT ending mallory's sessions: %+v", got)
	}
}

// TestThrottle: under over throttle a subject at a limit is refused with
// 429 for the window; another subject is not.
func TestThrottle(t *testing.T) {
	g := exportGroup(t, OverThrottle)
	g.Baseline = nil
	fx := newFixture(t, []Group{g}, nil)
	fx.export("/export/c.csv", "mallory", "", 60_000, t0)
	ref := fx.export("/export/c.csv", "mallory", "", 1, t0.Add(time.Minute))
	if ref == nil || ref.Status != http.StatusTooManyRequests || ref.Retry != time.Hour {
		t.Fatalf("want 429 for an hour: %+v", ref)
	}
	if ref := fx.export("/export/c.csv", "alice", "", 1, t0.Add(time.Minute)); ref != nil {
		t.Fatalf("another user is throttled: %+v", ref)
	}
	if ref := fx.export("/export/c.csv", "mallory", "", 1, t0.Add(61*time.Minute)); ref != nil {
		t.Fatalf("still throttled after the window: %+v", ref)
	}
}

// TestSensitiveSeverity: a first access is MEDIUM; the habit of daytime
// access makes a 3 a.m. access MEDIUM again, with its reason.
func TestSensitiveSeverity(t *testing.T) {
	fx := newFixture(t, nil, []Sensitive{{Routes: []Route{{Pattern: "/payroll", Match: prefix("/payroll")}}}})
	for i := 0; i < 12; i++ {
		fx.export("/payroll", "bob", "", 3, t0.Add(time.Duration(i)*24*time.Hour))
	}
	fx.export("/payroll", "bob", "", 3, time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC))
	got := fx.rec.of(detect.SensitiveDataAccess)
	if len(got) != 13 {
		t.Fatalf("want every access recorded, got %d", len(got))
	}
	if got[0].Severity != detect.Medium || fmt.Sprint(got[0].Details["reasons"]) != "[first_access]" {
		t.Fatalf("first access: %v %v", got[0].Severity, got[0].Details)
	}
	if got[1].Severity != detect.Low {
		t.Fatalf("a habitual access: %v %v", got[1].Severity, got[1].Details)
	}
	if last := got[12]; last.Severity != detect.Medium || fmt.Sprint(last.Details["reasons"]) != "[unusual_hour]" {
		t.Fatalf("3 a.m.: %v %v", last.Severity, last.Details)
	}
}

// TestPageSize: an oversized page on an export route is an unusual query.
func TestPageSize(t *testing.T) {
	g := exportGroup(t, OverAlert)
	q, err := query.New(query.Options{PageSize: &query.PageSize{Max: 100}})
	if err != nil {
		t.Fatal(err)
	}
	g.Query, g.Baseline = q, nil
	fx := newFixture(t, []Group{g}, nil)
	fx.export("/export/c.csv?limit=100000", "alice", "", 1, t0)
	fx.export("/export/c.csv?limit=50", "alice", "", 1, t0)
	got := fx.rec.of(detect.DataAccessAnomaly)
	if len(got) != 1 || got[0].Details["kind"] != "page_size" {
		t.Fatalf("want one page_size anomaly: %+v", got)
	}
}

// TestRequestsLimit: the request that passes the requests limit raises
// BULK_EXPORT once; without throttle none is refused (counted off the
// request path).
func TestRequestsLimit(t *testing.T) {
	g := exportGroup(t, OverAlert)
	g.Baseline, g.Rows, g.Reqs = nil, Limit{}, Limit{Max: 3, Within: time.Hour}
	fx := newFixture(t, []Group{g}, nil)
	for i := 0; i < 6; i++ {
		if ref := fx.export("/export/c.csv", "alice", "", 1, t0.Add(time.Duration(i)*time.Second)); ref != nil {
			t.Fatalf("request %d refused without over throttle: %+v", i, ref)
		}
	}
	got := fx.rec.of(detect.BulkExport)
	if len(got) != 1 || got[0].Details["measure"] != "requests" || got[0].Details["observed"] != int64(4) {
		t.Fatalf("want one BULK_EXPORT at the 4th request: %+v", got)
	}
}
