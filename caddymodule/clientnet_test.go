package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// TestIPv6ClientsCountedByPrefix: a client rotating through its /64 is
// counted and blocked as one; its neighbours in other /64s are not.
func TestIPv6ClientsCountedByPrefix(t *testing.T) {
	app, c, up := testApp(t), newClock(), &fakeApp{}
	h := testHandler(t, app, c)
	for i := 1; i <= 6; i++ { // block_ip 6 in testHandler, one account each
		login(t, h, up, fmt.Sprintf("user%d", i%2), "wrong", fmt.Sprintf("2001:db8:1:2::%x", i))
	}
	if code, _ := serve(t, h, up, newRequest("GET", "/", "", "2001:db8:1:2:ffff::99")); code != http.StatusForbidden {
		t.Fatalf("another address of the same /64 got %d, want 403", code)
	}
	if code, _ := serve(t, h, up, newRequest("GET", "/", "", "2001:db8:1:3::1")); code != http.StatusOK {
		t.Fatalf("an address of the next /64 got %d, want 200", code)
	}
	blocks := eventsOf(t, app, detect.IPBlocked)
	if len(blocks) != 1 || blocks[0].IP != "2001:db8:1:2::6" {
		t.Fatalf("IP_BLOCKED events %+v: want one, carrying the full address", blocks)
	}
	var blocked []string
	for _, d := range app.store().Cache.List(c.now()) {
		if d.Kind == respond.Block {
			blocked = append(blocked, d.Target)
		}
	}
	if len(blocked) != 1 || blocked[0] != "2001:db8:1:2::/64" {
		t.Fatalf("blocks %v: want one, of the /64", blocked)
	}
}
