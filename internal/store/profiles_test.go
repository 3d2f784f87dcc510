package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"

	"github.com/vigilsec/vigil/internal/redistest"
)

const testProfile detect.ProfileKind = "base"

// fakeClock is a settable time for MemoryProfiles, whose interface carries
// no time of its own.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func appendByte(c byte) func([]byte) []byte {
	return func(cur []byte) []byte { return append(cur, c) }
}

// TestProfilesParity runs one scripted sequence against the memory and the
// Redis implementations: records, nil-ness and errors must agree.
func TestProfilesParity(t *testing.T) {
	client, prefix := redistest.Client(t)
	mem := NewMemoryProfiles(nil)
	mem.now = (&fakeClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}).now
	impls := []struct {
		name string
		p    detect.Profiles
	}{{"memory", mem}, {"redis", NewRedisProfiles(NewKeyspace(client, prefix))}}
	ctx := context.Background()
	a, b := detect.HashID("user", "alice"), detect.HashID("user", "bob")
	var sawNil bool
	steps := []struct {
		op      string // "get", "update"
		key     string
		ttl     time.Duration
		fn      func([]byte) []byte
		want    []byte // nil: no record
		wantErr error
	}{
		{"get", a, 0, nil, nil, nil},
		{"update", a, time.Hour, appendByte('a'), []byte("a"), nil},
		{"update", a, time.Hour, appendByte('b'), []byte("ab"), nil},
		{"get", a, 0, nil, []byte("ab"), nil},
		{"get", b, 0, nil, nil, nil},
		// refused: too large, and a ttl that would store nothing
		{"update", a, time.Hour, func([]byte) []byte { return make([]byte, detect.MaxProfileBytes+1) }, nil, ErrProfileTooLarge},
		{"update", a, 0, appendByte('c'), nil, errBadTTL},
		{"get", a, 0, nil, []byte("ab"), nil},
		// the largest record, then an empty one, which is not "none"
		{"update", a, time.Hour, func([]byte) []byte { return make([]byte, detect.MaxProfileBytes) }, make([]byte, detect.MaxProfileBytes), nil},
		{"update", a, time.Hour, func([]byte) []byte { return []byte{} }, []byte{}, nil},
		{"update", a, time.Hour, func(cur []byte) []byte { sawNil = cur == nil; return cur }, []byte{}, nil},
		{"get", a, 0, nil, []byte{}, nil},
		// nil deletes, also where there is nothing
		{"update", a, time.Hour, func([]byte) []byte { return nil }, nil, nil},
		{"get", a, 0, nil, nil, nil},
		{"update", b, time.Hour, func([]byte) []byte { return nil }, nil, nil},
		{"update", b, 90 * time.Minute, appendByte('z'), []byte("z"), nil},
	}
	for _, impl := range impls {
		for i, s := range steps {
			var got []byte
			var err error
			if s.op == "get" {
				got, err = impl.p.Get(ctx, testProfile, s.key)
			} else {
				got, err = impl.p.Update(ctx, testProfile, s.key, s.ttl, s.fn)
			}
			if !errors.Is(err, s.wantErr) || !bytes.Equal(got, s.want) || (got == nil) != (s.want == nil) {
				t.Fatalf("%s step %d (%s): got %.20q (nil %v), %v; want %.20q (nil %v), %v",
					impl.name, i, s.op, got, got == nil, err, s.want, s.want == nil, s.wantErr)
			}
		}
		if sawNil {
			t.Fatalf("%s: an empty record reached fn as nil", impl.name)
		}
	}
	keys := redistest.Keys(t, client, prefix)
	if len(keys) != 1 || keys[0] != prefix+"p:base:"+b {
		t.Fatalf("keys %v, want only bob's record", keys)
	}
	if ttl := client.PTTL(ctx, keys[0]).Val(); ttl <= time.Hour || ttl > 90*time.Minute {
		t.Fatalf("record TTL %v, want (1h, 1h30m]", ttl)
	}
}

