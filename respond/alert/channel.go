package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Sender delivers one message to one destination. Send must honour ctx (the
// per-attempt timeout) and classify failures with *DeliveryError so the
// dispatcher knows whether to retry.
type Sender interface {
	// Kind is the channel type: webhook, slack, email or pagerduty. It is the
	// metrics label, so it never holds a URL or an address.
	Kind() string
	// Identity is what makes two senders the same destination (URL, routing
	// key, recipients). Only its hash is stored, in outbox keys.
	Identity() string
	// Label names the destination in logs without its secrets (scheme and
	// host of a URL; Slack and webhook paths often carry a token).
	Label() string
	Send(ctx context.Context, m Message) error
}

// Message is one delivery attempt of an alert on a channel. ID is stable
// across attempts (webhook-id, Message-ID), so receivers can deduplicate.
type Message struct {
	ID      string
	Alert   Alert
	Attempt int // 1 for the first try
}

// DeliveryError says why an attempt failed and what to do about it.
type DeliveryError struct {
	Status     int           // HTTP status, when there was a response
	RetryAfter time.Duration // from a Retry-After header
	Permanent  bool          // do not retry (a 4xx other than 408/429, a bad address)
	Gone       bool          // the endpoint said 410 Gone: disable it
	Err        error
}

func (e *DeliveryError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("status %d: %v", e.Status, e.Err)
	}
	return e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// classify turns any send error into a DeliveryError; plain errors
// (network, timeouts) are temporary.
func classify(err error) *DeliveryError {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de
	}
	return &DeliveryError{Err: err}
}

// channelID is the short, hashed name of a destination used in outbox keys:
// no URL, secret or address ever becomes part of a Redis key.
func channelID(s Sender) string {
	sum := sha256.Sum256([]byte(s.Kind() + "\x00" + s.Identity()))
	return s.Kind() + "-" + hex.EncodeToString(sum[:8])
}

// redactURL keeps the scheme and host of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}
