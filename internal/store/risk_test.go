package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/risk"
	"github.com/vigilsec/vigil/internal/redistest"
)

func riskTables() *risk.Tables {
	t := &risk.Tables{HalfLife: time.Hour, UserTTL: 1000 * time.Hour, GlobalEvery: 30 * time.Minute}
	for f := range risk.NumFeatures {
		t.UserK[f], t.GlobalK[f] = 3, 1000
	}
	t.UserK[risk.Hour], t.GlobalK[risk.Hour] = risk.HoursPerWeek, risk.HoursPerWeek
	return t
}

// riskQuery is a login of user whose every feature has the value v (the
// hour aside, which follows the time), without an ASN when v is odd.
func riskQuery(tab *risk.Tables, user string, v uint64, now time.Time) *risk.Query {
	q := &risk.Query{User: detect.HashID("user", user), Now: now, Tables: tab}
	for f := range risk.NumFeatures {
		q.Keys[f], q.Has[f] = v*1000+uint64(f), true
	}
	q.Has[risk.ASN] = v%2 == 0
	h := uint64(now.UTC().Hour())
	q.Keys[risk.Hour] = h
	for i := range risk.NearHours {
		q.Near[i] = (h + uint64(i) + 1) % risk.HoursPerWeek
	}
	for i := range risk.NearVersions {
		q.Near[risk.NearHours+i] = (v-uint64(i)-1)*1000 + uint64(risk.Browser) // "earlier versions"
	}
	return q
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func sameCounts(a, b risk.Counts) bool {
	if a.Logins != b.Logins {
		return false
	}
	for f := range risk.NumFeatures {
		x, y := a.User[f], b.User[f]
		if !near(x.Count, y.Count) || !near(x.Total, y.Total) || !near(x.New, y.New) {
			return false
		}
		if !near(a.Global[f].Count, b.Global[f].Count) || !near(a.Global[f].Total, b.Global[f].Total) {
			return false
		}
	}
	for i := range a.Near {
		if !near(a.Near[i], b.Near[i]) {
			return false
		}
	}
	return near(a.IPNew, b.IPNew)
}

// TestRiskParity learns one scripted sequence into the memory and the
// Redis store and compares every read: decay, the user tables' eviction,
// the epoch's rebase, the gate on the global tables and a new generation.
func TestRiskParity(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	mem, red := NewMemoryRisk(0, nil), NewRedisRisk(NewKeyspace(client, prefix))
	tab := riskTables()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	type step struct {
		learn bool
		user  string
		v     uint64
		at    time.Duration
	}
	var steps []step
	// alice: values 1, 2, 3, 4 (a full table evicts the lowest), 1 again
	for i, v := range []uint64{1, 1, 2, 3, 1, 4, 5, 1} {
		steps = append(steps, step{true, "alice", v, time.Duration(i) * 20 * time.Minute})
		steps = append(steps, step{false, "alice", v, time.Duration(i)*20*time.Minute + time.Minute})
		steps = append(steps, step{false, "alice", 9, time.Duration(i)*20*time.Minute + time.Minute})
	}
	// bob interleaves (the global tables see both), then both come back
	// after 70 half-lives (the epoch's rebase) and after a generation
	for i := range 5 {
		steps = append(steps, step{true, "bob", uint64(2 + i%2), time.Duration(i) * 45 * time.Minute})
	}
	for _, later := range []time.Duration{70 * time.Hour, 600 * time.Hour} {
		steps = append(steps, step{false, "alice", 1, later}, step{true, "alice", 6, later},
			step{false, "alice", 6, later + time.Second}, step{true, "bob", 2, later + time.Minute},
			step{false, "bob", 2, later + 2*time.Minute}, step{false, "carol", 2, later})
	}
	for i, s := range steps {
		q := riskQuery(tab, s.user, s.v, t0.Add(s.at))
		if s.learn {
			if err := mem.Learn(ctx, q); err != nil {
				t.Fatal(err)
			}
			if err := red.Learn(ctx, q); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			continue
		}
		cm, _ := mem.Read(ctx, q)
		cr, err := red.Read(ctx, q)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !sameCounts(cm, cr) {
			t.Fatalf("step %d (%s reads %d at %v):\nmemory %+v\nredis  %+v", i, s.user, s.v, s.at, cm, cr)
		}
	}
	// spot checks of the rules both follow
	q := riskQuery(tab, "alice", 1, t0.Add(600*time.Hour+time.Second))
	c, _ := mem.Read(ctx, q)
	if c.Logins != 10 || len(mem.users[q.User].tables[risk.IP].keys) != 3 {
		t.Fatalf("alice: %d logins, %d addresses held; want 10 and 3", c.Logins, len(mem.users[q.User].tables[risk.IP].keys))
	}
	if c.Global[risk.IP].Total > 2.5 {
		t.Fatalf("the new generation's global total %v: it should hold the last logins only", c.Global[risk.IP].Total)
	}
}

// TestRiskDecayAndGate checks the arithmetic against hand-computed values.
func TestRiskDecayAndGate(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryRisk(0, nil)
	tab := riskTables()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		mustNil(t, m.Learn(ctx, riskQuery(tab, "alice", 2, t0.Add(time.Duration(i)*10*time.Minute))))
	}
	c, _ := m.Read(ctx, riskQuery(tab, "alice", 2, t0.Add(2*time.Hour)))
	// weights 1, 2^(1/6), 2^(2/6) read two hours after the first
	want := (1 + math.Exp2(1.0/6) + math.Exp2(2.0/6)) / 4
	if !near(c.User[risk.IP].Count, want) || !near(c.User[risk.IP].Total, want) || !near(c.User[risk.IP].New, 0.25) {
		t.Fatalf("user ip tally %+v, want count and total %v", c.User[risk.IP], want)
	}
	// the gate let only the first login of the half hour into the global table
	if g := c.Global[risk.IP]; !near(g.Count, g.Total) || g.Total >= 0.3 {
		t.Fatalf("global ip tally %+v: more than one login counted", g)
	}
}

