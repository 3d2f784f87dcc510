package cli

import (
	"bytes"
	"fmt"
	"strings"
)

// writeWhy prints the report for a person.
func writeWhy(o Output, rep whyReport) error {
	subject := clean(rep.Subject)
	if len(rep.Decisions) == 0 {
		_, err := fmt.Fprintf(o.W, "No active decision on %s.\n", subject)
		return err
	}
	noun := "decisions"
	if len(rep.Decisions) == 1 {
		noun = "decision"
	}
	fmt.Fprintf(o.W, "%s: %d active %s.\n", subject, len(rep.Decisions), noun)
	for _, d := range rep.Decisions {
		if err := writeWhyDecision(o, rep, d); err != nil {
			return err
		}
	}
	return nil
}

// writeWhyDecision prints one decision: what it is, what made it, and the
// events before it as an indented table.
func writeWhyDecision(o Output, rep whyReport, d whyDecision) error {
	fmt.Fprintf(o.W, "\n%s %s", strings.ToUpper(string(d.Kind)), clean(d.Target))
	if rep.As == "ip" && d.Target != rep.Subject {
		fmt.Fprintf(o.W, " (covers %s)", clean(rep.Subject))
	}
	fmt.Fprintln(o.W)
	source := clean(d.Source)
	if d.Site != "" {
		source += ", site " + clean(d.Site)
	}
	fmt.Fprintf(o.W, "  reason   %s\n  source   %s\n  strike   %d\n", cell(d.Reason, 200), source, d.Strike)
	fmt.Fprintf(o.W, "  since    %s\n  until    %s (%s left)\n", o.time(d.Created), o.time(d.Until), d.Remaining)
	if t := d.Trigger; t != nil {
		fmt.Fprintf(o.W, "  made by  %s %s %s %s\n", o.time(t.Time), t.Type, t.Severity, shortDetails(t.Details, 120))
	}
	if rep.As == "range" {
		_, err := fmt.Fprintln(o.W, "  events   (kept by address: ask about one address of the range)")
		return err
	}
	more := ""
	if d.Truncated {
		more = ", the newest shown"
	}
	if len(d.Events) == 0 {
		_, err := fmt.Fprintf(o.W, "  events   none in the %s before it\n", d.Window)
		return err
	}
	fmt.Fprintf(o.W, "  events   %d in the %s before it%s:\n", len(d.Events), d.Window, more)
	var table bytes.Buffer
	if err := writeEvents(Output{W: &table, Loc: o.Loc, Now: o.Now}, d.Events); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(strings.TrimSuffix(table.String(), "\n"), "\n") {
		fmt.Fprintf(o.W, "    %s", line)
	}
	_, err := fmt.Fprintln(o.W)
	return err
}
