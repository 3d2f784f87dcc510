package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func TestDecisionsTable(t *testing.T) {
	ds := []respond.Decision{
		{Kind: respond.Lock, Target: "alice", Reason: "ACCOUNT_LOCKED", Source: "auto", Strike: 2, Created: testNow.Add(-time.Minute), Until: testNow.Add(90 * time.Second)},
		{Kind: respond.Block, Target: "203.0.113.7", Reason: "failed_logins", Source: "auto", Strike: 1, Created: testNow, Until: testNow.Add(time.Hour)},
		{Kind: respond.Block, Target: "198.51.100.0/24", Reason: "scanner range", Source: "admin", Strike: 1, Created: testNow, Until: testNow.Add(72*time.Hour + 30*time.Minute)},
	}
	raw, _ := json.Marshal(map[string]any{"decisions": ds})
	var b bytes.Buffer
	if err := renderDecisionList(tableOut(&b), raw); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"KIND TARGET REASON SOURCE STRIKE UNTIL REMAINING",
		"block 198.51.100.0/24 scanner range admin 1 2026-01-05 03:34:05 3d0h",
		"block 203.0.113.7 failed_logins auto 1 2026-01-02 04:04:05 1h",
		"lock alice ACCOUNT_LOCKED auto 2 2026-01-02 03:05:35 1m30s",
	}
	if got := lines(b.String()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
	// the columns line up: every row starts its TARGET where the header does
	rows := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	col := strings.Index(rows[0], "TARGET")
	for _, r := range rows[1:] {
		if r[col-1] != ' ' || r[col] == ' ' {
			t.Fatalf("column TARGET not aligned at %d:\n%s", col, b.String())
		}
	}

	b.Reset()
	if err := renderDecisionList(tableOut(&b), []byte(`{"decisions":[]}`)); err != nil || b.String() != "No active decisions.\n" {
		t.Fatalf("empty: %v %q", err, b.String())
	}
}

func TestEventsTableCleansClientInput(t *testing.T) {
	evs := []detect.Event{{
		Time: testNow, Type: detect.FailedLogin, Severity: detect.Low, Site: "shop",
		User: "\x1b[31mroot\u202e", IP: "203.0.113.7",
		Details: detect.Details{"path": "/login\tx", "method": "POST", "count": float64(3), "nested": map[string]any{"a": "b"}},
	}}
	raw, _ := json.Marshal(respond.EventPage{Events: evs, Next: "42"})
	var b bytes.Buffer
	if err := renderEventPage(tableOut(&b), raw); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\u202e\t") {
		t.Fatalf("control characters reached the terminal: %q", out)
	}
	got := lines(out)
	want := []string{
		"TIME TYPE SEVERITY SITE USER IP DETAILS",
		`2026-01-02 03:04:05 FAILED_LOGIN LOW shop \x1b[31mroot\u202e 203.0.113.7 count=3 method=POST nested={"a":"b"} path=/login\tx`,
		"More: add --cursor 42",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
