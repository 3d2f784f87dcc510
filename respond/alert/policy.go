package alert

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Policy is how one channel filters, paces and retries its alerts. Zero
// fields take the defaults below.
type Policy struct {
	// MinSeverity is the lowest severity the channel receives; default by
	// kind (DefaultMinSeverity): the escalation policy.
	MinSeverity detect.Severity
	// Types, when set, limits the channel to these event types.
	Types []detect.Type
	// MaxAge is how long an alert is retried before it is given up.
	MaxAge time.Duration
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// Throttle is how many alerts of one event type and severity the
	// channel sends per ThrottleWindow; the rest of that type and severity
	// are counted into its own digest, sent when its window ends. Every
	// (type, severity) has its own window and digest, so a storm of
	// FAILED_LOGIN never delays or folds an ACCOUNT_LOCKED, nor LOW traffic
	// a MEDIUM alert. 0: the default of the kind (DefaultThrottleFor): off
	// for webhooks, which feed machines that want every alert, and
	// DefaultThrottle for the channels people read. Negative: no
	// throttling.
	Throttle int
	// ThrottleWindow is the length of a window; it opens with the first
	// alert of its type and severity after a quiet period. It also paces
	// the digest of duplicates when throttling is off.
	ThrottleWindow time.Duration
	// NeverThrottle: alerts of this severity or higher are never
	// throttled. 0: CRITICAL for PagerDuty (every CRITICAL opens or joins
	// an incident, which PagerDuty itself folds by dedup_key), none for the
	// other kinds.
	NeverThrottle detect.Severity
	// DedupWindow: an alert with the dedup key and severity of one sent
	// within this window is held back (and counted in the digest).
	// Negative: no deduplication.
	DedupWindow time.Duration
	// MaxQueue bounds the jobs waiting on the channel. When it is full, a
	// MEDIUM or higher alert takes the place of the oldest LOW job (counted
	// as dropped "queue_full"), so LOW traffic cannot lock it out.
	MaxQueue int
}

// Defaults.
const (
	DefaultMaxAge         = 24 * time.Hour
	DefaultTimeout        = 10 * time.Second
	DefaultThrottle       = 20
	DefaultThrottleWindow = time.Minute
	DefaultDedupWindow    = 10 * time.Minute
	DefaultMaxQueue       = 10000
)

// DefaultMinSeverity is the default escalation policy: MEDIUM and above
// reach chat and webhooks, HIGH and above also mail, CRITICAL also opens a
// PagerDuty incident. LOW events (single failed logins …) only go to the
// event log.
func DefaultMinSeverity(kind string) detect.Severity {
	switch kind {
	case "email":
		return detect.High
	case "pagerduty":
		return detect.Critical
	default:
		return detect.Medium
	}
}

// DefaultThrottleFor is the default throttle of a kind: off (-1) for
// webhooks, which feed SIEMs and SOARs that want every alert; DefaultThrottle
// per type and severity for Slack, email and PagerDuty, which people read.
func DefaultThrottleFor(kind string) int {
	if kind == "webhook" {
		return -1
	}
	return DefaultThrottle
}

// withDefaults fills zero fields.
func (p Policy) withDefaults(kind string) Policy {
	if p.MinSeverity == 0 {
		p.MinSeverity = DefaultMinSeverity(kind)
	}
	p.MaxAge = orDur(p.MaxAge, DefaultMaxAge)
	p.Timeout = orDur(p.Timeout, DefaultTimeout)
	p.ThrottleWindow = orDur(p.ThrottleWindow, DefaultThrottleWindow)
	p.DedupWindow = orDur(p.DedupWindow, DefaultDedupWindow)
	if p.Throttle == 0 {
		p.Throttle = DefaultThrottleFor(kind)
	}
	if p.NeverThrottle == 0 {
		p.NeverThrottle = detect.Critical + 1 // none
		if kind == "pagerduty" {
			p.NeverThrottle = detect.Critical
		}
	}
	if p.MaxQueue <= 0 {
		p.MaxQueue = DefaultMaxQueue
	}
	return p
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// limit is the throttle that applies to an alert of severity s (negative:
// none).
func (p Policy) limit(s detect.Severity) int {
	if s >= p.NeverThrottle {
		return -1
	}
	return p.Throttle
}

// isLow reports whether an alert is below MEDIUM: the traffic that must
// never take the place (a queue slot, the front of a queue) of a MEDIUM or
// higher one.
func isLow(s detect.Severity) bool { return s < detect.Medium }

// match reports whether the channel wants an alert.
func (p Policy) match(a Alert) bool {
	if a.Severity < p.MinSeverity {
		return false
	}
	return len(p.Types) == 0 || slices.Contains(p.Types, a.Type)
}

// StandardSchedule is the Standard Webhooks retry schedule: the delay
// before each attempt after the first (immediately, then 5s, 5m, 30m, 2h,
// 5h, 10h, 10h), continued at the last step until MaxAge.
var StandardSchedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// backoff is the delay after the given number of failed attempts, with
// ±20% jitter so that retries of a burst do not arrive together.
func backoff(schedule []time.Duration, failures int) time.Duration {
	if failures < 1 {
		failures = 1
	}
	d := schedule[min(failures, len(schedule)-1)]
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