func TestMemoryProfilesExpireAndCopy(t *testing.T) {
	clock := &fakeClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m := NewMemoryProfiles(nil)
	m.now = clock.now
	ctx := context.Background()
	key := detect.HashID("user", "alice")
	var kept []byte
	out, err := m.Update(ctx, testProfile, key, time.Minute, func(cur []byte) []byte {
		kept = append(cur, "abc"...)
		return kept
	})
	mustNil(t, err)
	// neither what fn returned, nor what Update or Get return, is the record
	kept[0], out[1] = 'X', 'Y'
	got, _ := m.Get(ctx, testProfile, key)
	got[2] = 'Z'
	if got, _ := m.Get(ctx, testProfile, key); string(got) != "abc" {
		t.Fatalf("the record changed through a caller's slice: %q", got)
	}
	clock.t = clock.t.Add(time.Minute - time.Nanosecond)
	if got, _ := m.Get(ctx, testProfile, key); string(got) != "abc" {
		t.Fatalf("expired early: %q", got)
	}
	clock.t = clock.t.Add(time.Nanosecond)
	if got, _ := m.Get(ctx, testProfile, key); got != nil {
		t.Fatalf("not expired after its ttl: %q", got)
	}
	out, _ = m.Update(ctx, testProfile, key, time.Minute, appendByte('n'))
	if string(out) != "n" || m.Len() != 1 {
		t.Fatalf("update after expiry: %q, %d records", out, m.Len())
	}
}

func TestRedisProfilesRefusesRawKeys(t *testing.T) {
	client, prefix := redistest.Client(t)
	p := NewRedisProfiles(NewKeyspace(client, prefix))
	ctx := context.Background()
	if _, err := p.Get(ctx, testProfile, "alice"); !errors.Is(err, errNotHashID) {
		t.Fatalf("Get with a raw key: %v", err)
	}
	called := false
	_, err := p.Update(ctx, testProfile, "alice", time.Hour, func([]byte) []byte { called = true; return []byte("x") })
	if !errors.Is(err, errNotHashID) || called {
		t.Fatalf("Update with a raw key: %v (fn called: %v)", err, called)
	}
	if keys := redistest.Keys(t, client, prefix); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
}

// TestProfilesConcurrentUpdates appends one byte from each of 20 goroutines
// through two instances sharing one Redis: no update may be lost.
func TestProfilesConcurrentUpdates(t *testing.T) {
	client, prefix := redistest.Client(t)
	ks := NewKeyspace(client, prefix)
	impls := map[string][2]detect.Profiles{
		"redis":  {NewRedisProfiles(ks), NewRedisProfiles(ks)},
		"memory": {NewMemoryProfiles(nil), nil},
	}
	key := detect.HashID("user", "busy")
	for name, pair := range impls {
		if pair[1] == nil {
			pair[1] = pair[0]
		}
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				if _, err := pair[i%2].Update(context.Background(), testProfile, key, time.Hour, appendByte(byte('A'+i))); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", name, err)
		}
		got, err := pair[0].Get(context.Background(), testProfile, key)
		if err != nil || len(got) != 20 {
			t.Fatalf("%s: record %q (%d bytes), %v; want 20 bytes", name, got, len(got), err)
		}
		for i := range 20 {
			if bytes.Count(got, []byte{byte('A' + i)}) != 1 {
				t.Fatalf("%s: record %q lacks or repeats %c", name, got, 'A'+i)
			}
		}
	}
}

// TestRedisProfilesGivesUp: a record changed behind every attempt's back
// ends in an error after profileAttempts tries, with nothing of ours stored.
func TestRedisProfilesGivesUp(t *testing.T) {
	client, prefix := redistest.Client(t)
	p := NewRedisProfiles(NewKeyspace(client, prefix))
	ctx := context.Background()
	key := detect.HashID("user", "hot")
	calls := 0
	_, err := p.Update(ctx, testProfile, key, time.Hour, func(cur []byte) []byte {
		calls++
		client.Set(ctx, prefix+"p:base:"+key, fmt.Sprint("other", calls), time.Hour)
		return append(cur, 'x')
	})
	if !errors.Is(err, errProfileConflict) || calls != profileAttempts {
		t.Fatalf("err %v after %d calls, want errProfileConflict after %d", err, calls, profileAttempts)
	}
	if got, _ := p.Get(ctx, testProfile, key); string(got) != fmt.Sprint("other", calls) {
		t.Fatalf("record %q", got)
	}
}

