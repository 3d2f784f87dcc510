package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// `caddy vigil why <ip|user>`: every active decision on a subject and the
// events that led to it, from the admin API's decisions and events. An
// address is covered by a block of itself or of any range holding it (an
// IPv6 client is blocked by its /64); a user by a lock or a revocation of
// the account. The causes are the subject's events of the types that make
// such a decision, inside the window of the rule that made it (read from
// the event that announced the decision).

// whyReport is what `why` prints (as JSON with --json).
type whyReport struct {
	Subject   string        `json:"subject"`
	As        string        `json:"as"` // "ip", "range" or "user"
	Decisions []whyDecision `json:"decisions"`
}

// whyDecision is one decision and its causes.
type whyDecision struct {
	respond.Decision
	Remaining string `json:"remaining"`
	// Trigger announced the decision: IP_BLOCKED, ACCOUNT_LOCKED,
	// SYSTEM_INTRUSION or SESSION_REVOKED, or the ADMIN_ACTION of a
	// manual one.
	Trigger *detect.Event `json:"trigger,omitempty"`
	// Window is how far before the decision its causes were looked for.
	Window string `json:"window"`
	// Events are the subject's events in that window, oldest first.
	Events    []detect.Event `json:"events"`
	Truncated bool           `json:"truncated,omitempty"` // older events were left out
}

// whySubject is an address, a range or a user.
type whySubject struct {
	raw    string
	addr   netip.Addr
	prefix netip.Prefix
	user   string
}

func parseWhySubject(s string, asUser bool) whySubject {
	s = strings.TrimSpace(s)
	if !asUser {
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap().WithZone("")
			return whySubject{raw: a.String(), addr: a}
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			p = p.Masked()
			return whySubject{raw: p.String(), prefix: p}
		}
	}
	return whySubject{raw: s, user: s}
}

func (s whySubject) as() string {
	switch {
	case s.addr.IsValid():
		return "ip"
	case s.prefix.IsValid():
		return "range"
	}
	return "user"
}

// covers reports whether d applies to the subject.
func (s whySubject) covers(d respond.Decision) bool {
	switch d.Kind {
	case respond.Block:
		p, ok := blockPrefix(d.Target)
		switch {
		case !ok:
			return false
		case s.addr.IsValid():
			return p.Contains(s.addr)
		case s.prefix.IsValid():
			return p.Overlaps(s.prefix)
		}
	case respond.Lock, respond.RevokeUser:
		return s.user != "" && detect.AccountKey(d.Target) == detect.AccountKey(s.user)
	}
	return false
}

// blockPrefix reads a block's target, an address or a range.
func blockPrefix(target string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(target); err == nil {
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(target)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// Event types that announce a decision of a kind, and those that lead to it.
var (
	triggerTypes = map[respond.Kind][]detect.Type{
		respond.Block:      {detect.IPBlocked, detect.SystemIntrusion},
		respond.Lock:       {detect.AccountLocked},
		respond.RevokeUser: {detect.SessionRevoked},
	}
	causeTypes = map[respond.Kind][]detect.Type{
		respond.Block: {detect.FailedLogin, detect.CredentialStuffing, detect.IPBlocked, detect.SystemIntrusion, detect.PermissionViolation},
		respond.Lock:  {detect.FailedLogin, detect.AccountLocked},
		respond.RevokeUser: {detect.SessionRevoked, detect.AccountLocked, detect.PermissionViolation, detect.SystemIntrusion,
			detect.CredentialStuffing, detect.UnusualLocation, detect.ImpossibleTravel, detect.DataAccessAnomaly, detect.BulkExport},
	}
)

// defaultWhyWindow is how far back causes are looked for when the decision
// names no window of its own (a probe or honeypot block, a manual one).
const defaultWhyWindow = time.Hour

func whyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "why <ip|cidr|user>", Short: "Explains the active decisions on an address or user and the events behind them",
		Args: cobra.ExactArgs(1), RunE: runWhy}
	cmd.Flags().Duration("window", 0, "How far before a decision to look for its causes (default: the window of the rule that made it, else 1h)")
	cmd.Flags().Int("limit", 50, "The most events shown per decision (the newest)")
	cmd.Flags().Bool("user", false, "Read the subject as a username even if it looks like an address")
	return cmd
}

