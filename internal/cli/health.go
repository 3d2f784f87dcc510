package cli

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/respond"
)

// ErrStoreDown makes `caddy vigil status` exit non-zero when the store does
// not answer, so scripts and probes can use it.
var ErrStoreDown = errors.New("vigil store not reachable")

// Status is `caddy vigil status`: it prints GET /vigil/health, the 503 of
// a store that does not answer included, and then returns ErrStoreDown.
func (e Env) Status() error {
	const uri = "/vigil/health"
	status, raw, err := e.Admin.Fetch(http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusServiceUnavailable {
		return answerError(http.MethodGet, uri, status, raw)
	}
	if err := RenderHealth(e.Out.stamped(), raw); err != nil {
		return err
	}
	if status != http.StatusOK {
		return ErrStoreDown
	}
	return nil
}

// RenderHealth prints GET /vigil/health.
func RenderHealth(o Output, raw []byte) error {
	return asTable(o, raw, "the health report", func(rep respond.HealthReport) error { return writeHealth(o, rep) })
}

// writeHealth is the health report as a list of labelled lines.
func writeHealth(o Output, rep respond.HealthReport) error {
	s := rep.Store
	tw := newTable(o, "")
	fmt.Fprintf(tw, "status\t%s: %s\n", clean(rep.Status), clean(rep.Message))
	fmt.Fprintf(tw, "store\t%s\n", strings.TrimSpace(clean(s.Type)+" "+clean(s.Address)))
	reach := fmt.Sprintf("yes (%.1f ms)", s.LatencyMS)
	if !s.Reachable {
		reach = "no: " + clean(s.Error)
	}
	fmt.Fprintf(tw, "reachable\t%s\n", reach)
	fallback := "no"
	switch {
	case s.FallbackActive && s.DownSince != nil:
		fallback = fmt.Sprintf("active since %s (%s)", o.time(*s.DownSince), humanDuration(o.Now.Sub(*s.DownSince)))
	case s.FallbackActive:
		fallback = "active"
	}
	fmt.Fprintf(tw, "local fallback\t%s\n", fallback)
	fmt.Fprintf(tw, "fail_mode\t%s\n", clean(s.FailMode))
	if s.LastResync != nil {
		fmt.Fprintf(tw, "last resync\t%s (%s ago)\n", o.time(*s.LastResync), humanDuration(o.Now.Sub(*s.LastResync)))
	}
	fmt.Fprintf(tw, "queued events\t%d for the store, %d for the log\n", rep.Queues.Events, rep.Queues.Log)
	fmt.Fprintf(tw, "queued alerts\t%s\n", alertCounts(rep.Queues.Alerts))
	return tw.Flush()
}

// alertCounts prints the outbox depths by channel type, sorted.
func alertCounts(m map[string]int) string {
	if len(m) == 0 {
		return "no alert channels"
	}
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", clean(k), m[k])
	}
	return strings.Join(parts, ", ")
}
