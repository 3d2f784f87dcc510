package respond

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
)

var transferNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, data string, f Format) Batch {
	t.Helper()
	b, err := ParseDecisions([]byte(data), f, transferNow)
	if err != nil {
		t.Fatalf("ParseDecisions(%s): %v\n%s", f, err, data)
	}
	return b
}

func targets(ds []Decision) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s %s", d.Kind, d.Target, d.Until.Sub(d.Created)))
	}
	return strings.Join(out, "; ")
}

// TestCrowdSecCSVImport: cscli's CSV with its columns in any order, a
// BOM, empty cells taking cscli's defaults, days in durations; only bans of
// addresses and ranges become blocks, the rest is counted, not refused.
func TestCrowdSecCSVImport(t *testing.T) {
	data := "\ufeffScope,Value,Duration,Type,Reason,comment\n" +
		"Ip,1.2.3.4,24h,ban,ssh-bf,x\n" +
		"range,198.51.100.7/24,,,,\n" +
		",2001:DB8::1,1d12h,BAN,,\n" +
		"ip,1.2.3.4,1h,ban,shorter,\n" + // the same address again: the longer one stays
		"Ip,5.6.7.8,4h,captcha,,\n" +
		"Country,FR,4h,ban,,\n"
	b := mustParse(t, data, FormatCrowdSecCSV)
	want := "block 1.2.3.4 24h0m0s; block 198.51.100.0/24 4h0m0s; block 2001:db8::1 36h0m0s"
	if got := targets(b.Decisions); got != want {
		t.Fatalf("decisions\n got %s\nwant %s", got, want)
	}
	if b.Decisions[0].Reason != "ssh-bf" || b.Decisions[1].Reason != "manual" || b.Decisions[0].Source != "admin" {
		t.Fatalf("reasons or source: %+v", b.Decisions)
	}
	if b.Skipped["type captcha"] != 1 || b.Skipped["scope country"] != 1 || len(b.Skipped) != 2 {
		t.Fatalf("skipped %v", b.Skipped)
	}
}

// TestImportRefusesABadRowWhole: one bad row is an error that names it,
// and nothing of the import is kept.
func TestImportRefusesABadRowWhole(t *testing.T) {
	for _, c := range []struct {
		f          Format
		data, want string
	}{
		{FormatCrowdSecCSV, "value,duration\n1.2.3.4,1h\n999.1.1.1,1h\n", "line 3"},
		{FormatCrowdSecCSV, "value,duration\n1.2.3.4,soon\n", "line 2"},
		{FormatCrowdSecCSV, "value,duration\n1.2.3.4,-1h\n", "between 0 and 100 years"},
		{FormatCrowdSecCSV, "value,scope\n10.0.0.0/8,ip\n", "scope Range"},
		{FormatCrowdSecCSV, "duration,type\n1h,ban\n", `no "value" column`},
		{FormatCrowdSecCSV, "value,Value\n1.2.3.4,1.2.3.5\n", "appears twice"},
		{FormatCrowdSecCSV, "value\n1.2.3.4,extra\n", "line 2"},
		{FormatCrowdSecCSV, "", "header"},
		{FormatCrowdSecJSON, `[{"value":"1.2.3.4"},{"value":""}]`, "decision 2"},
		{FormatCrowdSecJSON, `[{"value":"1.2.3.4","duration":4}]`, "decision 1"},
		{FormatCrowdSecJSON, `{"value":"1.2.3.4"}`, "JSON array"},
		{FormatVigil, `[{"kind":"block","target":"1.2.3.4","until":"2026-05-01T13:00:00Z"},{"kind":"ban","target":"x","until":"2026-05-01T13:00:00Z"}]`, "decision 2"},
		{FormatVigil, `[{"kind":"lock","target":"  ","until":"2026-05-01T13:00:00Z"}]`, "decision 1"},
		{FormatVigil, `[{"kind":"lock","target":"bob"}]`, `"until" is required`},
		{FormatVigil, `[{"kind":"revoke_user","target":"bob","created":"2026-05-02T00:00:00Z","until":"2026-05-03T00:00:00Z"}]`, "future"},
		{FormatVigil, `[{"kind":"block","target":"1.2.3.4","source":"robot","until":"2026-05-01T13:00:00Z"}]`, "source"},
		{FormatVigil, `[{"value":"1.2.3.4","duration":"4h"}]`, "crowdsec-json"},
		{FormatVigil, `{"decisions":{}}`, "decisions"},
	} {
		b, err := ParseDecisions([]byte(c.data), c.f, transferNow)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: error %v, want one naming %q", c.f, c.data, err, c.want)
		}
		if len(b.Decisions) != 0 {
			t.Errorf("%s %q: %d decisions kept from a refused import", c.f, c.data, len(b.Decisions))
		}
	}
}

