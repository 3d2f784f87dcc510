package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/poll"
)

const alertSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hookReceiver is a webhook receiver written from the Standard Webhooks
// spec alone: it recomputes the HMAC over the raw body and refuses (401)
// anything that does not match.
type hookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []map[string]any
	ids  map[string]int
	bad  int
	secr []byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(alertSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{ids: map[string]int{}, secr: key}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, h.secr)
	fmt.Fprintf(mac, "%s.%s.", id, ts)
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	var v map[string]any
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Header.Get("webhook-signature") != want || json.Unmarshal(body, &v) != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.ids[id]++
	h.got = append(h.got, v)
}

// summary says what arrived so far, for failure messages.
func (h *hookReceiver) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("%d alerts, %d refused signatures", len(h.got), h.bad)
}

func (h *hookReceiver) alerts(typ, user string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, a := range h.got {
		if a["type"] == typ && a["user"] == user {
			out = append(out, a)
		}
	}
	return out
}

// TestAlertWebhookOnLockout: locking an account sends a correctly signed
// ACCOUNT_LOCKED webhook; the LOW failed logins before it do not; after a
// reload the same dispatcher keeps delivering.
func TestAlertWebhookOnLockout(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s storeCase) {
		h := newHookReceiver(t)
		cfg := gatewayConfig{Global: s.global + fmt.Sprintf(`
		alert webhook %s/hook {
			secret %s
			min_severity MEDIUM
		}`, h.srv.URL, alertSecret)}
		g := startGateway(t, cfg)

		for i := 1; i <= 3; i++ {
			wantFailedLogin(t, g.login("alice", fmt.Sprintf("wrong-%d", i)))
		}
		var lock map[string]any
		poll.Until(t, 10*time.Second, "signed ACCOUNT_LOCKED webhook", func() (bool, string) {
			got := h.alerts("ACCOUNT_LOCKED", "alice")
			if len(got) == 0 {
				return false, h.summary()
			}
			lock = got[0]
			return true, ""
		})
		if lock["severity"] != "MEDIUM" || lock["ip"] != "127.0.0.1" || lock["id"] == "" || lock["dedup_key"] == "" {
			t.Fatalf("ACCOUNT_LOCKED alert: %v", lock)
		}
		evs := g.waitEvents(q("type", "ACCOUNT_LOCKED", "user", "alice"), "the lock event", func(evs []event) bool { return len(evs) == 1 })
		if lock["id"] != evs[0].ID {
			t.Fatalf("alert id %v is not the event id %s", lock["id"], evs[0].ID)
		}

		g.reload(cfg)
		for i := 1; i <= 3; i++ {
			wantFailedLogin(t, g.login("bob", fmt.Sprintf("wrong-%d", i)))
		}
		poll.Until(t, 10*time.Second, "bob's lock alert after the reload", func() (bool, string) {
			return len(h.alerts("ACCOUNT_LOCKED", "bob")) == 1, ""
		})
		g.waitMetric(5*time.Second, "vigil_alerts_sent_total", `channel="webhook"`, 2)

		h.mu.Lock()
		defer h.mu.Unlock()
		if h.bad != 0 {
			t.Fatalf("%d webhooks failed signature verification", h.bad)
		}
		for id, n := range h.ids {
			if n != 1 {
				t.Fatalf("alert %s delivered %d times", id, n)
			}
		}
		for _, a := range h.got {
			if a["type"] == "FAILED_LOGIN" {
				t.Fatalf("a LOW FAILED_LOGIN reached a MEDIUM webhook: %v", a)
			}
		}
	})
}
