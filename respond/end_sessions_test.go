package respond

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// TestEndSessionsFindings: EndSessions revokes the user's sessions and
// EndSession one token, each before its event is published and named in
// it; monitor-only and a site without sessions revoke nothing.
func TestEndSessionsFindings(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	issued := now.Add(-time.Minute)

	c, events := testCore(t)
	c.RegisterSessions("site", time.Hour)
	r := c.For(SitePolicy{})
	travel := detect.Finding{Type: detect.ImpossibleTravel, Time: now, Facts: factsFrom("198.51.100.7", "alice"), Action: detect.EndSessions}
	r.Act(ctx, travel)
	if _, ok := c.Store.Cache.SessionRevoked(detect.AccountKey("alice"), "", issued, now); !ok {
		t.Fatal("EndSessions did not revoke alice's sessions")
	}
	anomaly := detect.Finding{Type: detect.SessionAnomaly, Time: now, Facts: factsFrom("198.51.100.7", "bob"), Action: detect.EndSession, Target: "token-7"}
	r.Act(ctx, anomaly)
	if _, ok := c.Store.Cache.SessionRevoked(detect.AccountKey("bob"), "token-7", issued, now); !ok {
		t.Fatal("EndSession did not revoke the token")
	}
	if _, ok := c.Store.Cache.SessionRevoked(detect.AccountKey("bob"), "token-8", issued, now); ok {
		t.Fatal("EndSession revoked bob's other tokens")
	}
	var found []detect.Type
	for _, e := range *events {
		if e.Type == detect.ImpossibleTravel || e.Type == detect.SessionAnomaly {
			found = append(found, e.Type)
			if _, ok := e.Details["revocation"]; !ok {
				t.Errorf("%s does not name its revocation: %v", e.Type, e.Details)
			}
		}
	}
	if len(found) != 2 {
		t.Fatalf("want the two findings' events, got %v", found)
	}

	m, mevents := testCore(t)
	m.RegisterSessions("site", time.Hour)
	m.For(SitePolicy{MonitorOnly: true}).Act(ctx, travel)
	if _, ok := m.Store.Cache.SessionRevoked(detect.AccountKey("alice"), "", issued, now); ok {
		t.Fatal("monitor_only revoked sessions")
	}
	if len(*mevents) != 1 || (*mevents)[0].Details["monitor_only"] != true {
		t.Fatalf("monitor_only: want the finding's event marked monitor_only, got %+v", *mevents)
	}

	n, _ := testCore(t)
	n.For(SitePolicy{}).Act(ctx, travel)
	if len(n.Store.Cache.List(now)) != 0 {
		t.Fatal("a revocation was stored though no site verifies sessions")
	}
}

// TestEventsAreLocated: an event about an address the detector did not
// locate gets its place from the core's Locator; one already located keeps
// its own.
func TestEventsAreLocated(t *testing.T) {
	c, events := testCore(t)
	c.Locator = detect.LocatorFunc(func(ip netip.Addr) detect.Place {
		if ip == netip.MustParseAddr("192.0.2.10") {
			return detect.Place{Country: "DE", City: "Berlin", ASN: 3320}
		}
		return detect.Place{}
	})
	r := c.For(SitePolicy{})
	r.Act(context.Background(), detect.Finding{Type: detect.FailedLogin, Facts: factsFrom("192.0.2.10", "")})
	own := factsFrom("192.0.2.10", "")
	own.Place = detect.Place{Country: "FR", City: "Paris", ASN: 3215}
	r.Act(context.Background(), detect.Finding{Type: detect.FailedLogin, Facts: own})
	if len(*events) != 2 {
		t.Fatalf("want 2 events, got %d", len(*events))
	}
	if e := (*events)[0]; e.Country != "DE" || e.City != "Berlin" || e.ASN != 3320 {
		t.Errorf("located event: country %q city %q asn %d", e.Country, e.City, e.ASN)
	}
	if e := (*events)[1]; e.Country != "FR" || e.City != "Paris" {
		t.Errorf("an event's own place was replaced: %q %q", e.Country, e.City)
	}
}
