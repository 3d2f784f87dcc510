package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

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

// WhyOptions are the flags of `caddy vigil why`.
type WhyOptions struct {
	// Window is how far before a decision to look for its causes; zero:
	// the window of the rule that made it, else defaultWhyWindow.
	Window time.Duration
	Limit  int  // the most events shown per decision (the newest); zero: all
	AsUser bool // read the subject as a username even if it looks like an address
}

// Why is `caddy vigil why <subject>`: the active decisions on the subject
// and the events behind each, as text for a person (even through a pipe:
// this command is for people), or as JSON with --json.
func (e Env) Why(subject string, opts WhyOptions) error {
	subj := parseWhySubject(subject, opts.AsUser)
	var list struct {
		Decisions []respond.Decision `json:"decisions"`
	}
	if err := e.getJSON("/vigil/decisions", &list); err != nil {
		return err
	}
	e.Out = e.Out.stamped() // one moment for every decision's time left
	rep := whyReport{Subject: subj.raw, As: subj.as(), Decisions: []whyDecision{}}
	for _, d := range list.Decisions {
		if !subj.covers(d) {
			continue
		}
		wd, err := e.explain(subj, d, opts)
		if err != nil {
			return err
		}
		rep.Decisions = append(rep.Decisions, wd)
	}
	slices.SortFunc(rep.Decisions, func(a, b whyDecision) int { return a.Created.Compare(b.Created) })
	if e.Out.JSON {
		raw, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("encoding the report: %w", err)
		}
		return renderJSON(e.Out, append(raw, '\n'))
	}
	return writeWhy(e.Out, rep)
}

// explain finds the event that announced d and the subject's events in
// the window before it.
func (e Env) explain(subj whySubject, d respond.Decision, opts WhyOptions) (whyDecision, error) {
	wd := whyDecision{Decision: d, Remaining: humanDuration(d.Remaining(e.Out.Now)), Events: []detect.Event{}}
	trigger, err := e.findTrigger(subj, d)
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
	if opts.Window > 0 {
		window = opts.Window
	}
	wd.Window = ShortDuration(window)
	q := subj.filter()
	if q == nil {
		return wd, nil // a range: events are kept by address, not by range
	}
	q.Set("type", joinTypes(causeTypes[d.Kind]))
	q.Set("since", d.Created.Add(-window-time.Second).Format(time.RFC3339Nano))
	q.Set("until", d.Created.Add(time.Second).Format(time.RFC3339Nano))
	q.Set("limit", "1000")
	page, err := e.queryEvents(q)
	if err != nil {
		return wd, err
	}
	evs := page.Events // newest first
	if opts.Limit > 0 && len(evs) > opts.Limit {
		evs, wd.Truncated = evs[:opts.Limit], true
	}
	wd.Truncated = wd.Truncated || page.Next != ""
	slices.Reverse(evs)
	wd.Events = append(wd.Events, evs...)
	return wd, nil
}

// findTrigger is the event that announced d, or nil: for a manual
// decision the operator's ADMIN_ACTION, else the subject's event of a
// trigger type closest to the decision's start.
func (e Env) findTrigger(subj whySubject, d respond.Decision) (*detect.Event, error) {
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
	page, err := e.queryEvents(q)
	if err != nil {
		return nil, err
	}
	var best *detect.Event
	for i, ev := range page.Events {
		if (d.Source == "admin" && !adminActionOn(ev, d)) || (d.Source != "admin" && !eventAbout(ev, d)) {
			continue
		}
		if best == nil || absDuration(ev.Time.Sub(d.Created)) < absDuration(best.Time.Sub(d.Created)) {
			best = &page.Events[i]
		}
	}
	return best, nil
}

func (e Env) queryEvents(q url.Values) (respond.EventPage, error) {
	var page respond.EventPage
	err := e.getJSON("/vigil/events?"+q.Encode(), &page)
	return page, err
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
