// Package poll waits in tests for something that happens asynchronously
// (a pub/sub message, a background write, a delivery), with a deadline
// instead of a fixed sleep.
package poll

import (
	"testing"
	"time"
)

// Until calls cond every few milliseconds until it reports true, and fails
// the test when within has passed; the test's message names what was awaited
// and the last state cond described.
func Until(tb testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not true within %s; last: %s", what, within, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// True is Until for a condition without a state to report.
func True(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	Until(tb, within, what, func() (bool, string) { return cond(), "false" })
}
