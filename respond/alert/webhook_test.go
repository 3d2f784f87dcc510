package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// independentVerify checks a request the way a receiver with no access to
// Vigil's code would: decode the secret, HMAC the raw bytes received.
func independentVerify(t *testing.T, secret string, r request) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(r.Body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := r.Header.Get("webhook-signature"); got != want {
		t.Fatalf("signature %q, recomputed from the raw body %q", got, want)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Fatalf("webhook-timestamp %q is not a recent Unix time", ts)
	}
}

func TestWebhookSignedBody(t *testing.T) {
	rc := newReceiver(t)
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url())}}})
	e := event(detect.AccountLocked, "alice", "203.0.113.7")
	e.Country, e.City, e.ASN = "NL", "Amsterdam", 64500
	// LOW, below the default MEDIUM: dropped by Submit itself, and sent
	// before the lock, so it could only ever arrive first
	d.Submit(event(detect.FailedLogin, "alice", "203.0.113.7"))
	d.Submit(e)

	poll.Until(t, 5*time.Second, "webhook delivered", func() (bool, string) {
		return len(rc.requests()) >= 1, ""
	})
	r := rc.requests()[0]
	independentVerify(t, testSecret, r)
	key, _ := ParseSecret(testSecret)
	if err := Verify(key, r.Header, r.Body, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Verify(key, r.Header, append(r.Body, ' '), time.Now(), 5*time.Minute); err == nil {
		t.Fatal("Verify accepted a modified body")
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("webhook-id") != e.ID {
		t.Fatalf("headers: %v (want webhook-id %s)", r.Header, e.ID)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.Body)
	}
	for k, want := range map[string]any{
		"id": e.ID, "type": "ACCOUNT_LOCKED", "severity": "MEDIUM", "site": "shop.example",
		"user": "alice", "ip": "203.0.113.7", "country": "NL", "city": "Amsterdam", "asn": float64(64500),
		"dedup_key": DedupKey(e),
	} {
		if body[k] != want {
			t.Errorf("body[%q] = %v, want %v", k, body[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, body["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
	if body["details"].(map[string]any)["strike"] != float64(1) {
		t.Errorf("details: %v", body["details"])
	}
	settle(t, d)
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1 (LOW is below the webhook's default MEDIUM)", n)
	}
}

// TestSignatureShellRecipe checks the openssl recipe of README.md (Alerts, Signature)
// against a signature made by Sign.
func TestSignatureShellRecipe(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("VIGIL_REQUIRE_TOOLS") == "1" {
			t.Fatal("openssl not installed (VIGIL_REQUIRE_TOOLS=1)")
		}
		t.Skip("!!! openssl not installed, the documented signature recipe is NOT checked")
	}
	key, _ := ParseSecret(testSecret)
	body := []byte(`{"id":"abc","user":"<o'brien> & \"co\""}`)
	want := Sign(key, "abc", 1700000000, body)
	script := `secret_hex=$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
printf '%s.%s.%s' "$ID" "$TS" "$BODY" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$secret_hex" -binary | base64`
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{"SECRET=" + testSecret, "ID=abc", "TS=1700000000", "BODY=" + string(body), "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("recipe: %v\n%s", err, out)
	}
	if got := "v1," + strings.TrimSpace(string(out)); got != want {
		t.Fatalf("openssl recipe gives %q, Sign gives %q (key %s)", got, want, hex.EncodeToString(key))
	}
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "secret", "whsec_", "whsec_not*base64", "whsec_c2hvcnQ="} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
	if _, err := NewWebhook("ftp://x/y", testSecret); err == nil {
		t.Error("ftp URL accepted")
	}
}

// TestWebhookRetryKeepsID: a receiver failing twice gets the same
// webhook-id three times, each attempt freshly signed.
func TestWebhookRetryKeepsID(t *testing.T) {
	rc := newReceiver(t)
	rc.setRespond(func(n int, _ *http.Request, w http.ResponseWriter) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	c := newCounts()
	d := start(t, Options{Routes: []Route{{Sender: webhook(t, rc.url())}}, Hooks: c.hooks()})
	e := event(detect.IPBlocked, "", "198.51.100.1")
	d.Submit(e)
	poll.Until(t, 5*time.Second, "three attempts", func() (bool, string) {
		return c.get(c.sent, "webhook") == 1, ""
	})
	reqs := rc.requests()
	if len(reqs) != 3 || c.get(c.failed, "webhook") != 2 {
		t.Fatalf("want 3 attempts (2 failed), got %d requests, %d failures", len(reqs), c.get(c.failed, "webhook"))
	}
	for _, r := range reqs {
		independentVerify(t, testSecret, r)
		if r.Header.Get("webhook-id") != e.ID || string(r.Body) != string(reqs[0].Body) {
			t.Fatalf("retry changed the id or body: %s %s", r.Header.Get("webhook-id"), r.Body)
		}
	}
}
