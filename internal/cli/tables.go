package cli

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// The tables of the admin API's decisions and events, which the
// investigation and why reports print too.

// decisionList is the answer of GET /vigil/decisions.
type decisionList struct {
	Decisions []respond.Decision `json:"decisions"`
}

// lifted is the answer of an unblock, unlock or unrevoke.
type lifted struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
}

// renderDecisionList prints GET /vigil/decisions.
func renderDecisionList(o Output, raw []byte) error {
	return asTable(o, raw, "the decisions", func(v decisionList) error { return writeDecisions(o, v.Decisions) })
}

// renderDecision prints the one decision a block, lock or revoke made.
func renderDecision(o Output, raw []byte) error {
	return asTable(o, raw, "the decision", func(d respond.Decision) error { return writeDecisions(o, []respond.Decision{d}) })
}

// renderLifted prints the answer of an unblock, unlock or unrevoke.
func renderLifted(o Output, raw []byte) error {
	return asTable(o, raw, "the answer", func(v lifted) error {
		_, err := fmt.Fprintf(o.W, "Lifted %s %s.\n", clean(v.Kind), clean(v.Target))
		return err
	})
}

// renderEventPage prints GET /vigil/events, with the cursor of the next
// page.
func renderEventPage(o Output, raw []byte) error {
	return asTable(o, raw, "the events", func(page respond.EventPage) error {
		if err := writeEvents(o, page.Events); err != nil {
			return err
		}
		if page.Next != "" {
			_, err := fmt.Fprintf(o.W, "More: add --cursor %s\n", clean(page.Next))
			return err
		}
		return nil
	})
}

// newTable starts a table on the output, its columns two spaces apart,
// with a header line unless header is empty (columns separated by tabs).
func newTable(o Output, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(o.W, 0, 0, 2, ' ', 0)
	if header != "" {
		fmt.Fprintln(tw, header)
	}
	return tw
}

// writeDecisions is the decisions table, by kind and target.
func writeDecisions(o Output, ds []respond.Decision) error {
	if len(ds) == 0 {
		_, err := fmt.Fprintln(o.W, "No active decisions.")
		return err
	}
	ds = append([]respond.Decision(nil), ds...)
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Kind != ds[j].Kind {
			return ds[i].Kind < ds[j].Kind
		}
		return ds[i].Target < ds[j].Target
	})
	tw := newTable(o, "KIND\tTARGET\tREASON\tSOURCE\tSTRIKE\tUNTIL\tREMAINING")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(string(d.Kind), 12), cell(d.Target, 45), cell(d.Reason, 40),
			cell(d.Source, 8), d.Strike, o.time(d.Until), humanDuration(d.Remaining(o.Now)))
	}
	return tw.Flush()
}

// writeEvents is the events table, in the order given.
func writeEvents(o Output, evs []detect.Event) error {
	if len(evs) == 0 {
		_, err := fmt.Fprintln(o.W, "No events.")
		return err
	}
	tw := newTable(o, "TIME\tTYPE\tSEVERITY\tSITE\tUSER\tIP\tDETAILS")
	for _, e := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.time(e.Time), cell(string(e.Type), 24), e.Severity,
			cell(e.Site, 24), cell(e.User, 24), cell(e.IP, 39), shortDetails(e.Details, 80))
	}
	return tw.Flush()
}
