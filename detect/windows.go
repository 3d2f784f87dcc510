package detect

import (
	"context"
	"time"
)

// WindowKind separates the families of distinct-member windows, like
// CounterKind does for the login counters.
type WindowKind string

const (
	// ProbePaths holds, per client IP, the distinct paths that got a 4xx
	// answer: many of them in a short window is a directory scan.
	ProbePaths WindowKind = "probe"
	// UserViolations and IPViolations hold the permission violations of a
	// verified user and of an address (one unique member per violation).
	UserViolations WindowKind = "violu"
	IPViolations   WindowKind = "violip"
)

// WindowCounter counts the distinct members seen under a key inside a
// sliding window: adding a member that is already there refreshes its time
// instead of counting it twice. Keys and members are HashID output, so no
// client input reaches a store key or value. The memory and Redis
// implementations agree: a member counts while now-window < last seen <= now,
// and a key holds at most MaxWindowEntries members (the oldest go first).
type WindowCounter interface {
	// Add records member under key at now and returns how many distinct
	// members the key holds inside window, this one included.
	Add(ctx context.Context, kind WindowKind, key, member string, window time.Duration, now time.Time) (int, error)
	// Forget drops a key, so that after a decision the next one has to be
	// earned afresh.
	Forget(ctx context.Context, kind WindowKind, key string) error
}