// TestVigilImportCanonical: Vigil's format carries every kind and keeps
// times and strikes; targets arrive in canonical form; an ended decision
// is counted and left out.
func TestVigilImportCanonical(t *testing.T) {
	data := `{"decisions":[
	 {"kind":"lock","target":"Bob ","reason":"manual","source":"admin","strike":2,"created":"2026-05-01T11:00:00Z","until":"2026-05-01T14:00:00Z"},
	 {"kind":"revoke_user","target":"BOB","source":"auto","created":"2026-05-01T11:00:00Z","until":"2026-05-02T11:00:00Z","linked":{"kind":"lock","target":"Bob"}},
	 {"kind":"revoke_jti","target":" t-1","until":"2026-05-02T11:00:00Z"},
	 {"kind":"block","target":"2001:DB8::/48","until":"2026-05-01T11:59:00Z"}
	]}`
	b := mustParse(t, data, FormatVigil)
	if got, want := targets(b.Decisions), "lock bob 3h0m0s; revoke_user bob 24h0m0s; revoke_jti  t-1 23h0m0s"; got != want {
		t.Fatalf("decisions\n got %s\nwant %s", got, want)
	}
	if d := b.Decisions[0]; d.Strike != 2 || d.Source != "admin" {
		t.Fatalf("lock %+v", d)
	}
	if d := b.Decisions[1]; d.Linked != (Ref{Kind: Lock, Target: "bob"}) || d.Source != "auto" {
		t.Fatalf("revocation %+v", d)
	}
	if d := b.Decisions[2]; d.Source != "admin" || d.Strike != 1 || !d.Created.Equal(transferNow) {
		t.Fatalf("defaults of a bare decision: %+v", d)
	}
	if b.Skipped["expired"] != 1 {
		t.Fatalf("skipped %v", b.Skipped)
	}
	// a bare array reads the same
	if arr := mustParse(t, `[{"kind":"block","target":"192.0.2.1","until":"2026-05-01T13:00:00Z"}]`, FormatVigil); len(arr.Decisions) != 1 {
		t.Fatalf("array: %+v", arr)
	}
}

// TestExportImportRoundTrip: what each format writes, it reads back to the
// same decisions (the CrowdSec formats hold blocks only, with the time
// that remains).
func TestExportImportRoundTrip(t *testing.T) {
	ds := []Decision{
		{Kind: Block, Target: "203.0.113.7", Reason: "scan, \"quoted\"", Source: "admin", Strike: 1, Created: transferNow, Until: transferNow.Add(time.Hour)},
		{Kind: Block, Target: "2001:db8::/48", Reason: "probe", Source: "auto", Strike: 3, Created: transferNow.Add(-time.Hour), Until: transferNow.Add(90 * time.Minute)},
		{Kind: Lock, Target: "alice", Source: "auto", Strike: 1, Created: transferNow, Until: transferNow.Add(time.Minute)},
		{Kind: RevokeUser, Target: "alice", Source: "auto", Strike: 1, Created: transferNow, Until: transferNow.Add(24 * time.Hour), Linked: Ref{Kind: Lock, Target: "alice"}},
	}
	for _, f := range []Format{FormatVigil, FormatCrowdSecCSV, FormatCrowdSecJSON} {
		var buf bytes.Buffer
		skipped, err := WriteDecisions(&buf, ds, f, transferNow)
		if err != nil {
			t.Fatal(err)
		}
		b := mustParse(t, buf.String(), f)
		want := ds
		if f != FormatVigil {
			want = ds[:2]
			if skipped != 2 {
				t.Errorf("%s: %d left out, want the lock and the revocation", f, skipped)
			}
		}
		if len(b.Decisions) != len(want) {
			t.Fatalf("%s: read back %s\n%s", f, targets(b.Decisions), buf.String())
		}
		for i, d := range b.Decisions {
			w := want[i]
			if d.Kind != w.Kind || d.Target != w.Target || d.Reason != w.Reason || !d.Until.Equal(w.Until) {
				t.Errorf("%s: %+v\nread back as %+v", f, w, d)
			}
			if f == FormatVigil && d != w {
				t.Errorf("vigil: %+v\nread back as %+v", w, d)
			}
		}
	}
	var csv bytes.Buffer
	_, _ = WriteDecisions(&csv, ds[:1], FormatCrowdSecCSV, transferNow)
	if want := "value,duration,type,scope,reason,origin\n203.0.113.7,1h0m0s,ban,Ip,\"scan, \"\"quoted\"\"\",vigil\n"; csv.String() != want {
		t.Fatalf("CSV export\n got %q\nwant %q", csv.String(), want)
	}
}

