package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportAgreesWithEvents: `caddy vigil report` and GET /vigil/report
// on a running gateway count exactly the events the admin API lists.
func TestReportAgreesWithEvents(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayConfig{})
	for i := 0; i < 3; i++ {
		wantFailedLogin(t, g.login("alice", "wrong"))
	}
	wantSuccessLogin(t, g.login("bob", "builder"))
	g.waitEvents(q("type", "ACCOUNT_LOCKED"), "alice's lock", func(evs []event) bool { return len(evs) == 1 })
	all := g.events(q())

	out := filepath.Join(t.TempDir(), "report.json")
	if _, stderr, err := g.vigilCLI("report", "--format", "json", "--out", out); err != nil {
		t.Fatalf("caddy vigil report: %v\n%s", err, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Summary struct {
			Events int `json:"events"`
			ByType []struct {
				Type  string `json:"type"`
				Total int    `json:"total"`
			} `json:"by_type"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("the report is not JSON: %v\n%.300s", err, raw)
	}
	if rep.Summary.Events != len(all) {
		t.Fatalf("the report counts %d events, the admin API lists %d", rep.Summary.Events, len(all))
	}
	counts := map[string]int{}
	for _, e := range all {
		counts[e.Type]++
	}
	for _, bt := range rep.Summary.ByType {
		if counts[bt.Type] != bt.Total {
			t.Errorf("%s: report %d, events %d", bt.Type, bt.Total, counts[bt.Type])
		}
	}

	status, body := g.adminDo(http.MethodGet, "/vigil/report?format=html", nil)
	if status != http.StatusOK || !strings.Contains(string(body), "<html") || strings.Contains(string(body), "src=\"http") {
		t.Fatalf("GET /vigil/report: %d %.200s", status, body)
	}
	if status, body := g.adminDo(http.MethodGet, "/vigil/report?from=yesterday", nil); status != http.StatusBadRequest {
		t.Fatalf("a bad period: %d %s", status, body)
	}
}

// TestReportPrintsToPDF: the HTML report prints with headless Chromium,
// as an auditor would save it.
func TestReportPrintsToPDF(t *testing.T) {
	t.Parallel()
	chromium := needPackagingTool(t, "chromium", "printing the report to PDF")
	g := startGateway(t, gatewayConfig{})
	wantFailedLogin(t, g.login("alice", "wrong"))
	g.waitEvents(q("type", "FAILED_LOGIN"), "a failure", func(evs []event) bool { return len(evs) == 1 })
	dir := t.TempDir()
	html := filepath.Join(dir, "report.html")
	if _, stderr, err := g.vigilCLI("report", "--format", "html", "--out", html); err != nil {
		t.Fatalf("caddy vigil report: %v\n%s", err, stderr)
	}
	pdf := filepath.Join(dir, "report.pdf")
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--print-to-pdf="+pdf, "file://"+html)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --print-to-pdf: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(pdf)
	if err != nil || !bytes.HasPrefix(raw, []byte("%PDF-")) {
		t.Fatalf("no PDF written: %v (%d bytes)", err, len(raw))
	}
	if !bytes.Contains(raw, []byte("/Type /Page")) {
		t.Fatalf("the PDF has no page")
	}
	t.Logf("report printed to %s (%d bytes)", pdf, len(raw))
}
