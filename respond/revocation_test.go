package respond

import (
	"context"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
	"github.com/vigilsec/vigil/internal/redistest"
)

func TestSessionRevokedRules(t *testing.T) {
	c := NewDecisionCache(nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	alice := detect.AccountKey("Alice")
	if _, ok := c.SessionRevoked(alice, "t1", now.Add(-time.Hour), now); ok {
		t.Fatal("revoked with no revocations")
	}
	c.Set(Decision{Kind: RevokeUser, Target: "alice", Created: now, Until: now.Add(time.Hour)})
	c.Set(Decision{Kind: RevokeJTI, Target: "t9", Created: now, Until: now.Add(time.Hour)})
	cases := []struct {
		name    string
		user    string
		jti     string
		issued  time.Time
		at      time.Time
		revoked bool
	}{
		{"issued before", alice, "t1", now.Add(-time.Minute), now, true},
		{"issued in the same second", alice, "t1", now.Add(400 * time.Millisecond), now, true},
		{"issued the second after", alice, "t1", now.Add(time.Second), now.Add(time.Second), false},
		{"no iat", alice, "t1", time.Time{}, now, true},
		{"user case", detect.AccountKey(" ALICE "), "", now.Add(-time.Minute), now, true},
		{"other user", detect.AccountKey("bob"), "t1", now.Add(-time.Minute), now, false},
		{"revoked jti, later token", detect.AccountKey("bob"), "t9", now.Add(time.Hour), now, true},
		{"expired revocation", alice, "t1", now.Add(-time.Minute), now.Add(time.Hour), false},
	}
	for _, tc := range cases {
		if _, got := c.SessionRevoked(tc.user, tc.jti, tc.issued, tc.at); got != tc.revoked {
			t.Errorf("%s: revoked=%v, want %v", tc.name, got, tc.revoked)
		}
	}
	if got := len(c.List(now)); got != 2 {
		t.Fatalf("List has %d decisions, want 2", got)
	}
	c.Remove(RevokeUser, "ALICE")
	if _, ok := c.SessionRevoked(alice, "", now.Add(-time.Minute), now); ok {
		t.Fatal("user revocation survived Remove")
	}
	c.Expire(now.Add(2 * time.Hour))
	if _, ok := c.Get(RevokeJTI, "t9", now); ok {
		t.Fatal("jti revocation survived Expire")
	}
}

func TestRevocationKeysAreHashed(t *testing.T) {
	for _, k := range []Kind{RevokeUser, RevokeJTI} {
		key := DecisionKey(k, "evil\r\nFLUSHALL")
		if len(key) != len(k)+1+32 {
			t.Fatalf("%s key %q is not kind:hash", k, key)
		}
	}
	if DecisionKey(RevokeUser, "Alice") != DecisionKey(RevokeUser, "alice ") {
		t.Fatal("user revocations must be keyed like locks (normalised)")
	}
	if _, err := ParseKind("revoke_jti"); err != nil {
		t.Fatal(err)
	}
}

// TestRedisRevocationPropagates: a revocation put on one instance reaches
// the decision cache of another through pub/sub, and lifting it too.
func TestRedisRevocationPropagates(t *testing.T) {
	client, prefix := redistest.Client(t)
	a, _ := newTestDecisions(t, client, prefix, Hooks{})
	_, cacheB := newTestDecisions(t, client, prefix, Hooks{})
	ctx := context.Background()
	now := time.Now().UTC()
	if err := a.Put(ctx, Decision{Kind: RevokeUser, Target: "alice", Source: "admin", Created: now, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "revocation on instance B", func() bool {
		_, ok := cacheB.SessionRevoked(detect.AccountKey("alice"), "", now.Add(-time.Minute), time.Now())
		return ok
	})
	if was, err := a.Lift(ctx, RevokeUser, "alice", time.Now()); err != nil || !was {
		t.Fatalf("lift: %v %v", was, err)
	}
	poll.True(t, 5*time.Second, "lift on instance B", func() bool {
		_, ok := cacheB.SessionRevoked(detect.AccountKey("alice"), "", now.Add(-time.Minute), time.Now())
		return !ok
	})
}
