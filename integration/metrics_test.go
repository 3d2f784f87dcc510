package integration

import (
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// vigilLines keeps the vigil_ families of an exposition, with their HELP
// and TYPE lines.
func vigilLines(exposition string) string {
	var b strings.Builder
	for _, line := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(line, "vigil_") || strings.HasPrefix(line, "# HELP vigil_") || strings.HasPrefix(line, "# TYPE vigil_") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestMetrics: after a lockout and a block, the admin endpoint's /metrics
// carries the vigil_ series with the values that scenario implies, without
// any identifier in a label, and the families pass the Prometheus linter.
func TestMetrics(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{Global: "store memory"})

	for i := 0; i < 3; i++ {
		wantFailedLogin(t, g.login("alice", "x"))
	}
	wantRefused(t, g.login("alice", "wonderland"), http.StatusTooManyRequests, 1, 2)
	wantSuccessLogin(t, g.login("bob", "builder"))
	if r := g.get("/dashboard"); r.Status != http.StatusOK {
		t.Fatalf("GET /dashboard: %s", r)
	}

	exp := g.scrape()
	vl := vigilLines(exp)
	want := []struct {
		name, labels string
		value        float64
	}{
		{"vigil_login_attempts_total", `outcome="failure"`, 3},
		{"vigil_login_attempts_total", `outcome="refused"`, 1},
		{"vigil_login_attempts_total", `outcome="success"`, 1},
		{"vigil_events_total", `severity="LOW",type="FAILED_LOGIN"`, 3},
		{"vigil_events_total", `severity="MEDIUM",type="ACCOUNT_LOCKED"`, 1},
		{"vigil_events_total", `severity="LOW",type="SUCCESSFUL_LOGIN"`, 1},
		{"vigil_enforced_requests_total", `action="lock"`, 1},
		{"vigil_active_decisions", `kind="lock"`, 1},
		{"vigil_active_decisions", `kind="block"`, 0},
		{"vigil_handler_duration_seconds_count", `kind="login"`, 5},
	}
	for _, w := range want {
		v, ok := metricValue(exp, w.name, w.labels)
		if !ok || v != w.value {
			t.Fatalf("%s{%s} = %v (present %v), want %v\n%s", w.name, w.labels, v, ok, w.value, vl)
		}
	}
	if v, ok := metricValue(exp, "vigil_handler_duration_seconds_count", `kind="other"`); !ok || v < 1 {
		t.Fatalf(`vigil_handler_duration_seconds_count{kind="other"} = %v (present %v), want >= 1`+"\n%s", v, ok, vl)
	}
	for _, fam := range []string{"vigil_login_attempts_total counter", "vigil_events_total counter", "vigil_enforced_requests_total counter", "vigil_active_decisions gauge", "vigil_handler_duration_seconds histogram"} {
		name := strings.Fields(fam)[0]
		if !strings.Contains(vl, "# TYPE "+fam+"\n") || !strings.Contains(vl, "# HELP "+name+" ") {
			t.Fatalf("missing HELP/TYPE %s in:\n%s", fam, vl)
		}
	}

	// a manual block of the client: 403 counted as a block enforcement
	if status, body := g.adminDo(http.MethodPost, "/vigil/blocks", map[string]string{"ip": "127.0.0.1", "duration": "1m"}); status != http.StatusCreated {
		t.Fatalf("POST /vigil/blocks: %d %s", status, body)
	}
	wantRefused(t, g.get("/dashboard"), http.StatusForbidden, 59, 60)
	exp = g.scrape()
	vl = vigilLines(exp)
	for _, w := range []struct {
		name, labels string
		value        float64
	}{
		{"vigil_enforced_requests_total", `action="block"`, 1},
		{"vigil_active_decisions", `kind="block"`, 1},
		{"vigil_events_total", `severity="LOW",type="ADMIN_ACTION"`, 1},
	} {
		if v, ok := metricValue(exp, w.name, w.labels); !ok || v != w.value {
			t.Fatalf("%s{%s} = %v (present %v), want %v\n%s", w.name, w.labels, v, ok, w.value, vl)
		}
	}

	// no identifier ever becomes a label
	for _, line := range strings.Split(vl, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, bad := range []string{"alice", "bob", "127.0.0.1"} {
			if strings.Contains(line, bad) {
				t.Fatalf("metric line carries the identifier %q: %s", bad, line)
			}
		}
	}

	// the linter promtool uses
	problems, err := promlint.New(strings.NewReader(vl)).Lint()
	if err != nil {
		t.Fatalf("promlint could not parse the vigil_ families: %v\n%s", err, vl)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	// and promtool itself, when installed
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not on PATH: skipping `promtool check metrics` (the same linter ran in-process above)")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(vl)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || strings.TrimSpace(out.String()) != "" {
		t.Fatalf("promtool check metrics: %v\n%s\n--- input ---\n%s", err, out.String(), vl)
	}
}
