package alert

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// TestSlackEscapesHostileText: usernames and details that try to mention
// the channel, forge a link or smuggle entities reach Slack escaped.
func TestSlackEscapesHostileText(t *testing.T) {
	rc := newReceiver(t)
	s, err := NewSlack(rc.url())
	if err != nil {
		t.Fatal(err)
	}
	d := start(t, Options{Routes: []Route{{Sender: s}}})
	hostile := "<!channel> <@U024BE7LH> <https://evil.example|click> & &lt;"
	e := event(detect.CredentialStuffing, hostile, "203.0.113.7")
	e.Site = "<!here>"
	e.Details = map[string]any{"path": "/login?<!everyone>", "accounts": 12}
	d.Submit(e)
	poll.Until(t, 5*time.Second, "slack message", func() (bool, string) { return len(rc.requests()) == 1, "" })
	raw := rc.requests()[0].Body
	var msg struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatal(err)
	}
	// the decoded JSON is exactly what Slack parses for markup
	decoded := msg.Text
	for _, b := range msg.Blocks {
		bb, _ := json.Marshal(b)
		var flat any
		_ = json.Unmarshal(bb, &flat)
		decoded += collectText(flat)
	}
	for _, bad := range []string{"<!channel>", "<!here>", "<!everyone>", "<@U024BE7LH>", "<https://evil.example|click>", "& "} {
		if strings.Contains(decoded, bad) {
			t.Errorf("Slack text contains %q unescaped:\n%s", bad, decoded)
		}
	}
	for _, want := range []string{"&lt;!channel&gt;", "&lt;https://evil.example|click&gt;", "&amp; &amp;lt;", "&lt;!here&gt;", "&lt;!everyone&gt;"} {
		if !strings.Contains(decoded, want) {
			t.Errorf("Slack text lacks %q:\n%s", want, decoded)
		}
	}
	if msg.Blocks[0]["type"] != "header" || msg.Blocks[1]["fields"] == nil || !strings.HasPrefix(msg.Text, "Vigil: HIGH CREDENTIAL_STUFFING") {
		t.Fatalf("want a header block, a fields section and a text fallback: %s", raw)
	}
}

// collectText concatenates every "text" string in a decoded JSON value.
func collectText(v any) string {
	var b strings.Builder
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && k == "text" {
				b.WriteString(s + "\n")
			} else {
				b.WriteString(collectText(val))
			}
		}
	case []any:
		for _, val := range x {
			b.WriteString(collectText(val))
		}
	}
	return b.String()
}

// TestPagerDutyTrigger: CRITICAL opens an incident through Events API v2;
// HIGH does not reach PagerDuty by default.
func TestPagerDutyTrigger(t *testing.T) {
	rc := newReceiver(t)
	pd, err := NewPagerDuty("R0UT1NGKEY", rc.url())
	if err != nil {
		t.Fatal(err)
	}
	d := start(t, Options{Routes: []Route{{Sender: pd}}})
	d.Submit(event(detect.ImpossibleTravel, "bob", "203.0.113.9")) // HIGH: below the default
	e := event(detect.SystemIntrusion, "bob", "203.0.113.9")
	e.Severity = detect.Critical
	d.Submit(e)
	poll.Until(t, 5*time.Second, "incident", func() (bool, string) { return len(rc.requests()) >= 1, "" })
	settle(t, d)
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("PagerDuty got %d events, want 1 (CRITICAL only)", len(reqs))
	}
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     struct {
			Summary, Source, Severity, Timestamp, Class string
			CustomDetails                               map[string]any `json:"custom_details"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(reqs[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.RoutingKey != "R0UT1NGKEY" || ev.EventAction != "trigger" || ev.DedupKey != DedupKey(e) ||
		ev.Payload.Severity != "critical" || ev.Payload.Source != "shop.example" || ev.Payload.Class != "SYSTEM_INTRUSION" ||
		ev.Payload.CustomDetails["id"] != e.ID || !strings.Contains(ev.Payload.Summary, "CRITICAL SYSTEM_INTRUSION") {
		t.Fatalf("PagerDuty event: %s", reqs[0].Body)
	}
	if _, err := time.Parse(time.RFC3339, ev.Payload.Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", ev.Payload.Timestamp, err)
	}
	for sev, want := range map[detect.Severity]string{detect.Critical: "critical", detect.High: "error", detect.Medium: "warning", detect.Low: "info"} {
		if got := PagerDutySeverity(sev); got != want {
			t.Errorf("PagerDutySeverity(%s) = %s, want %s", sev, got, want)
		}
	}
	if p, _ := NewPagerDuty("k", ""); p.Endpoint != PagerDutyEndpoint {
		t.Errorf("default endpoint %q", p.Endpoint)
	}
}

// TestTypesFilter: a channel limited to some types gets only those.
func TestTypesFilter(t *testing.T) {
	rc := newReceiver(t)
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{MinSeverity: detect.Low, Types: []detect.Type{detect.AccountLocked}}}}})
	d.Submit(event(detect.IPBlocked, "", "198.51.100.1"))
	d.Submit(event(detect.FailedLogin, "carol", "198.51.100.1"))
	d.Submit(event(detect.AccountLocked, "carol", "198.51.100.1"))
	poll.Until(t, 5*time.Second, "lock alert", func() (bool, string) { return len(rc.requests()) >= 1, "" })
	settle(t, d)
	alerts, _ := received(t, rc)
	if len(alerts) != 1 || alerts[0].Type != detect.AccountLocked {
		t.Fatalf("got %+v, want only ACCOUNT_LOCKED", alerts)
	}
}
