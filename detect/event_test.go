package detect

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestCanonicalSurvivesARoundTrip: the canonical form of an event read back
// from its JSON (as from Redis) is the canonical form of the original, so
// an audit chain can hash either.
func TestCanonicalSurvivesARoundTrip(t *testing.T) {
	e := NewEvent(IPBlocked, time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600)))
	e.User, e.IP = "<alice>&", "203.0.113.7"
	e.Details = Details{"z": 1, "a": "b", "strike": 2, "roles": []string{"x", "y"}, "nested": map[string]any{"k": true}}
	c1, err := e.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	var back Event
	if err := json.Unmarshal(c1, &back); err != nil {
		t.Fatal(err)
	}
	c2, _ := back.Canonical()
	if string(c1) != string(c2) {
		t.Fatalf("canonical forms differ:\n%s\n%s", c1, c2)
	}
	if !strings.Contains(string(c1), `"user":"<alice>&"`) || strings.Contains(string(c1), "\n") {
		t.Fatalf("HTML escaped or not compact: %s", c1)
	}
	if strings.Index(string(c1), `"a":"b"`) > strings.Index(string(c1), `"z":1`) {
		t.Fatalf("detail keys not sorted: %s", c1)
	}
}

// TestFactsEventRedactsSecrets: a password or token in the query never
// reaches an event; the rest of the query does.
func TestFactsEventRedactsSecrets(t *testing.T) {
	r := httptest.NewRequest("GET", "/wp-admin/?user=bob&password=hunter2&X-Api-Key=k1&access_token=t&q=union+select&Passwd=p&user_password=z&pin=", nil)
	r.Header.Set("User-Agent", strings.Repeat("A", 1000))
	req := &Request{HTTP: r, IP: netip.MustParseAddr("203.0.113.7"), Site: "shop"}
	e := req.Facts().Event(SystemIntrusion, time.Now(), nil)
	q := e.Details["query"].(string)
	for _, secret := range []string{"hunter2", "k1", "=t&", "Passwd=p", "=z"} {
		if strings.Contains(q, secret) {
			t.Errorf("query %q carries %q", q, secret)
		}
	}
	if !strings.Contains(q, "user=bob") || !strings.Contains(q, "q=union+select") || !strings.Contains(q, "pin=REDACTED") {
		t.Errorf("query %q lost what is not secret", q)
	}
	if ua := e.Details["user_agent"].(string); len(ua) > 260 {
		t.Errorf("user agent kept at %d bytes", len(ua))
	}
	if e.Site != "shop" || e.IP != "203.0.113.7" || e.Details["path"] != "/wp-admin/" {
		t.Errorf("event %+v", e)
	}
}

// TestFactsUser: a login's account is the event's user; only a verified
// session is a session user.
func TestFactsUser(t *testing.T) {
	r := httptest.NewRequest("POST", "/login", nil)
	req := &Request{HTTP: r, Identity: &Identity{User: "alice", UserKey: AccountKey("alice")}}
	req.MarkLogin(0)
	req.Login.User = "bob"
	f := req.Facts()
	if f.User != "bob" || f.Session != "alice" || f.SessionKey != AccountKey("alice") || f.Site != r.Host {
		t.Fatalf("facts %+v", f)
	}
}
