// Package alert delivers Vigil's security events to people: signed
// webhooks, Slack, email and PagerDuty incidents. Every alert passes through
// a durable outbox (Redis or memory) and is retried on the Standard Webhooks
// schedule, deduplicated, and throttled per channel, event type and
// severity, so a receiver that is down loses nothing, a storm of events
// becomes a bounded number of messages plus digests, and the storm never
// folds or delays an alert of another type or a higher severity.
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/vigilsec/vigil/detect"
)

// DigestType is the type of the alert that summarises what throttling and
// deduplication held back on one channel for one event type and severity
// during one window, with the ids of those events. It is not an event
// type: only alert receivers see it.
const DigestType detect.Type = "ALERT_DIGEST"

// Alert is what every channel renders: the event, plus the key receivers
// group repeats by. Its JSON form is the webhook body: the event's fields,
// then dedup_key.
type Alert struct {
	detect.Event
	DedupKey string `json:"dedup_key"`
	// Truncated is set when fields or details were shortened to keep the
	// body within MaxBody.
	Truncated bool `json:"truncated,omitempty"`
}

// FromEvent makes the alert for a security event. The alert ID is the event
// ID, so a receiver can look the event up in Vigil's event log.
func FromEvent(e detect.Event) Alert {
	return Alert{Event: e, DedupKey: DedupKey(e)}
}

// DedupKey identifies "the same thing happening again": one type of event
// about one account from one address on one site. It is a hash, so it is
// safe as a Redis key part and as PagerDuty's dedup_key (≤ 255 chars) and
// never carries the raw username.
func DedupKey(e detect.Event) string {
	h := sha256.New()
	for _, part := range []string{string(e.Type), e.Site, detect.NormalizeUser(e.User), e.IP} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "vigil-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Summary is a one-line description for subjects, Slack fallbacks and
// PagerDuty summaries. It contains untrusted text (the user); each channel
// escapes it for its own medium.
func (a Alert) Summary() string {
	var b strings.Builder
	b.WriteString(a.Severity.String())
	b.WriteByte(' ')
	b.WriteString(string(a.Type))
	if a.Type == DigestType {
		if n, ok := a.Details["suppressed"]; ok {
			b.WriteString(": ")
			b.WriteString(toString(n))
			b.WriteString(" more alerts held back")
		}
		return b.String()
	}
	if a.User != "" {
		b.WriteString(" user ")
		b.WriteString(a.User)
	}
	if a.IP != "" {
		b.WriteString(" from ")
		b.WriteString(a.IP)
	}
	if a.Site != "" {
		b.WriteString(" on ")
		b.WriteString(a.Site)
	}
	return b.String()
}