func runWhy(c *cobra.Command, args []string) error {
	asUser, _ := c.Flags().GetBool("user")
	subj := parseWhySubject(args[0], asUser)
	var list struct {
		Decisions []respond.Decision `json:"decisions"`
	}
	if err := getJSON(c, "/vigil/decisions", &list); err != nil {
		return err
	}
	o := outputOf(c)
	rep := whyReport{Subject: subj.raw, As: subj.as(), Decisions: []whyDecision{}}
	for _, d := range list.Decisions {
		if !subj.covers(d) {
			continue
		}
		wd, err := explain(c, subj, d, o.now)
		if err != nil {
			return err
		}
		rep.Decisions = append(rep.Decisions, wd)
	}
	slices.SortFunc(rep.Decisions, func(a, b whyDecision) int { return a.Created.Compare(b.Created) })
	if asJSON, _ := c.Flags().GetBool("json"); asJSON {
		raw, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("encoding the report: %w", err)
		}
		return renderJSON(o, append(raw, '\n'))
	}
	// a readable text even through a pipe: this command is for people
	return writeWhy(o, rep)
}

// explain finds the event that announced d and the subject's events in
// the window before it.
func explain(c *cobra.Command, subj whySubject, d respond.Decision, now time.Time) (whyDecision, error) {
	wd := whyDecision{Decision: d, Remaining: humanDuration(d.Remaining(now)), Events: []detect.Event{}}
	trigger, err := findTrigger(c, subj, d)
	if err != nil {
		return wd, err
	}
	wd.Trigger = trigger
	window := defaultWhyWindow
	if trigger != nil {
		if s, ok := trigger.Details["window"].(string); ok {
			if w, err := time.ParseDuration(s); err == nil && w > 0 {
				window = w
			}
		}
	}
	if w, _ := c.Flags().GetDuration("window"); w > 0 {
		window = w
	}
	wd.Window = shortDuration(window)
	q := subj.filter()
	if q == nil {
		return wd, nil // a range: events are kept by address, not by range
	}
	q.Set("type", joinTypes(causeTypes[d.Kind]))
	q.Set("since", d.Created.Add(-window-time.Second).Format(time.RFC3339Nano))
	q.Set("until", d.Created.Add(time.Second).Format(time.RFC3339Nano))
	q.Set("limit", "1000")
	page, err := queryEvents(c, q)
	if err != nil {
		return wd, err
	}
	limit, _ := c.Flags().GetInt("limit")
	evs := page.Events // newest first
	if limit > 0 && len(evs) > limit {
		evs, wd.Truncated = evs[:limit], true
	}
	wd.Truncated = wd.Truncated || page.Next != ""
	slices.Reverse(evs)
	wd.Events = append(wd.Events, evs...)
	return wd, nil
}

// findTrigger is the event that announced d, or nil: for a manual
// decision the operator's ADMIN_ACTION, else the subject's event of a
// trigger type closest to the decision's start.
func findTrigger(c *cobra.Command, subj whySubject, d respond.Decision) (*detect.Event, error) {
	q, types := subj.filter(), triggerTypes[d.Kind]
	if q == nil || d.Source == "admin" {
		q = url.Values{}
	}
	if d.Source == "admin" {
		types = []detect.Type{detect.AdminAction}
	}
	if len(types) == 0 {
		return nil, nil
	}
	q.Set("type", joinTypes(types))
	q.Set("since", d.Created.Add(-time.Minute).Format(time.RFC3339Nano))
	q.Set("until", d.Created.Add(time.Minute).Format(time.RFC3339Nano))
	q.Set("limit", "1000")
	page, err := queryEvents(c, q)
	if err != nil {
		return nil, err
	}
	var best *detect.Event
	for i, e := range page.Events {
		if (d.Source == "admin" && !adminActionOn(e, d)) || (d.Source != "admin" && !eventAbout(e, d)) {
			continue
		}
		if best == nil || absDuration(e.Time.Sub(d.Created)) < absDuration(best.Time.Sub(d.Created)) {
			best = &page.Events[i]
		}
	}
	return best, nil
}

// adminActionOn reports whether e is the operator's action that made d.
func adminActionOn(e detect.Event, d respond.Decision) bool {
	target, _ := e.Details["target"].(string)
	action, _ := e.Details["action"].(string)
	return sameTarget(d.Kind, target, d.Target) && (action == string(d.Kind) || (action == "revoke" && d.Kind == respond.RevokeUser))
}