func TestRiskBounds(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	evicted := 0
	m := NewMemoryRisk(100, func(n int) { evicted += n })
	r := NewRedisRisk(NewKeyspace(client, prefix))
	tab := riskTables()
	tab.GlobalK[risk.IP] = 16
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 200 {
		q := riskQuery(tab, fmt.Sprint("u", i), uint64(i), t0.Add(time.Duration(i)*time.Second))
		mustNil(t, m.Learn(ctx, q))
		mustNil(t, r.Learn(ctx, q))
	}
	if m.Len() > 100 || evicted < 50 {
		t.Fatalf("%d profiles held, %d evicted", m.Len(), evicted)
	}
	if n := len(m.global.tables[risk.IP]); n != 16 {
		t.Fatalf("memory global ip table holds %d values, want 16", n)
	}
	gen, _ := risk.GlobalGeneration(t0, tab.HalfLife)
	key := NewKeyspace(client, prefix).Tagged("rg", "risk", fmt.Sprint(gen), "ip")
	if n := client.HLen(ctx, key).Val(); n != 17 {
		t.Fatalf("redis global ip table holds %d fields, want 16 values and the total", n)
	}
	for _, k := range redistest.Keys(t, client, prefix) {
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Fatalf("%s has no TTL (%v)", k, ttl)
		}
	}
}

func TestRiskRefusesRawKeys(t *testing.T) {
	client, prefix := redistest.Client(t)
	r := NewRedisRisk(NewKeyspace(client, prefix))
	q := riskQuery(riskTables(), "alice", 1, time.Now())
	q.User = "alice"
	if _, err := r.Read(context.Background(), q); !errors.Is(err, errNotHashID) {
		t.Fatalf("Read with a raw key: %v", err)
	}
	if err := r.Learn(context.Background(), q); !errors.Is(err, errNotHashID) {
		t.Fatalf("Learn with a raw key: %v", err)
	}
}

