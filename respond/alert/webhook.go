package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts a Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// ParseSecret decodes a "whsec_<base64>" secret into the HMAC key. The key
// must be at least 16 bytes (the standard recommends 24 to 64).
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: the part after whsec_ is not base64: %w", err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("webhook secret: %d bytes is too short (want at least 16, 32 recommended)", len(key))
	}
	return key, nil
}

// Sign returns the Standard Webhooks signature header value for one
// attempt: "v1," + base64(HMAC-SHA256(key, id.timestamp.body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's webhook-signature header (which may list
// several space-separated signatures, during key rotation) in constant time
// over its webhook-id, webhook-timestamp and body, and that the timestamp
// is within tolerance of now. Receivers written in Go may use it; the docs
// show the same check in shell.
func Verify(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, timestamp, signatures := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not a Unix time", timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp is %s away from now (tolerance %s)", d.Round(time.Second), tolerance)
	}
	want := Sign(key, id, ts, body)
	for _, sig := range strings.Fields(signatures) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching v1 signature")
}

// Webhook posts the alert's JSON body, signed per Standard Webhooks.
type Webhook struct {
	URL string
	key []byte
	now func() time.Time
}

// NewWebhook checks the URL and the whsec_ secret.
func NewWebhook(url, secret string) (*Webhook, error) {
	if err := checkURL(url); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	return &Webhook{URL: url, key: key, now: time.Now}, nil
}

// Kind implements Sender.
func (w *Webhook) Kind() string { return "webhook" }

// Identity implements Sender.
func (w *Webhook) Identity() string { return w.URL }

// Send implements Sender. The webhook-id is the message ID (the same on
// every retry); the timestamp is the attempt's, so a receiver's replay
// window measures the attempt, not the event.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	body := m.Alert.Body()
	ts := w.now().Unix()
	h := http.Header{}
	h.Set("webhook-id", m.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(w.key, m.ID, ts, body))
	return postJSON(ctx, w.URL, body, h)
}

// Label implements Sender.
func (w *Webhook) Label() string { return "webhook " + redactURL(w.URL) }
