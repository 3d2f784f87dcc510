package alert

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// gate is a loopback receiver that answers 503 until upAt (zero: always
// up) and keeps what it accepted and which ids it refused.
type gate struct {
	srv     *httptest.Server
	upAt    time.Time
	mu      sync.Mutex
	ok      []request
	refused map[string]int
}

func newGate(t *testing.T, upAt time.Time) *gate {
	t.Helper()
	g := &gate{upAt: upAt, refused: map[string]int{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		g.mu.Lock()
		defer g.mu.Unlock()
		if now.Before(g.upAt) {
			g.refused[messageID(r.Header, body)]++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		g.ok = append(g.ok, request{Header: r.Header.Clone(), Body: body, At: now})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gate) url() string { return g.srv.URL + "/hook" }

func (g *gate) accepted() []request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]request(nil), g.ok...)
}

func (g *gate) refusedTimes(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused[id]
}

var slackID = regexp.MustCompile(`Vigil alert ([0-9a-f]+)`)

// messageID is the alert id of a delivery: the webhook-id header, or the
// id in a Slack message's context line.
func messageID(h http.Header, body []byte) string {
	if id := h.Get("webhook-id"); id != "" {
		return id
	}
	if m := slackID.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// tally is what one channel delivered: alerts by id (with their arrival)
// and the ids folded into digests.
type tally struct {
	alerts  map[string]time.Time
	types   map[string]detect.Type
	folded  map[string]int
	digests []Alert
	repeats int // an alert delivered twice
}

// tallyWebhook reads webhook bodies.
func tallyWebhook(t *testing.T, reqs []request) tally {
	t.Helper()
	tl := tally{alerts: map[string]time.Time{}, types: map[string]detect.Type{}, folded: map[string]int{}}
	for _, r := range reqs {
		var a Alert
		if err := json.Unmarshal(r.Body, &a); err != nil {
			t.Fatalf("body is not an alert: %v", err)
		}
		if a.Type == DigestType {
			tl.digests = append(tl.digests, a)
			for _, id := range a.Details["event_ids"].([]any) {
				tl.folded[id.(string)]++
			}
			continue
		}
		if _, seen := tl.alerts[a.ID]; seen {
			tl.repeats++
			continue
		}
		tl.alerts[a.ID], tl.types[a.ID] = r.At, a.Type
	}
	return tl
}

// accounted reports whether every submitted id was delivered as an alert or
// folded into a digest, exactly once, and nothing else arrived.
func (tl tally) accounted(ids []string) (bool, string) {
	missing, twice := 0, 0
	for _, id := range ids {
		_, sent := tl.alerts[id]
		n := tl.folded[id]
		if sent && n > 0 || n > 1 {
			twice++
		}
		if !sent && n == 0 {
			missing++
		}
	}
	folded := 0
	for _, n := range tl.folded {
		folded += n
	}
	ok := missing == 0 && twice == 0 && tl.repeats == 0 && len(tl.alerts)+folded == len(ids)
	return ok, fmt.Sprintf("%d alerts + %d ids in %d digests for %d events (missing %d, twice %d, repeated %d)",
		len(tl.alerts), folded, len(tl.digests), len(ids), missing, twice, tl.repeats)
}

// storm submits 1,000 FAILED_LOGIN events for distinct users and
// addresses with one ACCOUNT_LOCKED in the middle, as fast as possible. It
// returns every id, the lock's id and when the lock was submitted.
func storm(d *Dispatcher) (ids []string, lock string, lockAt time.Time) {
	for i := range 1000 {
		if i == 500 {
			e := event(detect.AccountLocked, "victim", "203.0.113.66")
			ids, lock, lockAt = append(ids, e.ID), e.ID, time.Now()
			d.Submit(e)
		}
		e := event(detect.FailedLogin, fmt.Sprintf("user%04d", i), fmt.Sprintf("198.51.%d.%d", 100+i/256, i%256))
		ids = append(ids, e.ID)
		d.Submit(e)
	}
	return ids, lock, lockAt
}

// stormChannels: a SIEM webhook (every event, default throttle: none), a
// Slack channel (MEDIUM+, default throttle) and a second webhook with an
// explicit throttle of 10 per 300ms.
func stormChannels(t *testing.T, upAt time.Time) (routes []Route, siem, slack, thr *gate) {
	t.Helper()
	siem, slack, thr = newGate(t, upAt), newGate(t, upAt), newGate(t, upAt)
	s, err := NewSlack(slack.url())
	if err != nil {
		t.Fatal(err)
	}
	return []Route{
		{Sender: webhook(t, siem.url()), Policy: Policy{MinSeverity: detect.Low}},
		{Sender: s, Policy: Policy{MinSeverity: detect.Medium}},
		{Sender: webhook(t, thr.url()), Policy: Policy{MinSeverity: detect.Low, Throttle: 10, ThrottleWindow: 300 * time.Millisecond}},
	}, siem, slack, thr
}

// slackLock waits for the Slack channel's one message, the lock, and
// returns when it arrived.
func slackLock(t *testing.T, slack *gate, lock string) time.Time {
	t.Helper()
	poll.Until(t, 10*time.Second, "lock on slack", func() (bool, string) { return len(slack.accepted()) >= 1, "" })
	msgs := slack.accepted()
	var m struct{ Text string }
	if err := json.Unmarshal(msgs[0].Body, &m); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || messageID(msgs[0].Header, msgs[0].Body) != lock || !strings.HasPrefix(m.Text, "Vigil: MEDIUM ACCOUNT_LOCKED") {
		t.Fatalf("slack got %d messages, first %q; want the lock alone", len(msgs), m.Text)
	}
	return msgs[0].At
}

// checkStorm waits until the webhooks accounted for every event and checks
// the lock came on its own; it returns the lock's arrival per webhook.
func checkStorm(t *testing.T, siem, thr *gate, ids []string, lock string) (siemAt, thrAt time.Time) {
	t.Helper()
	for _, g := range []*gate{siem, thr} {
		poll.Until(t, 20*time.Second, "every event accounted for", func() (bool, string) {
			return tallyWebhook(t, g.accepted()).accounted(ids)
		})
	}
	s := tallyWebhook(t, siem.accepted())
	if len(s.digests) != 0 || len(s.alerts) != len(ids) {
		t.Fatalf("the SIEM webhook (no throttle by default) got %d alerts and %d digests, want %d alerts", len(s.alerts), len(s.digests), len(ids))
	}
	th := tallyWebhook(t, thr.accepted())
	if th.types[lock] != detect.AccountLocked || th.folded[lock] != 0 {
		t.Fatalf("the lock was not sent on its own on the throttled webhook")
	}
	windows := 0
	for _, dg := range th.digests {
		if dg.Severity != detect.Low || len(dg.Details["by_type"].(map[string]any)) != 1 || dg.Details["by_type"].(map[string]any)["FAILED_LOGIN"] == nil {
			t.Fatalf("a digest folded more than FAILED_LOGIN: %v", dg.Details["by_type"])
		}
		if dg.Details["part"] == float64(1) {
			windows++
		}
	}
	if failed := len(th.alerts) - 1; len(th.digests) == 0 || failed > 10*windows {
		t.Fatalf("throttled webhook: %d FAILED_LOGIN alerts and %d digests (%d windows), want ≤ 10 per window", failed, len(th.digests), windows)
	}
	t.Logf("throttled webhook: %d alerts + %d digests (%d ids); SIEM webhook: %d alerts", len(th.alerts), len(th.digests), len(th.folded), len(s.alerts))
	return s.alerts[lock], th.alerts[lock]
}

// TestStormLockArrivesAlone: 1,000 FAILED_LOGIN events and one
// ACCOUNT_LOCKED in the middle. The lock arrives on its own, at once, on
// every channel that admits it; the throttled channel digests the
// FAILED_LOGINs and its digests list every folded id.
func TestStormLockArrivesAlone(t *testing.T) {
	routes, siem, slack, thr := stormChannels(t, time.Time{})
	d := start(t, Options{Routes: routes})
	ids, lock, lockAt := storm(d)
	siemAt, thrAt := checkStorm(t, siem, thr, ids, lock)
	slackAt := slackLock(t, slack, lock)
	t.Logf("lock latency (submit → received): SIEM webhook %s, slack %s, throttled webhook %s",
		siemAt.Sub(lockAt), slackAt.Sub(lockAt), thrAt.Sub(lockAt))
	for name, at := range map[string]time.Time{"SIEM webhook": siemAt, "slack": slackAt, "throttled webhook": thrAt} {
		if lat := at.Sub(lockAt); lat > 2*time.Second {
			t.Errorf("%s: the lock took %s", name, lat)
		}
	}
}

// TestStormReceiverDown: the same storm while every receiver answers 503
// for 3s. The lock is retried and delivered on its own soon after they are
// back, never folded; every event is still accounted for.
func TestStormReceiverDown(t *testing.T) {
	upAt := time.Now().Add(3 * time.Second)
	routes, siem, slack, thr := stormChannels(t, upAt)
	d := start(t, Options{Routes: routes})
	ids, lock, _ := storm(d)
	poll.Until(t, 5*time.Second, "the lock refused while the receivers are down", func() (bool, string) {
		n := []int{siem.refusedTimes(lock), slack.refusedTimes(lock), thr.refusedTimes(lock)}
		return n[0] > 0 && n[1] > 0 && n[2] > 0, fmt.Sprint(n)
	})
	siemAt, thrAt := checkStorm(t, siem, thr, ids, lock)
	slackAt := slackLock(t, slack, lock)
	t.Logf("lock after the receivers are back: SIEM webhook %s (refused %d times), slack %s, throttled webhook %s",
		siemAt.Sub(upAt), siem.refusedTimes(lock), slackAt.Sub(upAt), thrAt.Sub(upAt))
	for name, at := range map[string]time.Time{"SIEM webhook": siemAt, "slack": slackAt, "throttled webhook": thrAt} {
		if lat := at.Sub(upAt); lat > 2*time.Second {
			t.Errorf("%s: the lock arrived %s after the receiver was back", name, lat)
		}
	}
}

// TestSameSeverityOtherType: on a Slack channel with the default throttle
// (20 per window), 25 IP_BLOCKED use up their own window only: the
// ACCOUNT_LOCKED of the same severity that follows is sent, and the digest
// holds the 5 IP_BLOCKED.
func TestSameSeverityOtherType(t *testing.T) {
	rc := newReceiver(t)
	s, err := NewSlack(rc.url())
	if err != nil {
		t.Fatal(err)
	}
	d := start(t, Options{Routes: []Route{{Sender: s, Policy: Policy{ThrottleWindow: 200 * time.Millisecond}}}})
	for i := range 25 {
		d.Submit(event(detect.IPBlocked, "", fmt.Sprintf("198.51.100.%d", i)))
	}
	d.Submit(event(detect.AccountLocked, "alice", "203.0.113.7"))
	poll.Until(t, 5*time.Second, "20 + lock + digest", func() (bool, string) { return len(rc.requests()) == 22, fmt.Sprint(len(rc.requests())) })
	settle(t, d)
	count := map[string]int{}
	for _, r := range rc.requests() {
		var m struct{ Text string }
		_ = json.Unmarshal(r.Body, &m)
		head, _, _ := strings.Cut(strings.TrimPrefix(m.Text, "Vigil: "), " user")
		head, _, _ = strings.Cut(head, " from")
		count[head]++
	}
	if count["MEDIUM IP_BLOCKED"] != 20 || count["MEDIUM ACCOUNT_LOCKED"] != 1 || count["MEDIUM ALERT_DIGEST: 5 more alerts held back"] != 1 {
		t.Fatalf("slack messages: %v", count)
	}
}

// TestPagerDutyNeverFoldsCritical: 30 CRITICAL incidents in a burst all
// reach PagerDuty with its default policy; HIGH (when admitted) keeps the
// default throttle.
func TestPagerDutyNeverFoldsCritical(t *testing.T) {
	rc := newReceiver(t)
	pd, err := NewPagerDuty("R0UT1NGKEY", rc.url())
	if err != nil {
		t.Fatal(err)
	}
	d := start(t, Options{Routes: []Route{{Sender: pd, Policy: Policy{MinSeverity: detect.High, ThrottleWindow: 200 * time.Millisecond}}}})
	for i := range 30 {
		e := event(detect.SystemIntrusion, fmt.Sprintf("u%d", i), "203.0.113.9")
		e.Severity = detect.Critical
		d.Submit(e)
		d.Submit(event(detect.ImpossibleTravel, fmt.Sprintf("u%d", i), "203.0.113.9"))
	}
	poll.Until(t, 5*time.Second, "30 + 20 + digest", func() (bool, string) { return len(rc.requests()) == 51, fmt.Sprint(len(rc.requests())) })
	settle(t, d)
	count := map[string]int{}
	for _, r := range rc.requests() {
		var ev struct {
			Payload struct{ Class, Severity string }
		}
		_ = json.Unmarshal(r.Body, &ev)
		count[ev.Payload.Class+"/"+ev.Payload.Severity]++
	}
	if count["SYSTEM_INTRUSION/critical"] != 30 || count["IMPOSSIBLE_TRAVEL/error"] != 20 || count["ALERT_DIGEST/error"] != 1 {
		t.Fatalf("PagerDuty events: %v", count)
	}
}

func TestThrottleDefaults(t *testing.T) {
	for kind, want := range map[string]struct {
		throttle int
		never    detect.Severity
	}{
		"webhook": {-1, detect.Critical + 1}, "slack": {20, detect.Critical + 1},
		"email": {20, detect.Critical + 1}, "pagerduty": {20, detect.Critical},
	} {
		p := Policy{}.withDefaults(kind)
		if p.Throttle != want.throttle || p.NeverThrottle != want.never || p.ThrottleWindow != time.Minute {
			t.Errorf("%s: throttle %d per %s, never %d; want %d, %d", kind, p.Throttle, p.ThrottleWindow, p.NeverThrottle, want.throttle, want.never)
		}
	}
	if p := (Policy{Throttle: 5}).withDefaults("webhook"); p.Throttle != 5 {
		t.Errorf("an explicit webhook throttle became %d", p.Throttle)
	}
}
