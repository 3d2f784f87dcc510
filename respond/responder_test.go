package respond

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// testCore is a responder core on a fresh memory store that keeps every
// published event.
func testCore(t *testing.T, allow ...string) (*Core, *[]detect.Event) {
	t.Helper()
	st := NewMemoryStore(MemoryOptions{}, Hooks{})
	t.Cleanup(func() { _ = st.Close() })
	var events []detect.Event
	c := &Core{Store: st, Bus: SinkFunc(func(e detect.Event) { events = append(events, e) })}
	for _, a := range allow {
		c.Allow = append(c.Allow, netip.MustParsePrefix(a))
	}
	return c, &events
}

func factsFrom(ip, user string) detect.Facts {
	req := &detect.Request{HTTP: httptest.NewRequest("POST", "/login", nil), IP: netip.MustParseAddr(ip), Site: "shop"}
	if user != "" {
		req.Identity = &detect.Identity{User: user, UserKey: detect.AccountKey(user)}
	}
	return req.Facts()
}

// failures records n failures of alice from ip in the counters.
func failures(t *testing.T, c *Core, ip string, n int) detect.LoginCounts {
	t.Helper()
	w := detect.LoginWindows{Account: time.Hour, IP: time.Hour, Pair: time.Hour, Stuffing: time.Hour}
	var got detect.LoginCounts
	for i := 0; i < n; i++ {
		_, got, _ = c.Store.Counter.Reserve(context.Background(), detect.KeysFor("alice", ip), w, time.Now())
	}
	return got
}

func TestResponderImposesOnceAndEscalatesRepeats(t *testing.T) {
	c, events := testCore(t)
	r := c.For(SitePolicy{})
	now := time.Now()
	block := detect.Finding{Type: detect.IPBlocked, Time: now, Facts: factsFrom("203.0.113.7", ""), Action: detect.BlockAddress,
		Ban: detect.Ban{Base: time.Minute, Max: time.Hour}, Reason: "failed_logins"}
	failures(t, c, "203.0.113.7", 3)
	o := r.Act(context.Background(), block)
	if !o.Enforced || !o.Fresh || o.Strike != 1 || len(*events) != 1 {
		t.Fatalf("first block: %+v, %d events", o, len(*events))
	}
	// the counter behind the block restarts, held full while the block
	// lasts: an attempt another instance reserves before it sees the block
	// is refused by its counter
	if c := failures(t, c, "203.0.113.7", 1); c.IP <= detect.MaxWindowEntries {
		t.Fatalf("the block did not hold the address's counter: %+v", c)
	}
	if d, ok := c.Store.Cache.Blocked(netip.MustParseAddr("203.0.113.7"), now); !ok || d.Reason != "failed_logins" || d.Site != "shop" {
		t.Fatalf("decision %+v, %v", d, ok)
	}
	// a concurrent finding finds the block in force: enforced, not announced
	block.Details = nil
	if o := r.Act(context.Background(), block); !o.Enforced || o.Fresh || len(*events) != 1 {
		t.Fatalf("second finding: %+v, %d events", o, len(*events))
	}
	// once it ended, the next block is a second strike: twice as long, one level more urgent
	block.Time = now.Add(2 * time.Minute)
	o = r.Act(context.Background(), block)
	last := (*events)[len(*events)-1]
	if o.Strike != 2 || o.Until.Sub(block.Time) != 2*time.Minute || last.Severity != detect.High || last.Details["strike"] != 2 {
		t.Fatalf("repeat: %+v; event %s %v", o, last.Severity, last.Details)
	}
}

func TestResponderAllowlistAndMonitorOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		allow  []string
		policy SitePolicy
		detail string
	}{
		{"allowlisted", []string{"10.0.0.0/8"}, SitePolicy{}, "allowlisted"},
		{"monitor_only", nil, SitePolicy{MonitorOnly: true}, "monitor_only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, events := testCore(t, tc.allow...)
			r := c.For(tc.policy)
			failures(t, c, "10.1.2.3", 4)
			o := r.Act(context.Background(), detect.Finding{Type: detect.IPBlocked, Facts: factsFrom("10.1.2.3", ""),
				Action: detect.BlockAddress, Ban: detect.Ban{Base: time.Minute}})
			if o.Enforced || len(c.Store.Cache.List(time.Now())) != 0 {
				t.Fatalf("a decision was made: %+v", o)
			}
			if len(*events) != 1 || (*events)[0].Details[tc.detail] != true {
				t.Fatalf("event: %+v", *events)
			}
			if got := failures(t, c, "10.1.2.3", 1); got.IP != 1 {
				t.Fatalf("counters not restarted: the same finding would repeat on every failure (%+v)", got)
			}
		})
	}
}

