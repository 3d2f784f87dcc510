package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// received splits the receiver's bodies into alerts and digests.
func received(t *testing.T, rc *receiver) (alerts []Alert, digests []Alert) {
	t.Helper()
	for _, r := range rc.requests() {
		var a Alert
		if err := json.Unmarshal(r.Body, &a); err != nil {
			t.Fatalf("body is not an alert: %v\n%s", err, r.Body)
		}
		if a.Type == DigestType {
			digests = append(digests, a)
		} else {
			alerts = append(alerts, a)
		}
	}
	return alerts, digests
}

func suppressed(digests []Alert) (total int, byReason map[string]int) {
	byReason = map[string]int{}
	for _, d := range digests {
		total += int(d.Details["suppressed"].(float64))
		for r, n := range d.Details["by_reason"].(map[string]any) {
			byReason[r] += int(n.(float64))
		}
	}
	return total, byReason
}

// TestStorm: 1,000 IP_BLOCKED events in a burst become at most Throttle
// messages per window plus a digest per window, and the digests account
// for every event held back.
func TestStorm(t *testing.T) {
	rc := newReceiver(t)
	const n, limit, win = 1000, 10, 300 * time.Millisecond
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{Throttle: limit, ThrottleWindow: win}}}})
	began := time.Now()
	for i := range n {
		d.Submit(event(detect.IPBlocked, "", fmt.Sprintf("198.51.%d.%d", i/256, i%256)))
	}
	burst := time.Since(began)
	poll.Until(t, 5*time.Second, "all accounted for", func() (bool, string) {
		alerts, digests := received(t, rc)
		s, _ := suppressed(digests)
		return len(alerts)+s == n, fmt.Sprintf("%d alerts + %d in digests", len(alerts), s)
	})
	alerts, digests := received(t, rc)
	windows := int(burst/win) + 1
	t.Logf("%d events in %s → %d alerts + %d digest(s) (%d messages)", n, burst.Round(time.Millisecond), len(alerts), len(digests), len(alerts)+len(digests))
	// a window that held more ids than one body carries sends its digest
	// in parts: count the windows by their first part
	firsts := 0
	for _, dg := range digests {
		if dg.Details["part"] == float64(1) {
			firsts++
		}
	}
	if len(alerts) > limit*windows || firsts > windows {
		t.Fatalf("%d alerts and %d digests for a burst spanning %d window(s) of %d", len(alerts), firsts, windows, limit)
	}
	total, byReason := suppressed(digests)
	if byReason["throttled"] != total || total != n-len(alerts) {
		t.Fatalf("digests: %d held back (%v), want %d throttled", total, byReason, n-len(alerts))
	}
	dg := digests[0]
	if dg.Severity != detect.Medium || dg.Details["by_type"].(map[string]any)["IP_BLOCKED"] == nil {
		t.Fatalf("digest: %+v", dg)
	}
}

// TestDedup: the same lockout reported 50 times sends one alert; the digest
// counts the 49 duplicates. A higher severity is a new alert.
func TestDedup(t *testing.T) {
	rc := newReceiver(t)
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url()), Policy: Policy{ThrottleWindow: 200 * time.Millisecond}}}})
	for range 50 {
		d.Submit(event(detect.AccountLocked, "alice", "203.0.113.7"))
	}
	worse := event(detect.AccountLocked, " ALICE ", "203.0.113.7") // same account
	worse.Severity = detect.Critical
	d.Submit(worse)
	poll.Until(t, 5*time.Second, "alerts and digest", func() (bool, string) {
		alerts, digests := received(t, rc)
		s, _ := suppressed(digests)
		return len(alerts)+s == 51, fmt.Sprintf("%d alerts, %d held", len(alerts), s)
	})
	alerts, digests := received(t, rc)
	if len(alerts) != 2 || alerts[0].DedupKey != alerts[1].DedupKey {
		t.Fatalf("want the first alert and the CRITICAL one with the same dedup_key, got %+v", alerts)
	}
	if total, byReason := suppressed(digests); total != 49 || byReason["duplicate"] != 49 {
		t.Fatalf("digest: %d held (%v), want 49 duplicates", total, byReason)
	}
}

// TestHugeDetails: a megabyte of attacker-controlled details is cut to a
// body of at most 20 KB that is still valid JSON, and still signed.
func TestHugeDetails(t *testing.T) {
	rc := newReceiver(t)
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url())}}})
	e := event(detect.BulkExport, strings.Repeat("ü", 5000), "203.0.113.7")
	e.Details = map[string]any{"path": strings.Repeat("/ä<>&\"", 200000), "bytes": 1 << 40}
	for i := range 2000 {
		e.Details[fmt.Sprintf("k%04d", i)] = strings.Repeat("x", 100)
	}
	d.Submit(e)
	poll.Until(t, 5*time.Second, "delivered", func() (bool, string) { return len(rc.requests()) == 1, "" })
	r := rc.requests()[0]
	independentVerify(t, testSecret, r)
	if len(r.Body) > MaxBody {
		t.Fatalf("body is %d bytes, want ≤ %d", len(r.Body), MaxBody)
	}
	var a Alert
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("truncated body is not valid JSON: %v", err)
	}
	if !a.Truncated || a.ID != e.ID || a.Type != detect.BulkExport || len(a.User) > 512 {
		t.Fatalf("truncated alert: id %s type %s truncated %v user %d bytes", a.ID, a.Type, a.Truncated, len(a.User))
	}
	if a.Details["bytes"] != float64(1<<40) || a.Details["_omitted_keys"] == nil {
		t.Fatalf("details should keep small values and count the dropped keys: %v", a.Details["_omitted_keys"])
	}
}

func TestBodyBounds(t *testing.T) {
	for _, details := range []map[string]any{
		{"one": strings.Repeat("a", 30000)},
		{"nested": map[string]any{"deep": strings.Repeat("b", 30000)}},
		{"list": make([]int, 20000)},
		{strings.Repeat("k", 40000): 1},
	} {
		a := Alert{Event: detect.Event{ID: "x", Type: detect.BulkExport, Severity: detect.High, Details: details}}
		b := a.Body()
		var back Alert
		if len(b) > MaxBody || json.Unmarshal(b, &back) != nil || !back.Truncated {
			t.Fatalf("body of %d bytes, valid %v, truncated %v", len(b), json.Valid(b), back.Truncated)
		}
	}
	small := Alert{Event: detect.Event{ID: "x", Type: detect.IPBlocked, Details: map[string]any{"a": "<b>&"}}}
	if !strings.Contains(string(small.Body()), `"a":"<b>&"`) {
		t.Fatalf("small body altered: %s", small.Body())
	}
}
