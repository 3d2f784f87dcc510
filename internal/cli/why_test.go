package cli

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func TestWhySubjectCovers(t *testing.T) {
	block := func(target string) respond.Decision { return respond.Decision{Kind: respond.Block, Target: target} }
	lock := respond.Decision{Kind: respond.Lock, Target: "Alice"}
	revoke := respond.Decision{Kind: respond.RevokeUser, Target: "alice"}
	for _, c := range []struct {
		subject string
		d       respond.Decision
		want    bool
	}{
		{"203.0.113.7", block("203.0.113.7"), true},
		{"203.0.113.7", block("203.0.113.0/24"), true},
		{"::ffff:203.0.113.7", block("203.0.113.7"), true},
		{"203.0.113.7", block("203.0.113.8"), false},
		{"2001:db8::1", block("2001:db8::/64"), true},
		{"2001:DB8:0:0::1", block("2001:db8::1"), true},
		{"2001:db8:0:1::1", block("2001:db8::/64"), false},
		{"198.51.100.0/24", block("198.51.100.9"), true},
		{"alice", lock, true},
		{"ALICE", revoke, true},
		{"bob", lock, false},
		{"203.0.113.7", lock, false},
		{"alice", block("203.0.113.7"), false},
	} {
		if got := parseWhySubject(c.subject, false).covers(c.d); got != c.want {
			t.Errorf("%s covered by %s %s: %v, want %v", c.subject, c.d.Kind, c.d.Target, got, c.want)
		}
	}
	if s := parseWhySubject("203.0.113.7", true); s.as() != "user" {
		t.Fatalf("--user: %+v", s)
	}
}

func TestWhyText(t *testing.T) {
	trigger := detect.Event{Time: testNow, Type: detect.IPBlocked, Severity: detect.Medium, IP: "203.0.113.7",
		Details: detect.Details{"reason": "failed_logins", "window": "1m0s", "threshold": float64(3)}}
	rep := whyReport{Subject: "203.0.113.7", As: "ip", Decisions: []whyDecision{{
		Decision:  respond.Decision{Kind: respond.Block, Target: "203.0.113.0/24", Reason: "failed_logins", Source: "auto", Site: "shop", Strike: 1, Created: testNow, Until: testNow.Add(time.Hour)},
		Remaining: "1h", Trigger: &trigger, Window: "1m",
		Events: []detect.Event{
			{Time: testNow.Add(-2 * time.Second), Type: detect.FailedLogin, Severity: detect.Low, User: "bob", IP: "203.0.113.7"},
			trigger,
		},
	}}}
	var b bytes.Buffer
	if err := writeWhy(tableOut(&b), rep); err != nil {
		t.Fatal(err)
	}
	got := lines(b.String())
	want := []string{
		"203.0.113.7: 1 active decision.",
		"",
		"BLOCK 203.0.113.0/24 (covers 203.0.113.7)",
		"reason failed_logins",
		"source auto, site shop",
		"strike 1",
		"since 2026-01-02 03:04:05",
		"until 2026-01-02 04:04:05 (1h left)",
		"made by 2026-01-02 03:04:05 IP_BLOCKED MEDIUM reason=failed_logins threshold=3 window=1m0s",
		"events 2 in the 1m before it:",
		"TIME TYPE SEVERITY SITE USER IP DETAILS",
		"2026-01-02 03:04:03 FAILED_LOGIN LOW - bob 203.0.113.7 -",
		"2026-01-02 03:04:05 IP_BLOCKED MEDIUM - - 203.0.113.7 reason=failed_logins threshold=3 window=1m0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("why:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b.Reset()
	if err := writeWhy(tableOut(&b), whyReport{Subject: "bob", As: "user"}); err != nil || b.String() != "No active decision on bob.\n" {
		t.Fatalf("none: %v %q", err, b.String())
	}
}

func TestWhyTargets(t *testing.T) {
	block := respond.Decision{Kind: respond.Block, Target: "2001:db8::/64"}
	if !eventAbout(detect.Event{IP: "2001:db8::5"}, block) || eventAbout(detect.Event{IP: "2001:db8:1::5"}, block) || eventAbout(detect.Event{}, block) {
		t.Fatal("eventAbout for a block")
	}
	lock := respond.Decision{Kind: respond.Lock, Target: "dave"}
	if !eventAbout(detect.Event{User: "Dave"}, lock) || eventAbout(detect.Event{User: "eve"}, lock) {
		t.Fatal("eventAbout for a lock")
	}
	admin := detect.Event{Type: detect.AdminAction, Details: detect.Details{"action": "block", "target": "2001:DB8::/64"}}
	if !adminActionOn(admin, block) || adminActionOn(admin, lock) {
		t.Fatal("adminActionOn")
	}
}

// TestWhyAsks: `why` on an address asks for its trigger and its causes
// in the window the trigger names, and reports both.
func TestWhyAsks(t *testing.T) {
	created := time.Now().Add(-time.Minute).UTC()
	d := respond.Decision{Kind: respond.Block, Target: "203.0.113.7", Source: "auto", Strike: 1, Created: created, Until: created.Add(time.Hour)}
	trigger := detect.Event{Time: created, Type: detect.IPBlocked, Severity: detect.Medium, IP: "203.0.113.7", Details: detect.Details{"window": "10m0s"}}
	list, _ := json.Marshal(map[string]any{"decisions": []respond.Decision{d, {Kind: respond.Lock, Target: "alice"}}})
	page, _ := json.Marshal(respond.EventPage{Events: []detect.Event{trigger}})
	a := &fakeAdmin{answers: map[string]answer{"/vigil/decisions": {200, string(list)}, "/vigil/events": {200, string(page)}}}
	e, out, _ := testEnv(a)
	e.Out.JSON = true
	if err := e.Why("203.0.113.7", WhyOptions{Limit: 50}); err != nil {
		t.Fatal(err)
	}
	var rep whyReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Decisions) != 1 {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if wd := rep.Decisions[0]; wd.Trigger == nil || wd.Window != "10m" || len(wd.Events) != 1 {
		t.Fatalf("decision: %+v", wd)
	}
	if len(a.asked) != 3 || !strings.Contains(a.asked[1], "type=IP_BLOCKED%2CSYSTEM_INTRUSION") ||
		!strings.Contains(a.asked[2], "since="+url.QueryEscape(created.Add(-10*time.Minute-time.Second).Format(time.RFC3339Nano))) {
		t.Fatalf("asked:\n%s", strings.Join(a.asked, "\n"))
	}
}