// TestResponderEndsOnlyTheSubjectsSessions: a lock ends the locked
// account's sessions; an intrusion ends the session user's; nothing ends
// while no site verifies sessions, or on a monitor_only site.
func TestResponderEndsOnlyTheSubjectsSessions(t *testing.T) {
	c, _ := testCore(t)
	on := map[detect.Type]bool{detect.AccountLocked: true, detect.SystemIntrusion: true}
	r := c.For(SitePolicy{TerminateOn: on})
	lock := detect.Finding{Type: detect.AccountLocked, Facts: factsFrom("198.51.100.1", "mallory"), Action: detect.LockAccount,
		Target: "alice", Ban: detect.Ban{Base: time.Minute}}
	r.Act(context.Background(), lock)
	if _, ok := c.Store.Cache.Get(RevokeUser, "alice", time.Now()); ok {
		t.Fatal("a revocation was made while no site verifies sessions")
	}
	c.RegisterSessions("site", time.Hour)
	lock.Target = "bob"
	r.Act(context.Background(), lock)
	if _, ok := c.Store.Cache.Get(RevokeUser, "bob", time.Now()); !ok {
		t.Fatal("the locked account's sessions were not ended")
	}
	if _, ok := c.Store.Cache.Get(RevokeUser, "mallory", time.Now()); ok {
		t.Fatal("a lock ended the sessions of the request's session user, not the account's")
	}
	probe := detect.Finding{Type: detect.SystemIntrusion, Facts: factsFrom("198.51.100.2", "eve"), Action: detect.BlockAddress, Ban: detect.Ban{Base: time.Minute}}
	c.For(SitePolicy{TerminateOn: on, MonitorOnly: true}).Act(context.Background(), probe)
	if _, ok := c.Store.Cache.Get(RevokeUser, "eve", time.Now()); ok {
		t.Fatal("a monitor_only site ended a session")
	}
	r.Act(context.Background(), probe)
	d, ok := c.Store.Cache.Get(RevokeUser, "eve", time.Now())
	if !ok || d.Until.Sub(d.Created) != time.Hour || d.Source != "auto" {
		t.Fatalf("intrusion by a session: revocation %+v, %v", d, ok)
	}
}

// TestLiftStartsACleanSlate: an operator's unlock forgets the account's
// failures and strikes, and is recorded.
func TestLiftStartsACleanSlate(t *testing.T) {
	c, events := testCore(t)
	r := c.For(SitePolicy{})
	lock := detect.Finding{Type: detect.AccountLocked, Facts: factsFrom("203.0.113.9", ""), Action: detect.LockAccount,
		Target: "alice", Ban: detect.Ban{Base: time.Minute, Max: time.Hour}}
	r.Act(context.Background(), lock)
	failures(t, c, "203.0.113.9", 3)
	was, err := c.Lift(context.Background(), Lock, "alice", Operator{Remote: "127.0.0.1:5000"})
	if err != nil || !was {
		t.Fatalf("lift: %v, %v", was, err)
	}
	if got := failures(t, c, "203.0.113.9", 1); got.Account != 1 {
		t.Fatalf("the account's failures survived the unlock: %+v", got)
	}
	last := (*events)[len(*events)-1]
	if last.Type != detect.AdminAction || last.Details["action"] != "unlock" || last.Details["remote"] != "127.0.0.1:5000" {
		t.Fatalf("admin event %+v", last)
	}
	if o := r.Act(context.Background(), lock); o.Strike != 1 {
		t.Fatalf("strikes survived the unlock: %+v", o)
	}
}

// TestIPv6BansWiden: the third /64 of one /56 blocked blocks the /56; the
// third /56 of one /48, the /48.
func TestIPv6BansWiden(t *testing.T) {
	c, events := testCore(t)
	r := c.For(SitePolicy{})
	now := time.Now()
	block := func(addr string) {
		f := factsFrom(addr, "")
		r.Act(context.Background(), detect.Finding{Type: detect.SystemIntrusion, Time: now, Facts: f,
			Action: detect.BlockAddress, Target: f.Net, Ban: detect.Ban{Base: time.Hour, Max: 24 * time.Hour}})
	}
	blocked := func(addr string) bool {
		_, ok := c.Store.Cache.Blocked(netip.MustParseAddr(addr), now)
		return ok
	}
	block("2001:db8:0:1::1")
	block("2001:db8:0:2::1")
	if blocked("2001:db8:0:3::1") {
		t.Fatal("two blocked /64s widened the ban")
	}
	block("2001:db8:0:3::1")
	if !blocked("2001:db8:0:ff::1") || blocked("2001:db8:0:100::1") {
		t.Fatal("the third /64 did not widen the ban to its /56 (and only it)")
	}
	last := (*events)[len(*events)-1]
	if last.Details["widened"] != true || last.Details["prefix"] != "2001:db8::/56" {
		t.Fatalf("widening event %+v", last.Details)
	}
	block("2001:db8:0:100::1") // a /64 of a second /56: its /64 only, so far
	for _, a := range []string{"2001:db8:0:101::1", "2001:db8:0:102::1"} {
		block(a)
	}
	block("2001:db8:0:200::1")
	block("2001:db8:0:201::1")
	block("2001:db8:0:202::1")
	if !blocked("2001:db8:0:ff00::1") {
		t.Fatal("three blocked /56s did not widen the ban to the /48")
	}
	if blocked("2001:db8:1::1") {
		t.Fatal("the ban widened past the /48")
	}
}