// failingProfiles is a working primary whose errors a test switches on.
type failingProfiles struct {
	err   error
	inner *MemoryProfiles
}

func (f *failingProfiles) Get(ctx context.Context, kind detect.ProfileKind, key string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.inner.Get(ctx, kind, key)
}

func (f *failingProfiles) Update(ctx context.Context, kind detect.ProfileKind, key string, ttl time.Duration, fn func([]byte) []byte) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.inner.Update(ctx, kind, key, ttl, fn)
}

func TestFallbackProfiles(t *testing.T) {
	primary := &failingProfiles{inner: NewMemoryProfiles(nil)}
	var ops []string
	f := NewFallbackProfiles(primary, nil, func(op string) { ops = append(ops, op) })
	ctx := context.Background()
	key := detect.HashID("user", "alice")
	// the primary's record has history the local shadow never saw
	_, _ = primary.inner.Update(ctx, testProfile, key, time.Hour, appendByte('r'))
	if out, err := f.Update(ctx, testProfile, key, time.Hour, appendByte('a')); string(out) != "ra" || err != nil {
		t.Fatalf("healthy primary: %q, %v", out, err)
	}
	primary.err = errors.New("connection refused")
	// the shadow holds what the primary stored, not its own version
	if got, err := f.Get(ctx, testProfile, key); string(got) != "ra" || err != nil {
		t.Fatalf("fallback get: %q, %v", got, err)
	}
	if out, err := f.Update(ctx, testProfile, key, time.Hour, appendByte('b')); string(out) != "rab" || err != nil {
		t.Fatalf("fallback update: %q, %v", out, err)
	}
	if len(ops) != 2 || ops[0] != "profile_get" || ops[1] != "profile_update" {
		t.Fatalf("store errors reported: %v", ops)
	}
	primary.err = fmt.Errorf("wrapped: %w", errNotHashID)
	if got, err := f.Get(ctx, testProfile, key); string(got) != "rab" || err != nil || len(ops) != 2 {
		t.Fatalf("refused key: %q, %v, reported %v", got, err, ops)
	}
	// what no store accepts is the caller's error, not an outage
	primary.err = nil
	big := func([]byte) []byte { return make([]byte, detect.MaxProfileBytes+1) }
	if _, err := f.Update(ctx, testProfile, key, time.Hour, big); !errors.Is(err, ErrProfileTooLarge) || len(ops) != 2 {
		t.Fatalf("too large: %v, reported %v", err, ops)
	}
	// a deletion reaches the shadow too
	_, _ = f.Update(ctx, testProfile, key, time.Hour, func([]byte) []byte { return nil })
	if got, _ := f.Memory().Get(ctx, testProfile, key); got != nil {
		t.Fatalf("shadow kept a deleted record: %q", got)
	}
}

func TestMemoryProfilesBounded(t *testing.T) {
	clock := &fakeClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	evicted := 0
	m := NewMemoryProfiles(func(n int) { evicted += n })
	m.now, m.maxRecs = clock.now, 100
	ctx := context.Background()
	put := func(i int, ttl time.Duration) {
		t.Helper()
		if _, err := m.Update(ctx, testProfile, detect.HashID("user", fmt.Sprint(i)), ttl, appendByte('x')); err != nil {
			t.Fatal(err)
		}
	}
	// expired records make room without evicting anything live
	for i := range 100 {
		put(i, time.Second)
	}
	clock.t = clock.t.Add(time.Second)
	put(100, time.Hour)
	if m.Len() != 1 || evicted != 0 {
		t.Fatalf("after sweeping expired records: %d held, %d evicted", m.Len(), evicted)
	}
	// a flood of live ones: the least recently updated half goes
	for i := 101; i <= 200; i++ {
		put(i, time.Hour)
	}
	if m.Len() > 60 || evicted < 40 || m.Len()+evicted != 101 {
		t.Fatalf("after a live overflow: %d held, %d evicted", m.Len(), evicted)
	}
	if got, _ := m.Get(ctx, testProfile, detect.HashID("user", "200")); got == nil {
		t.Fatal("the newest record was evicted")
	}
	if got, _ := m.Get(ctx, testProfile, detect.HashID("user", "100")); got != nil {
		t.Fatal("the least recent record survived")
	}
}