// eventAbout reports whether e is about d's target: an address inside a
// block, the account of a lock or revocation. It keeps a range's trigger
// search, which cannot filter by address, from another address's event.
func eventAbout(e detect.Event, d respond.Decision) bool {
	switch d.Kind {
	case respond.Block:
		p, ok := blockPrefix(d.Target)
		a, err := netip.ParseAddr(e.IP)
		return ok && err == nil && p.Contains(a.Unmap())
	case respond.Lock, respond.RevokeUser:
		return sameTarget(d.Kind, e.User, d.Target)
	}
	return true
}

// sameTarget compares targets as the store does: accounts by their
// canonical name (the event keeps what the operator typed, the decision the
// canonical form), addresses and ranges by their normal form.
func sameTarget(kind respond.Kind, a, b string) bool {
	switch kind {
	case respond.Lock, respond.RevokeUser:
		return detect.AccountKey(a) == detect.AccountKey(b)
	case respond.Block:
		na, errA := respond.NormalizeBlockTarget(a)
		nb, errB := respond.NormalizeBlockTarget(b)
		return errA == nil && errB == nil && na == nb
	}
	return a == b
}

// filter is the events query that selects the subject's events; nil for a
// range.
func (s whySubject) filter() url.Values {
	switch {
	case s.addr.IsValid():
		return url.Values{"ip": {s.addr.String()}}
	case s.user != "":
		return url.Values{"user": {s.user}}
	}
	return nil
}

func joinTypes(ts []detect.Type) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = string(t)
	}
	return strings.Join(parts, ",")
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func queryEvents(c *cobra.Command, q url.Values) (respond.EventPage, error) {
	var page respond.EventPage
	err := getJSON(c, "/vigil/events?"+q.Encode(), &page)
	return page, err
}

// getJSON fetches an admin API resource into v.
func getJSON(c *cobra.Command, uri string, v any) error {
	status, raw, err := adminFetch(c, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return answerError(http.MethodGet, uri, status, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("reading the answer of %s: %w", strings.SplitN(uri, "?", 2)[0], err)
	}
	return nil
}

// writeWhy prints the report for a person.
func writeWhy(o output, rep whyReport) error {
	subject := clean(rep.Subject)
	if len(rep.Decisions) == 0 {
		_, err := fmt.Fprintf(o.w, "No active decision on %s.\n", subject)
		return err
	}
	noun := "decisions"
	if len(rep.Decisions) == 1 {
		noun = "decision"
	}
	fmt.Fprintf(o.w, "%s: %d active %s.\n", subject, len(rep.Decisions), noun)
	for _, d := range rep.Decisions {
		if err := writeWhyDecision(o, rep, d); err != nil {
			return err
		}
	}
	return nil
}

func writeWhyDecision(o output, rep whyReport, d whyDecision) error {
	fmt.Fprintf(o.w, "\n%s %s", strings.ToUpper(string(d.Kind)), clean(d.Target))
	if rep.As == "ip" && d.Target != rep.Subject {
		fmt.Fprintf(o.w, " (covers %s)", clean(rep.Subject))
	}
	fmt.Fprintln(o.w)
	source := clean(d.Source)
	if d.Site != "" {
		source += ", site " + clean(d.Site)
	}
	fmt.Fprintf(o.w, "  reason   %s\n  source   %s\n  strike   %d\n", cell(d.Reason, 200), source, d.Strike)
	fmt.Fprintf(o.w, "  since    %s\n  until    %s (%s left)\n", o.time(d.Created), o.time(d.Until), d.Remaining)
	if t := d.Trigger; t != nil {
		fmt.Fprintf(o.w, "  made by  %s %s %s %s\n", o.time(t.Time), t.Type, t.Severity, shortDetails(t.Details, 120))
	}
	if rep.As == "range" {
		_, err := fmt.Fprintln(o.w, "  events   (kept by address: ask about one address of the range)")
		return err
	}
	more := ""
	if d.Truncated {
		more = ", the newest shown"
	}
	if len(d.Events) == 0 {
		_, err := fmt.Fprintf(o.w, "  events   none in the %s before it\n", d.Window)
		return err
	}
	fmt.Fprintf(o.w, "  events   %d in the %s before it%s:\n", len(d.Events), d.Window, more)
	var table bytes.Buffer
	if err := writeEvents(output{w: &table, loc: o.loc, now: o.now}, d.Events); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(strings.TrimSuffix(table.String(), "\n"), "\n") {
		fmt.Fprintf(o.w, "    %s", line)
	}
	_, err := fmt.Fprintln(o.w)
	return err
}