// TestListingFilterAndLinks: kind and target filters compare canonical
// forms, a bad target is an error, and a lock shows the revocation that
// names it.
func TestListingFilterAndLinks(t *testing.T) {
	until := transferNow.Add(time.Hour)
	ds := []Decision{
		{Kind: Lock, Target: "Bob ", Until: until},
		{Kind: RevokeUser, Target: "bob", Until: until, Linked: Ref{Kind: Lock, Target: "BOB"}},
		{Kind: Block, Target: "2001:db8::7", Until: until},
		{Kind: RevokeJTI, Target: "bob", Until: until},
	}
	all := Listing(ds, DecisionFilter{})
	if all[0].Target != "bob" || all[0].Linked != (Ref{Kind: RevokeUser, Target: "bob"}) || all[1].Linked.Target != "bob" {
		t.Fatalf("listing %+v", all)
	}
	for _, c := range []struct {
		kinds  []string
		target string
		want   string // kinds listed, in order
	}{
		{nil, "BOB", "lock revoke_user"}, // a token ID is compared exactly
		{nil, "bob", "lock revoke_user revoke_jti"},
		{[]string{"lock,revoke_user"}, "", "lock revoke_user"},
		{[]string{"block"}, "2001:DB8::7", "block"},
		{[]string{"revoke_jti", ""}, "Bob", ""},
		{nil, "2001:db8:0::7", "block"},
	} {
		kinds, err := ParseKinds(c.kinds)
		if err != nil {
			t.Fatal(err)
		}
		f, err := NewDecisionFilter(kinds, c.target)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range Listing(ds, f) {
			got = append(got, string(d.Kind))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("kind %v target %q: %v, want %s", c.kinds, c.target, got, c.want)
		}
	}
	if _, err := ParseKinds([]string{"block,bans"}); err == nil {
		t.Error("an unknown kind was accepted")
	}
	if _, err := NewDecisionFilter([]Kind{Block}, "alice"); err == nil {
		t.Error("a block filter accepted a target that is no address")
	}
}

// TestStoresCanonicalTargets: both stores keep a lock or revocation under
// the account's canonical name and a block under the address's.
func TestStoresCanonicalTargets(t *testing.T) {
	client, prefix := redistest.Client(t)
	rd, _ := newTestDecisions(t, client, prefix, Hooks{})
	mem := NewMemoryDecisions(NewDecisionCache(nil))
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for name, s := range map[string]DecisionStore{"memory": mem, "redis": rd} {
		_ = s.Put(ctx, Decision{Kind: Lock, Target: "Bob ", Until: until})
		_ = s.Put(ctx, Decision{Kind: RevokeUser, Target: "ＢＯＢ", Until: until}) // fullwidth
		_, _, _ = s.Impose(ctx, Decision{Kind: Block, Target: "2001:DB8::1"}, time.Minute, time.Hour, time.Now())
		ds, _ := s.List(ctx, time.Now())
		got := map[string]bool{}
		for _, d := range ds {
			got[string(d.Kind)+" "+d.Target] = true
		}
		for _, want := range []string{"lock bob", "revoke_user bob", "block 2001:db8::1"} {
			if !got[want] {
				t.Errorf("%s: %q not listed: %+v", name, want, ds)
			}
		}
		if was, _ := s.Lift(ctx, Lock, "BOB", time.Now()); !was {
			t.Errorf("%s: the lock of bob was not lifted by BOB", name)
		}
	}
}

