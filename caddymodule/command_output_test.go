package caddymodule

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func tableOut(b *bytes.Buffer) output {
	return output{w: b, table: true, now: testNow, loc: time.UTC}
}

// lines splits a table into its lines, each with runs of spaces folded to
// one, so a test does not depend on column widths.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

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

func TestShortDetailsAndCells(t *testing.T) {
	long := detect.Details{"user_agent": strings.Repeat("x", 200)}
	if s := shortDetails(long, 30); len([]rune(s)) != 30 || !strings.HasSuffix(s, "…") {
		t.Fatalf("not cut at 30 runes: %q", s)
	}
	if s := shortDetails(nil, 30); s != "-" {
		t.Fatalf("no details: %q", s)
	}
	if c := cell("", 10); c != "-" {
		t.Fatalf("empty cell: %q", c)
	}
	if c := clean("héllo wörld"); c != "héllo wörld" {
		t.Fatalf("printable text changed: %q", c)
	}
	if c := clean("a\nb\x00c\xff"); c != `a\nb\x00c\ufffd` {
		t.Fatalf("clean: %q", c)
	}
}

func TestDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", 1500 * time.Millisecond: "2s", time.Minute: "1m", time.Hour: "1h",
		24 * time.Hour: "24h", time.Hour + 5*time.Second: "1h0m5s", 90 * time.Minute: "1h30m", 50 * time.Hour: "2d2h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestHealthText(t *testing.T) {
	down := testNow.Add(-12 * time.Second)
	sync := testNow.Add(-3 * time.Second)
	for _, c := range []struct {
		rep  healthReport
		want []string
	}{{
		rep: healthReport{Status: "ok", Message: "vigil store reachable",
			Store:  storeHealth{Type: "redis", Address: "127.0.0.1:6379", Reachable: true, LatencyMS: 0.42, FailMode: "open", LastResync: &sync},
			Queues: queuesHealth{Events: 1, Log: 2, Alerts: map[string]int{"webhook": 3, "email": 0}}},
		want: []string{
			"status ok: vigil store reachable",
			"store redis 127.0.0.1:6379",
			"reachable yes (0.4 ms)",
			"local fallback no",
			"fail_mode open",
			"last resync 2026-01-02 03:04:02 (3s ago)",
			"queued events 1 for the store, 2 for the log",
			"queued alerts email 0, webhook 3",
		},
	}, {
		rep: healthReport{Status: "failing_open", Message: msgStoreDownOpen,
			Store: storeHealth{Type: "redis", Address: "10.0.0.9:6379", Error: "dial tcp 10.0.0.9:6379: connection refused",
				FallbackActive: true, FailMode: "open", DownSince: &down}},
		want: []string{
			"status failing_open: " + msgStoreDownOpen,
			"store redis 10.0.0.9:6379",
			"reachable no: dial tcp 10.0.0.9:6379: connection refused",
			"local fallback active since 2026-01-02 03:03:53 (12s)",
			"fail_mode open",
			"queued events 0 for the store, 0 for the log",
			"queued alerts no alert channels",
		},
	}} {
		raw, _ := json.Marshal(c.rep)
		var b bytes.Buffer
		if err := renderHealth(tableOut(&b), raw); err != nil {
			t.Fatal(err)
		}
		if got := lines(b.String()); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Fatalf("health:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

// TestJSONUnlessTable: without a table, every renderer prints the API's
// JSON, indented, as the CLI always did (scripts read it).
func TestJSONUnlessTable(t *testing.T) {
	raw := []byte(`{"decisions":[{"kind":"block","target":"203.0.113.7"}]}` + "\n")
	for name, r := range map[string]renderFunc{"list": renderDecisionList, "health": renderHealth, "events": renderEventPage, "json": renderJSON} {
		var b bytes.Buffer
		if err := r(output{w: &b}, raw); err != nil {
			t.Fatal(name, err)
		}
		var v any
		if err := json.Unmarshal(b.Bytes(), &v); err != nil || !strings.Contains(b.String(), "\n  \"decisions\": [") {
			t.Fatalf("%s: not indented JSON: %v\n%s", name, err, b.String())
		}
	}
}

func TestOutputOf(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	cmd := &cobra.Command{Use: "x"}
	cmd.Flags().Bool("json", false, "")
	var b bytes.Buffer
	cmd.SetOut(&b)
	isTerminal = func(io.Writer) bool { return false }
	if outputOf(cmd).table {
		t.Fatal("a table for a pipe")
	}
	isTerminal = func(io.Writer) bool { return true }
	if !outputOf(cmd).table {
		t.Fatal("no table on a terminal")
	}
	_ = cmd.Flags().Set("json", "true")
	if outputOf(cmd).table {
		t.Fatal("--json printed a table")
	}
}

func TestIsValidateCommand(t *testing.T) {
	for args, want := range map[string]bool{
		"caddy validate --config x":           true,
		"caddy adapt --config x --validate":   true,
		"caddy adapt --validate=true":         true,
		"caddy adapt --config x":              false,
		"caddy run --config x":                false,
		"caddy start":                         false,
		"caddymodule.test -test.run=validate": false,
		"caddy":                               false,
	} {
		if got := isValidateCommand(strings.Fields(args)); got != want {
			t.Errorf("%q: %v, want %v", args, got, want)
		}
	}
}

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

func TestAnswerError(t *testing.T) {
	err := answerError("DELETE", "/vigil/blocks/1.2.3.4?x=1", 404, []byte(`{"error":"no active block for 1.2.3.4"}`))
	if err.Error() != "DELETE /vigil/blocks/1.2.3.4: HTTP 404: no active block for 1.2.3.4" {
		t.Fatal(err)
	}
	if err := answerError("GET", "/x", 502, []byte("bad gateway\n")); err.Error() != "GET /x: HTTP 502: bad gateway" {
		t.Fatal(err)
	}
}

func TestStoreAddressHidesCredentials(t *testing.T) {
	for cfg, want := range map[*StoreConfig]string{
		{Type: "memory"}: "",
		{Type: "redis", URL: "redis://user:secret@10.0.0.9:6379/0"}:       "10.0.0.9:6379",
		{Type: "redis", URL: "unix:///run/redis.sock"}:                    "/run/redis.sock",
		{Type: "redis", Addrs: []string{"a:1", "b:2"}}:                    "a:1,b:2",
		{Type: "redis", Addrs: []string{"s:26379"}, Sentinel: "mymaster"}: "sentinel mymaster via s:26379",
	} {
		if got := storeAddress(*cfg); got != want {
			t.Errorf("%+v: %q, want %q", cfg, got, want)
		}
	}
}

// TestRenderAuto: an answer is printed by its shape, so subcommands need
// no renderer of their own.
func TestRenderAuto(t *testing.T) {
	d, _ := json.Marshal(respond.Decision{Kind: respond.Block, Target: "203.0.113.7", Source: "admin", Strike: 1, Until: testNow.Add(time.Hour)})
	for raw, want := range map[string]string{
		`{"decisions":[]}`: "No active decisions.",
		`{"events":[]}`:    "No events.",
		`{"lifted":true,"kind":"lock","target":"alice"}`: "Lifted lock alice.",
		string(d):        "block 203.0.113.7 - admin 1 2026-01-02 04:04:05 1h",
		`{"imported":3}`: `"imported": 3`,
		`not json`:       "not json",
	} {
		var b bytes.Buffer
		if err := renderAuto(tableOut(&b), []byte(raw)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(lines(b.String()), "\n"); !strings.Contains(got, want) {
			t.Errorf("%s: printed %q, want %q", raw, got, want)
		}
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
