package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// How `caddy vigil` prints: tables for a person at a terminal, the admin
// API's JSON for everything else (a pipe, a script, --json), so scripts
// written against the JSON keep working.
//
// Every string from the API is cleaned before it reaches a terminal:
// usernames, paths and User-Agents in events come from clients, and an
// escape sequence in one must not drive the operator's terminal.

// renderFunc prints one admin API answer.
type renderFunc func(o output, raw []byte) error

// output is where and how a command prints.
type output struct {
	w     io.Writer
	table bool // false: the API's JSON, indented
	now   time.Time
	loc   *time.Location
}

// outputOf is the output of a command: a table on a terminal unless --json.
func outputOf(c *cobra.Command) output {
	asJSON, _ := c.Flags().GetBool("json")
	w := c.OutOrStdout()
	return output{w: w, table: !asJSON && isTerminal(w), now: time.Now(), loc: time.Local}
}

// isTerminal reports whether w is a terminal (a variable, for tests).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// renderJSON prints the answer's JSON, indented.
func renderJSON(o output, raw []byte) error {
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(raw)
	}
	_, err := o.w.Write(pretty.Bytes())
	return err
}

// renderAuto prints an answer by its shape: the decisions list, an events
// page, a lift, a decision; anything else as JSON. The shapes are the
// admin API's, so a new subcommand gets its table without a renderer.
func renderAuto(o output, raw []byte) error {
	var keys map[string]json.RawMessage
	if !o.table || json.Unmarshal(raw, &keys) != nil {
		return renderJSON(o, raw)
	}
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := keys[n]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("decisions"):
		return renderDecisionList(o, raw)
	case has("events"):
		return renderEventPage(o, raw)
	case has("lifted", "kind", "target"):
		return renderLifted(o, raw)
	case has("kind", "target", "until"):
		return renderDecision(o, raw)
	}
	return renderJSON(o, raw)
}

// renderDecisionList prints GET /vigil/decisions.
func renderDecisionList(o output, raw []byte) error {
	if !o.table {
		return renderJSON(o, raw)
	}
	var v struct {
		Decisions []respond.Decision `json:"decisions"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("reading the decisions: %w", err)
	}
	return writeDecisions(o, v.Decisions)
}

// renderDecision prints the one decision a block, lock or revoke made.
func renderDecision(o output, raw []byte) error {
	if !o.table {
		return renderJSON(o, raw)
	}
	var d respond.Decision
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("reading the decision: %w", err)
	}
	return writeDecisions(o, []respond.Decision{d})
}

// renderLifted prints the answer of an unblock, unlock or unrevoke.
func renderLifted(o output, raw []byte) error {
	if !o.table {
		return renderJSON(o, raw)
	}
	var v struct {
		Kind   string `json:"kind"`
		Target string `json:"target"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	_, err := fmt.Fprintf(o.w, "Lifted %s %s.\n", clean(v.Kind), clean(v.Target))
	return err
}

// renderEventPage prints GET /vigil/events, with the cursor of the next
// page.
func renderEventPage(o output, raw []byte) error {
	if !o.table {
		return renderJSON(o, raw)
	}
	var page respond.EventPage
	if err := json.Unmarshal(raw, &page); err != nil {
		return fmt.Errorf("reading the events: %w", err)
	}
	if err := writeEvents(o, page.Events); err != nil {
		return err
	}
	if page.Next != "" {
		_, err := fmt.Fprintf(o.w, "More: add --cursor %s\n", clean(page.Next))
		return err
	}
	return nil
}

// renderHealth prints GET /vigil/health.
func renderHealth(o output, raw []byte) error {
	if !o.table {
		return renderJSON(o, raw)
	}
	var rep healthReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("reading the health report: %w", err)
	}
	return writeHealth(o, rep)
}

// writeDecisions is the decisions table, by kind and target.
func writeDecisions(o output, ds []respond.Decision) error {
	if len(ds) == 0 {
		_, err := fmt.Fprintln(o.w, "No active decisions.")
		return err
	}
	ds = append([]respond.Decision(nil), ds...)
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Kind != ds[j].Kind {
			return ds[i].Kind < ds[j].Kind
		}
		return ds[i].Target < ds[j].Target
	})
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tTARGET\tREASON\tSOURCE\tSTRIKE\tUNTIL\tREMAINING")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(string(d.Kind), 12), cell(d.Target, 45), cell(d.Reason, 40),
			cell(d.Source, 8), d.Strike, o.time(d.Until), humanDuration(d.Remaining(o.now)))
	}
	return tw.Flush()
}

// writeEvents is the events table, in the order given.
func writeEvents(o output, evs []detect.Event) error {
	if len(evs) == 0 {
		_, err := fmt.Fprintln(o.w, "No events.")
		return err
	}
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tSEVERITY\tSITE\tUSER\tIP\tDETAILS")
	for _, e := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.time(e.Time), cell(string(e.Type), 24), e.Severity,
			cell(e.Site, 24), cell(e.User, 24), cell(e.IP, 39), shortDetails(e.Details, 80))
	}
	return tw.Flush()
}

// writeHealth is the health report as a list of labelled lines.
func writeHealth(o output, rep healthReport) error {
	s := rep.Store
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
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
		fallback = fmt.Sprintf("active since %s (%s)", o.time(*s.DownSince), humanDuration(o.now.Sub(*s.DownSince)))
	case s.FallbackActive:
		fallback = "active"
	}
	fmt.Fprintf(tw, "local fallback\t%s\n", fallback)
	fmt.Fprintf(tw, "fail_mode\t%s\n", clean(s.FailMode))
	if s.LastResync != nil {
		fmt.Fprintf(tw, "last resync\t%s (%s ago)\n", o.time(*s.LastResync), humanDuration(o.now.Sub(*s.LastResync)))
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

// time prints a time in the output's zone, to the second.
func (o output) time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(o.loc).Format("2006-01-02 15:04:05")
}

// humanDuration prints how long something lasts, to the second, in days
// and hours beyond two days.
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d >= 48*time.Hour:
		days, hours := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
		return fmt.Sprintf("%dd%dh", days, hours)
	}
	return shortDuration(d.Round(time.Second))
}

// leadingDetails come first in a short rendering of details, in this
// order: what explains a decision, before the request's particulars.
var leadingDetails = []string{"action", "target", "reason", "threshold", "window", "account_failures", "ip_failures", "accounts_from_ip", "strike", "duration"}

// shortDetails is an event's details as key=value pairs, the leading ones
// first and the rest sorted, cut at limit runes.
func shortDetails(d detect.Details, limit int) string {
	if len(d) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(d))
	for _, k := range leadingDetails {
		if _, ok := d[k]; ok {
			keys = append(keys, k)
		}
	}
	rest := make([]string, 0, len(d))
	for k := range d {
		if !slices.Contains(leadingDetails, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	keys = append(keys, rest...)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch v := d[k].(type) {
		case string:
			b.WriteString(v)
		case float64, bool, int, int64:
			fmt.Fprint(&b, v)
		default:
			raw, _ := json.Marshal(v)
			b.Write(raw)
		}
	}
	return cell(b.String(), limit)
}

// cell is a table cell: cleaned, cut at limit runes, "-" when empty.
func cell(s string, limit int) string {
	s = clean(s)
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// clean escapes what a terminal would act on (control characters, escape
// sequences, bidirectional overrides) and tabs, which would break a table.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || (r != ' ' && !unicode.IsPrint(r)) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r != utf8.RuneError && (r == ' ' || unicode.IsPrint(r)) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToASCII(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}
