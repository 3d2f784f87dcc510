package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// TestAlertsSurviveConfigChange: an alert being delivered when the alert
// configuration changes is handed over to the new config's dispatcher
// through the shared memory outbox and arrives, once per id.
func TestAlertsSurviveConfigChange(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]int{}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first { // hang until the sender gives up: the old config is going away
			<-r.Context().Done()
			return
		}
		mu.Lock()
		ids[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer srv.Close()
	hook := AlertConfig{Type: "webhook", URL: srv.URL, Secret: goodSecret}
	store := StoreConfig{Type: "memory"}

	old := &App{Alerts: []AlertConfig{hook}}
	if err := old.provisionAlerts(store); err != nil {
		t.Fatal(err)
	}
	old.alerts.Start() // as App.Start does
	e := detect.NewEvent(detect.AccountLocked, time.Now())
	e.User, e.IP = "alice", "203.0.113.7"
	old.alerts.Submit(e)
	poll.True(t, 5*time.Second, "first attempt in flight", func() bool { mu.Lock(); defer mu.Unlock(); return calls == 1 })

	changed := &App{Alerts: []AlertConfig{hook, {Type: "slack", URL: srv.URL + "/slack"}}}
	if err := changed.provisionAlerts(store); err != nil {
		t.Fatal(err)
	}
	changed.alerts.Start() // as App.Start does
	defer changed.cleanupAlerts()
	if changed.alerts == old.alerts {
		t.Fatal("a changed alert config reused the old dispatcher")
	}
	if err := old.cleanupAlerts(); err != nil { // the reload finishes
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "delivered by the new dispatcher", func() bool { mu.Lock(); defer mu.Unlock(); return ids[e.ID] == 1 })

	same := &App{Alerts: []AlertConfig{hook, {Type: "slack", URL: srv.URL + "/slack"}}}
	if err := same.provisionAlerts(store); err != nil {
		t.Fatal(err)
	}
	same.alerts.Start() // as App.Start does
	defer same.cleanupAlerts()
	if same.alerts != changed.alerts {
		t.Fatal("an unchanged alert config started a new dispatcher")
	}
}

func TestEventNames(t *testing.T) {
	if got := nameOf(detect.AccountLocked); got != "vigil.account_locked" {
		t.Fatalf("name %q", got)
	}
	if got := nameOf("NEW_TYPE"); got != "vigil.new_type" {
		t.Fatalf("name %q", got)
	}
	e := detect.NewEvent(detect.ImpossibleTravel, time.Now())
	e.User, e.Country, e.ASN = "bob", "NL", 64500
	d := eventData(e)
	if d["type"] != "IMPOSSIBLE_TRAVEL" || d["severity"] != "HIGH" || d["user"] != "bob" || d["asn"] != uint(64500) || d["city"] != nil {
		t.Fatalf("event data %v", d)
	}
	var em *eventEmitter
	em.emit(e) // no events app: a no-op, not a panic
}

// TestAlertBracesArePlaceholders: every {…} in a value is a placeholder
// (an unknown one becomes empty); \{ and \} are literal braces, as the
// README says.
func TestAlertBracesArePlaceholders(t *testing.T) {
	t.Setenv("VIGIL_TEST_PW", "s3cret")
	c, err := AlertConfig{Type: "email", Password: `a\{b\}c{env.VIGIL_TEST_PW}{nope}`}.resolved()
	if err != nil {
		t.Fatal(err)
	}
	if c.Password != "a{b}cs3cret" {
		t.Fatalf("password resolved to %q", c.Password)
	}
}
