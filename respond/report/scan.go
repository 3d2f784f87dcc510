package report

import (
	"context"
	"fmt"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// scan pages through the period's events, newest first, and hands each to
// fn. It stops at the last page, after MaxEvents events (Truncated), or
// after a bounded number of pages (a Redis page may come back short or
// empty when its scan budget ran out, so pages are bounded separately);
// a cursor that does not move is an error rather than a loop.
func scan(ctx context.Context, in Input, fn func(detect.Event)) (Coverage, error) {
	maxEvents := in.MaxEvents
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	cov := Coverage{MaxEvents: maxEvents}
	maxPages := maxEvents/PageSize + 1000
	f := respond.EventFilter{Since: in.From, Until: in.To, Limit: PageSize}
	for {
		if err := ctx.Err(); err != nil {
			return cov, fmt.Errorf("report: reading events: %w", err)
		}
		if cov.Pages == maxPages {
			cov.Truncated = true
			return cov, nil
		}
		page, err := in.Events.Query(ctx, f)
		if err != nil {
			return cov, fmt.Errorf("report: reading events (page %d): %w", cov.Pages+1, err)
		}
		cov.Pages++
		for _, e := range page.Events {
			if e.Time.Before(in.From) || !e.Time.Before(in.To) {
				continue // a source that filters loosely
			}
			if cov.Events == maxEvents {
				cov.Truncated = true
				return cov, nil
			}
			cov.Events++
			if cov.Newest.IsZero() || e.Time.After(cov.Newest) {
				cov.Newest = e.Time.UTC()
			}
			if cov.Oldest.IsZero() || e.Time.Before(cov.Oldest) {
				cov.Oldest = e.Time.UTC()
			}
			fn(e)
		}
		if page.Next == "" {
			return cov, nil
		}
		if page.Next == f.Cursor {
			return cov, fmt.Errorf("report: the event log returned the same cursor %q twice", page.Next)
		}
		f.Cursor = page.Next
	}
}
