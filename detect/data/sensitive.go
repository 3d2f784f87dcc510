package data

import (
	"context"
	"encoding/json"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// sensitiveKind keeps, per subject and sensitive route, how often and at
// which hours they accessed it and how much they usually take.
const sensitiveKind detect.ProfileKind = "sensitive"

// sensitiveTTL forgets a subject's habits on a route after a quiet year.
const sensitiveTTL = 365 * 24 * time.Hour

// Habits below these counts are not judged yet.
const (
	learnHours  = 10 // accesses before an hour never used is unusual
	learnVolume = 5  // accesses before a large answer is unusual
	volumeAbove = 10 // times the usual answer, and …
	volumeFloor = 64 << 10
)

// habit is the stored record.
type habit struct {
	N     int64   `json:"n"`
	Hours uint32  `json:"h"` // bit i: accessed in hour i (UTC)
	Mean  float64 `json:"m"` // EWMA of the answer's bytes
}

// accountSensitive records a SENSITIVE_DATA_ACCESS: LOW, raised to MEDIUM
// by one reason and HIGH by two (a first access, an hour outside the
// configured ones or the subject's usual ones, an answer far above their
// usual size).
func (d *Detector) accountSensitive(ctx context.Context, t *tap, fig figures) {
	hour := t.start.UTC().Hour()
	var before habit
	key := detect.HashID("sensitive", t.subj+"\x00"+t.route)
	_, err := d.opt.Profiles.Update(ctx, sensitiveKind, key, sensitiveTTL, func(cur []byte) []byte {
		var h habit
		if len(cur) > 0 && json.Unmarshal(cur, &h) != nil {
			h = habit{} // a corrupt record starts again
		}
		before = h
		h.Hours |= 1 << hour
		if h.N == 0 {
			h.Mean = float64(fig.bytes)
		} else {
			h.Mean += 0.1 * (float64(fig.bytes) - h.Mean)
		}
		h.N++
		out, _ := json.Marshal(h)
		return out
	})
	if err != nil {
		d.opt.Logger.Debug("sensitive access habits", "error", err)
	}
	var reasons []string
	if err == nil && before.N == 0 {
		reasons = append(reasons, "first_access")
	}
	switch {
	case t.s.From != t.s.To && !inHours(hour, t.s.From, t.s.To):
		reasons = append(reasons, "off_hours")
	case t.s.From == t.s.To && before.N >= learnHours && before.Hours&(1<<hour) == 0:
		reasons = append(reasons, "unusual_hour")
	}
	if before.N >= learnVolume && float64(fig.bytes) > volumeAbove*before.Mean && fig.bytes > volumeFloor {
		reasons = append(reasons, "volume")
	}
	sev := detect.Low + detect.Severity(min(len(reasons), 2))
	details := detect.Details{"route": t.route, "bytes": fig.bytes, "status": t.status, "hour_utc": hour, "accesses": before.N + 1}
	if len(reasons) > 0 {
		details["reasons"] = reasons
	}
	if t.s.From != t.s.To {
		details["hours"] = hoursString(t.s.From, t.s.To)
	}
	d.act(detect.Finding{Type: detect.SensitiveDataAccess, Severity: sev, Time: t.start, Facts: t.facts, Details: details})
}

// inHours reports whether hour is in [from, to), wrapping past midnight
// when from > to (22-06).
func inHours(hour, from, to int) bool {
	if from < to {
		return hour >= from && hour < to
	}
	return hour >= from || hour < to
}

func hoursString(from, to int) string {
	two := func(h int) string { return string([]byte{byte('0' + h/10), byte('0' + h%10)}) }
	return two(from) + "-" + two(to)
}
