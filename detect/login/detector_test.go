package login

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// orderCounter is a LoginCounter that records when it reserves.
type orderCounter struct{ calls *[]string }

func (c orderCounter) Reserve(_ context.Context, k detect.LoginKeys, _ detect.LoginWindows, _ time.Time) (detect.Attempt, detect.LoginCounts, error) {
	*c.calls = append(*c.calls, "reserve")
	return detect.Attempt{Keys: k}, detect.LoginCounts{Account: 1, IP: 1, Pair: 1}, nil
}
func (orderCounter) Release(context.Context, detect.Attempt) error       { return nil }
func (orderCounter) RecordSuccess(context.Context, detect.Attempt) error { return nil }
func (orderCounter) Hold(context.Context, detect.CounterKind, string, time.Time) error {
	return nil
}
func (orderCounter) Forget(context.Context, detect.CounterKind, string) error { return nil }

// lockedResponder holds a lock on one account.
type lockedResponder struct{ locked string }

func (lockedResponder) Act(context.Context, detect.Finding) detect.Outcome { return detect.Outcome{} }
func (r lockedResponder) Locked(user string, now time.Time) (detect.Outcome, bool) {
	return detect.Outcome{Until: now.Add(time.Minute)}, user == r.locked
}
func (lockedResponder) FailClosed() bool        { return false }
func (lockedResponder) Allowed(netip.Addr) bool { return false }

// TestAheadRunsJustBeforeTheReservation: the Ahead hook sees the account
// already read and runs before the reservation (so a later stage's store
// read can overlap it); a locked account, refused without a reservation,
// starts nothing.
func TestAheadRunsJustBeforeTheReservation(t *testing.T) {
	for _, monitor := range []bool{false, true} {
		var calls []string
		d := New(Options{
			Routes:      []Route{{Method: "POST", Path: "/login", User: UserSource{From: "header", Name: "X-User"}}},
			MonitorOnly: monitor, Counter: orderCounter{&calls}, Responder: lockedResponder{locked: "mallory"},
			Ahead: func(req *detect.Request) { calls = append(calls, "ahead:"+req.Login.User) },
		})
		check := func(user string) *detect.Refusal {
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.Header.Set("X-User", user)
			req := &detect.Request{HTTP: r, IP: netip.MustParseAddr("192.0.2.1"), Start: time.Now()}
			req.MarkLogin(0)
			return d.Check(req)
		}
		if ref := check("alice"); ref != nil {
			t.Fatalf("monitor %v: alice refused: %+v", monitor, ref)
		}
		if len(calls) != 2 || calls[0] != "ahead:alice" || calls[1] != "reserve" {
			t.Fatalf("monitor %v: calls %v, want [ahead:alice reserve]", monitor, calls)
		}
		calls = nil
		ref := check("mallory")
		if monitor {
			continue // monitor-only never refuses: a locked account is counted like any other
		}
		if ref == nil || len(calls) != 0 {
			t.Fatalf("a locked account: refusal %+v, calls %v (want a refusal and no work started)", ref, calls)
		}
	}
}