// TestUnlockLiftsTheLinkedRevocation: a lock that ends the account's
// sessions links its revocation and names it in ACCOUNT_LOCKED; an unlock
// lifts both and says so; a revocation an operator made is left alone.
func TestUnlockLiftsTheLinkedRevocation(t *testing.T) {
	c, events := testCore(t)
	c.RegisterSessions("site", 24*time.Hour)
	r := c.For(SitePolicy{TerminateOn: map[detect.Type]bool{detect.AccountLocked: true}})
	lock := detect.Finding{Type: detect.AccountLocked, Facts: factsFrom("198.51.100.1", ""), Action: detect.LockAccount,
		Target: "Alice", Ban: detect.Ban{Base: time.Minute}}
	r.Act(context.Background(), lock)
	rv, ok := c.Store.Cache.Get(RevokeUser, "alice", time.Now())
	if !ok || rv.Linked != (Ref{Kind: Lock, Target: "alice"}) || rv.Target != "alice" {
		t.Fatalf("revocation %+v, %v", rv, ok)
	}
	var locked detect.Event
	for _, e := range *events {
		if e.Type == detect.AccountLocked {
			locked = e
		}
	}
	if got, _ := locked.Details["revocation"].(map[string]any); got["kind"] != "revoke_user" || got["target"] != "alice" {
		t.Fatalf("ACCOUNT_LOCKED details %v", locked.Details)
	}
	was, err := c.Lift(context.Background(), Lock, "ALICE", Operator{Remote: "127.0.0.1:1"})
	if err != nil || !was {
		t.Fatalf("lift: %v %v", was, err)
	}
	if _, ok := c.Store.Cache.Get(RevokeUser, "alice", time.Now()); ok {
		t.Fatal("the revocation the lock caused outlived the unlock")
	}
	last := (*events)[len(*events)-1]
	if lifted, _ := last.Details["linked_lifted"].(map[string]any); lifted["target"] != "alice" {
		t.Fatalf("unlock event %v", last.Details)
	}
	// an operator's own revocation is not the lock's to lift
	r.Act(context.Background(), lock)
	if _, err := c.RevokeByOperator(context.Background(), Revocation{Kind: RevokeUser, Target: "alice", Reason: "stolen laptop"}, Operator{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lift(context.Background(), Lock, "alice", Operator{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Store.Cache.Get(RevokeUser, "alice", time.Now()); !ok {
		t.Fatal("an unlock lifted a revocation the operator made")
	}
}

// TestCoreImportIsOneEvent: an import, however large, is one ADMIN_ACTION.
func TestCoreImportIsOneEvent(t *testing.T) {
	c, events := testCore(t)
	b, err := ParseDecisions([]byte("value\n192.0.2.1\n192.0.2.2\n192.0.2.3\n"), FormatCrowdSecCSV, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.Import(context.Background(), b, Operator{Remote: "127.0.0.1:9"})
	if len(*events) != 1 || (*events)[0].Details["action"] != "import" || (*events)[0].Details["count"] != 3 ||
		(*events)[0].Details["format"] != "crowdsec-csv" {
		t.Fatalf("events %+v", *events)
	}
	if _, ok := c.Store.Cache.Blocked(netip.MustParseAddr("192.0.2.2"), time.Now()); !ok {
		t.Fatal("an imported block is not enforced")
	}
}

// held is how many decisions of a kind c holds.
func held(c *DecisionCache, kind Kind) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m.count(kind)
}

// importBatch is n distinct random ranges.
func importBatch(n int, now time.Time) []Decision {
	return randomRanges(n, rand.New(rand.NewPCG(7, 8)), now.Add(time.Hour))
}

// TestRedisImportReachesOtherInstances: a bulk write lands in the hash
// (never shortening what is there) and in every instance's cache.
func TestRedisImportReachesOtherInstances(t *testing.T) {
	clientA, prefix := redistest.Client(t)
	clientB := redis.NewClient(&redis.Options{Addr: clientA.Options().Addr})
	defer clientB.Close()
	a, _ := newTestDecisions(t, clientA, prefix, Hooks{})
	_, cacheB := newTestDecisions(t, clientB, prefix, Hooks{})
	now := time.Now()
	ds := importBatch(5000, now)
	longer := ds[0]
	longer.Until = now.Add(2 * time.Hour)
	mustPut(t, a, longer)
	if queued := PutMany(context.Background(), a, ds); queued != 0 {
		t.Fatalf("%d queued with Redis up", queued)
	}
	if n := clientA.HLen(context.Background(), prefix+"decisions").Val(); n != int64(len(ds)) {
		t.Fatalf("the hash holds %d decisions, want %d", n, len(ds))
	}
	poll.True(t, 10*time.Second, "every imported range on the other instance", func() bool {
		return held(cacheB, Block) == len(ds)
	})
	if d, _ := cacheB.Get(Block, longer.Target, now); !d.Until.Equal(longer.Until) {
		t.Fatalf("the import shortened a longer block to %v", d.Until)
	}
}

// TestRedisImportFailsOpen: with Redis away, an import is enforced here and
// queued for replay, as a single Put would be.
func TestRedisImportFailsOpen(t *testing.T) {
	srv := redistest.StartServer(t, 0)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	rd, cache := newTestDecisions(t, client, "vigiltest:", Hooks{})
	srv.Stop()
	ds := importBatch(1200, time.Now())
	if queued := PutMany(context.Background(), rd, ds); queued != len(ds) {
		t.Fatalf("%d queued, want %d", queued, len(ds))
	}
	if held(cache, Block) != len(ds) || len(rd.pending) != len(ds) {
		t.Fatalf("%d ranges enforced locally, %d pending", held(cache, Block), len(rd.pending))
	}
}

// BenchmarkImport100k: parsing and writing 100,000 ranges (CrowdSec CSV)
// into each store, and, for Redis, until another instance holds them all.
func BenchmarkImport100k(b *testing.B) {
	now := time.Now()
	var buf bytes.Buffer
	_, _ = WriteDecisions(&buf, importBatch(100_000, now), FormatCrowdSecCSV, now)
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseDecisions(buf.Bytes(), FormatCrowdSecCSV, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	batch, _ := ParseDecisions(buf.Bytes(), FormatCrowdSecCSV, now)
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			PutMany(context.Background(), NewMemoryDecisions(NewDecisionCache(nil)), batch.Decisions)
		}
	})
	b.Run("redis", func(b *testing.B) {
		client, prefix := redistest.Client(b)
		other := redis.NewClient(&redis.Options{Addr: client.Options().Addr})
		defer other.Close()
		for b.Loop() {
			b.StopTimer()
			client.Del(context.Background(), prefix+"decisions")
			rd, _ := newTestDecisions(b, client, prefix, Hooks{})
			rdB, cacheB := newTestDecisions(b, other, prefix, Hooks{})
			b.StartTimer()
			start := time.Now()
			PutMany(context.Background(), rd, batch.Decisions)
			written := time.Since(start)
			for held(cacheB, Block) < len(batch.Decisions) {
				time.Sleep(time.Millisecond)
			}
			b.Logf("%d written in %v, on the other instance after %v", len(batch.Decisions), written, time.Since(start))
			_, _ = rd.Close(), rdB.Close()
		}
	})
}

// FuzzParseDecisions: no input makes a parser panic, and what one accepts
// is valid: known kinds, canonical targets, in force, one per target, and
// it reads back the same through Vigil's format.
func FuzzParseDecisions(f *testing.F) {
	formats := []Format{FormatVigil, FormatCrowdSecCSV, FormatCrowdSecJSON}
	f.Add([]byte("value,duration,scope\n1.2.3.4,1d2h,Ip\n10.0.0.0/8,,range\n"), uint8(1))
	f.Add([]byte(`[{"value":"2001:db8::/32","scope":"Range","duration":"30m"}]`), uint8(2))
	f.Add([]byte(`{"decisions":[{"kind":"lock","target":"Bob ","until":"2026-05-02T00:00:00Z"}]}`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		format := formats[int(which)%len(formats)]
		b, err := ParseDecisions(data, format, transferNow)
		if err != nil {
			if len(b.Decisions) != 0 {
				t.Fatalf("an error (%v) with %d decisions kept", err, len(b.Decisions))
			}
			return
		}
		seen := map[string]bool{}
		for _, d := range b.Decisions {
			canon, err := CanonicalTarget(d.Kind, d.Target)
			if err != nil || canon != d.Target || !d.Active(transferNow) || d.Created.After(transferNow.Add(clockSkew)) {
				t.Fatalf("accepted %+v (canonical %q, %v)", d, canon, err)
			}
			if k := d.Key(); seen[k] {
				t.Fatalf("two decisions for %s %q", d.Kind, d.Target)
			} else {
				seen[k] = true
			}
		}
		var buf bytes.Buffer
		if _, err := WriteDecisions(&buf, b.Decisions, FormatVigil, transferNow); err != nil {
			t.Fatal(err)
		}
		again, err := ParseDecisions(buf.Bytes(), FormatVigil, transferNow)
		if err != nil || len(again.Decisions) != len(b.Decisions) {
			t.Fatalf("read back: %v, %d of %d decisions\n%s", err, len(again.Decisions), len(b.Decisions), buf.String())
		}
		for i, d := range again.Decisions {
			if d != b.Decisions[i] {
				t.Fatalf("read back\n%+v\nas\n%+v", b.Decisions[i], d)
			}
		}
	})
}
