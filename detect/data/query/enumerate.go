package query

import (
	"context"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// enumKind is the Distinct kind of the enumeration counts.
const enumKind = "enum"

// maxReported bounds the once-per-window memory of Enumerate; beyond it
// the expired entries go, then all (a flood of subjects may then be
// reported twice within a window, never missed).
const maxReported = 10_000

// Enumerate counts id among the distinct ids subject asked for under
// pattern enum (Match's answer) and reports the subject when the count
// reaches the pattern's Limit within its window: once per window per
// subject and pattern, so a long crawl is one finding a window, not one a
// request. While reported, a subject's ids are not counted at all (no
// store round trip for the rest of a crawl); once the window has passed
// the count starts over, so a crawl that goes on is reported again after
// Limit more ids. subject is the caller's hashed key of the verified user
// or, without one, of the client address. It goes to the store: call it
// off the request path. A store error counts as nothing seen (a
// FallbackDistinct never fails).
func (d *Detector) Enumerate(ctx context.Context, subject string, enum int, id string, now time.Time) (Finding, bool) {
	if enum < 0 || enum >= len(d.enums) {
		return Finding{}, false
	}
	e := d.opt.Enumerations[enum]
	key := enumKey(e, subject)
	if d.quiet(key, now) {
		return Finding{}, false
	}
	n, err := d.opt.Distinct.Add(ctx, Span{Kind: enumKind, Within: e.Within}, key, detect.HashID("enumid", id), now)
	if err != nil || n < int64(e.Limit) || !d.firstReport(key, now, e.Within) {
		return Finding{}, false
	}
	return Finding{Kind: "enumeration", Details: detect.Details{
		"kind": "enumeration", "distinct_ids": n, "limit": e.Limit,
		"window": e.Within.String(), "pattern": e.Pattern,
	}}, true
}

// Forget drops subject's enumeration counts of every pattern and the
// memory of having reported them (after a decision, or an operator's
// clearing), so the next finding is earned afresh.
func (d *Detector) Forget(ctx context.Context, subject string) error {
	var first error
	for _, e := range d.opt.Enumerations {
		key := enumKey(e, subject)
		if err := d.opt.Distinct.Forget(ctx, enumKind, key); err != nil && first == nil {
			first = err
		}
		d.mu.Lock()
		delete(d.reported, key)
		d.mu.Unlock()
	}
	return first
}

// enumKey is the store key of subject's ids under e. The pattern and
// window are part of it: a changed directive starts its own counts instead
// of inheriting another's bucket grid.
func enumKey(e Enumeration, subject string) string {
	return detect.HashID("enum", e.Pattern+"\x00"+strconv.FormatInt(int64(e.Within), 10)+"\x00"+subject)
}

// quiet reports whether key was reported less than a window ago.
func (d *Detector) quiet(key string, now time.Time) bool {
	d.mu.Lock()
	until, ok := d.reported[key]
	d.mu.Unlock()
	return ok && now.UnixMicro() < until
}

// firstReport reports whether key has not been reported within the
// window, and marks it reported until the window has passed.
func (d *Detector) firstReport(key string, now time.Time, within time.Duration) bool {
	t := now.UnixMicro()
	d.mu.Lock()
	defer d.mu.Unlock()
	if until, ok := d.reported[key]; ok && t < until {
		return false
	}
	if len(d.reported) >= maxReported {
		for k, until := range d.reported {
			if until <= t {
				delete(d.reported, k)
			}
		}
		if len(d.reported) >= maxReported {
			clear(d.reported)
		}
	}
	d.reported[key] = t + within.Microseconds()
	return true
}
