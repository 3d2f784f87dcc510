// Package report builds Vigil's security and compliance report for a
// period: failed-authentication rates, successful-login patterns, data
// access, incident trends, top offenders, every automated and manual
// action, the active decisions, alert delivery, the audit chain's
// verification and a control mapping (PCI DSS 4.0, SOC 2, ISO/IEC
// 27001:2022). Every figure is counted from the event log, read page by page
// through respond.EventLog.Query; the renderers (HTML, CSV, JSON) print the
// same Report. It never imports Caddy.
package report

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// EventSource is what the report reads events from: respond.EventLog's
// query (newest first, paged by Next).
type EventSource interface {
	Query(ctx context.Context, f respond.EventFilter) (respond.EventPage, error)
}

// AuditStatus is the audit chain's verification, filled by the caller
// (respond/audit's Verify): the report does not read audit files itself.
type AuditStatus struct {
	Verified       bool      `json:"verified"`
	Records        int       `json:"records"`
	LastCheckpoint time.Time `json:"last_checkpoint,omitzero"`
	Problem        string    `json:"problem,omitempty"` // the first broken record, a missing checkpoint …
}

// AlertFigures are one alert channel's delivery counts for the period (or
// since the process started: the caller says which in the channel name or
// the report's title). Failed counts attempts, Dropped alerts given up.
type AlertFigures struct {
	Sent    uint64 `json:"sent"`
	Failed  uint64 `json:"failed"`
	Dropped uint64 `json:"dropped"`
}

// Input is everything a report is built from.
type Input struct {
	Events    EventSource
	From, To  time.Time // the period: From inclusive, To exclusive
	Audit     *AuditStatus
	Alerts    map[string]AlertFigures // channel → figures
	Decisions []respond.Decision      // in force when the report is made
	Generated time.Time               // default: now
	Title     string                  // default: DefaultTitle
	// MaxEvents bounds how many events are read (default DefaultMaxEvents).
	// Beyond it the report counts the newest MaxEvents events only and says
	// so (Coverage.Truncated).
	MaxEvents int
}

// DefaultTitle is the report's title when Input.Title is empty.
const DefaultTitle = "Vigil security and compliance report"

// Bounds of one report.
const (
	DefaultMaxEvents = 1_000_000
	MaxPeriod        = 400 * 24 * time.Hour // a year and a month
	PageSize         = 1000                 // events per query (EventFilter's maximum)
	MaxActionRows    = 10_000               // newest actions listed; the rest counted
	MaxSubjects      = 50_000               // distinct IPs/users/networks/countries tracked each
	TopN             = 20                   // offenders listed per kind
)

// Report is one period's report. Every count is of events whose time is in
// [From, To); days and hours are UTC.
type Report struct {
	Title      string     `json:"title"`
	Generated  time.Time  `json:"generated"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Coverage   Coverage   `json:"coverage"`
	Summary    Summary    `json:"summary"`
	FailedAuth FailedAuth `json:"failed_authentication"`
	Logins     Logins     `json:"successful_logins"`
	DataAccess Matrix     `json:"data_access"` // days × BULK_EXPORT, DATA_ACCESS_ANOMALY, SENSITIVE_DATA_ACCESS
	Incidents  Incidents  `json:"incidents"`
	Offenders  Offenders  `json:"top_offenders"`
	Actions    Actions    `json:"actions"`
	Decisions  Decisions  `json:"active_decisions"`
	Alerts     AlertStats `json:"alert_delivery"`
	Audit      Audit      `json:"audit"`
	Controls   []Control  `json:"controls"`
}

// Coverage says what the figures were counted from.
type Coverage struct {
	Events    int       `json:"events"`
	Pages     int       `json:"pages"`
	Truncated bool      `json:"truncated"` // MaxEvents reached: older events of the period were not read
	MaxEvents int       `json:"max_events"`
	Oldest    time.Time `json:"oldest,omitzero"` // the oldest event counted
	Newest    time.Time `json:"newest,omitzero"`
}

// Severities counts events by severity.
type Severities struct {
	Low      int `json:"low"`
	Medium   int `json:"medium"`
	High     int `json:"high"`
	Critical int `json:"critical"`
}

func (s *Severities) add(v detect.Severity) {
	switch v {
	case detect.Low:
		s.Low++
	case detect.Medium:
		s.Medium++
	case detect.High:
		s.High++
	case detect.Critical:
		s.Critical++
	}
}

// Total is the sum of the four.
func (s Severities) Total() int { return s.Low + s.Medium + s.High + s.Critical }

// TypeCount is one event type's count over the period.
type TypeCount struct {
	Type       detect.Type `json:"type"`
	Total      int         `json:"total"`
	Severities Severities  `json:"severities"`
}

// Summary is the period at a glance.
type Summary struct {
	Events     int         `json:"events"`
	Days       int         `json:"days"`
	Severities Severities  `json:"severities"`
	ByType     []TypeCount `json:"by_type"` // types that occurred, in documentation order
}

// Matrix is a table of counts: one row per label (a day), one cell per
// column, with row and column totals.
type Matrix struct {
	Columns []string `json:"columns"`
	Rows    []Row    `json:"rows"`
	Totals  []int    `json:"totals"`
	Total   int      `json:"total"`
}

// Row is one line of a Matrix.
type Row struct {
	Label string `json:"label"`
	Cells []int  `json:"cells"`
	Total int    `json:"total"`
}

// Build reads the period's events from in.Events and counts them.
func Build(ctx context.Context, in Input) (*Report, error) {
	if in.Events == nil {
		return nil, errors.New("report: no event source")
	}
	if in.From.IsZero() || in.To.IsZero() || !in.From.Before(in.To) {
		return nil, fmt.Errorf("report: the period needs from < to (from %s, to %s)", stamp(in.From), stamp(in.To))
	}
	if in.To.Sub(in.From) > MaxPeriod {
		return nil, fmt.Errorf("report: the period is longer than %d days", int(MaxPeriod/(24*time.Hour)))
	}
	r := &Report{Title: in.Title, Generated: in.Generated.UTC(), From: in.From.UTC(), To: in.To.UTC()}
	if r.Title == "" {
		r.Title = DefaultTitle
	}
	if in.Generated.IsZero() {
		r.Generated = time.Now().UTC()
	}
	t := newTally(r.From, r.To)
	cov, err := scan(ctx, in, t.add)
	if err != nil {
		return nil, err
	}
	r.Coverage = cov
	t.fill(r)
	r.Decisions = decisions(in.Decisions, r.Generated)
	r.Alerts = alertStats(in.Alerts)
	r.Audit = audit(in.Audit)
	r.Controls = controls(r)
	return r, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unset"
	}
	return t.UTC().Format(time.RFC3339)
}