// failingRisk is a primary whose errors a test switches on.
type failingRisk struct {
	err   error
	inner *MemoryRisk
}

func (f *failingRisk) Read(ctx context.Context, q *risk.Query) (risk.Counts, error) {
	if f.err != nil {
		return risk.Counts{}, f.err
	}
	return f.inner.Read(ctx, q)
}

func (f *failingRisk) Learn(ctx context.Context, q *risk.Query) error {
	if f.err != nil {
		return f.err
	}
	return f.inner.Learn(ctx, q)
}

func TestFallbackRisk(t *testing.T) {
	primary := &failingRisk{inner: NewMemoryRisk(0, nil)}
	var ops []string
	f := NewFallbackRisk(primary, nil, func(op string) { ops = append(ops, op) })
	ctx := context.Background()
	tab := riskTables()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	mustNil(t, f.Learn(ctx, riskQuery(tab, "alice", 2, now)))
	primary.err = errors.New("connection refused")
	mustNil(t, f.Learn(ctx, riskQuery(tab, "alice", 2, now.Add(time.Minute))))
	c, err := f.Read(ctx, riskQuery(tab, "alice", 2, now.Add(2*time.Minute)))
	if err != nil || c.Logins != 2 {
		t.Fatalf("shadow read: %d logins, %v", c.Logins, err)
	}
	if len(ops) != 2 || ops[0] != "risk_learn" || ops[1] != "risk_read" {
		t.Fatalf("store errors reported: %v", ops)
	}
}

// TestRiskUserTableBound learns one user 20 distinct values of every
// feature: each table, in memory and in Redis, keeps its K, and the
// profile's hash lives for the profile's TTL.
func TestRiskUserTableBound(t *testing.T) {
	client, prefix := redistest.Client(t)
	ctx := context.Background()
	m, r := NewMemoryRisk(0, nil), NewRedisRisk(NewKeyspace(client, prefix))
	tab := riskTables()
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var q *risk.Query
	for i := range 20 {
		q = riskQuery(tab, "alice", uint64(2*i+2), t0.Add(time.Duration(i)*time.Hour))
		mustNil(t, m.Learn(ctx, q))
		mustNil(t, r.Learn(ctx, q))
	}
	p := m.users[q.User]
	all := client.HGetAll(ctx, r.userKey(q.User)).Val()
	for f := range risk.NumFeatures {
		code := risk.Feature(f).Code()
		held := 0
		for k := range all {
			if len(k) == 17 && k[0] == code {
				held++
			}
		}
		want := min(20, tab.UserK[f])
		if len(p.tables[f].keys) != want || held != want || all["D"+string(code)] != fmt.Sprint(want) {
			t.Errorf("%s: memory holds %d, redis %d (D=%s); want %d", risk.Feature(f), len(p.tables[f].keys), held, all["D"+string(code)], want)
		}
	}
	if n := len(all); n > 3*risk.NumFeatures+3*6+20+2+6 {
		t.Errorf("the profile's hash has %d fields", n)
	}
	ttl := client.PTTL(ctx, r.userKey(q.User)).Val()
	if ttl <= tab.UserTTL-time.Minute || ttl > tab.UserTTL {
		t.Errorf("profile TTL %v, want about %v", ttl, tab.UserTTL)
	}
	// both read the same after the evictions
	q = riskQuery(tab, "alice", 40, t0.Add(30*time.Hour))
	cm, _ := m.Read(ctx, q)
	cr, err := r.Read(ctx, q)
	if err != nil || !sameCounts(cm, cr) {
		t.Fatalf("memory %+v\nredis %+v (%v)", cm, cr, err)
	}
	// the memory profile expires like the hash
	q = riskQuery(tab, "alice", 40, t0.Add(19*time.Hour+tab.UserTTL))
	if c, _ := m.Read(ctx, q); c.Logins != 0 || m.Len() != 0 {
		t.Fatalf("after the TTL: %d logins, %d profiles", c.Logins, m.Len())
	}
}
