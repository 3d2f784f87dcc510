package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader is the CSV's first line. Every figure is one line: the
// section, the row it belongs to (a day, a subject, an event ID …), the
// field and its value, so a pivot table rebuilds any of the report's
// tables.
var CSVHeader = []string{"section", "key", "field", "value"}

// CSV writes the report as one CSV (CSVHeader). Cells that a spreadsheet
// would read as a formula (starting with =, +, -, @, a tab or a carriage
// return) are prefixed with a single quote.
func (r *Report) CSV(w io.Writer) error {
	cw := &csvOut{w: csv.NewWriter(w)}
	cw.put(CSVHeader...) // the header, as it is
	r.csvSummary(cw)
	r.csvAuth(cw)
	r.csvMatrix(cw, "data_access_daily", r.DataAccess)
	r.csvMatrix(cw, "incidents_daily_severity", r.Incidents.BySeverity)
	r.csvMatrix(cw, "incidents_daily_type", r.Incidents.ByType)
	csvOffenders(cw, "offenders_ip", r.Offenders.IPs)
	csvOffenders(cw, "offenders_user", r.Offenders.Users)
	csvOffenders(cw, "offenders_network", r.Offenders.Networks)
	for _, kind := range []string{"ips", "users", "networks"} {
		cw.row("offenders", kind, "subjects", r.Offenders.Subjects[kind])
		cw.row("offenders", kind, "untracked_events", r.Offenders.Untracked[kind])
	}
	r.csvActions(cw)
	r.csvRest(cw)
	cw.w.Flush()
	if cw.err == nil {
		cw.err = cw.w.Error()
	}
	if cw.err != nil {
		return fmt.Errorf("report: writing CSV: %w", cw.err)
	}
	return nil
}

type csvOut struct {
	w     *csv.Writer
	err   error
	lines int
}

// put writes one line; the first call writes the header as it is.
func (c *csvOut) put(cells ...string) {
	if c.err != nil {
		return
	}
	if c.lines > 0 {
		for i, s := range cells {
			cells[i] = SafeCell(s)
		}
	}
	c.lines++
	c.err = c.w.Write(cells)
}

func (c *csvOut) row(section, key, field string, value any) {
	c.put(section, key, field, cellText(value))
}

// SafeCell neutralises a cell a spreadsheet would run as a formula.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func cellText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

func (r *Report) csvSummary(c *csvOut) {
	c.row("report", "", "title", r.Title)
	c.row("report", "", "generated", r.Generated)
	c.row("report", "", "from", r.From)
	c.row("report", "", "to", r.To)
	c.row("coverage", "", "events", r.Coverage.Events)
	c.row("coverage", "", "pages", r.Coverage.Pages)
	c.row("coverage", "", "truncated", r.Coverage.Truncated)
	c.row("coverage", "", "oldest", r.Coverage.Oldest)
	c.row("coverage", "", "newest", r.Coverage.Newest)
	c.row("summary", "all", "events", r.Summary.Events)
	sevRows(c, "summary", "all", r.Summary.Severities)
	for _, t := range r.Summary.ByType {
		c.row("summary", string(t.Type), "events", t.Total)
		sevRows(c, "summary", string(t.Type), t.Severities)
	}
}

func sevRows(c *csvOut, section, key string, s Severities) {
	c.row(section, key, "LOW", s.Low)
	c.row(section, key, "MEDIUM", s.Medium)
	c.row(section, key, "HIGH", s.High)
	c.row(section, key, "CRITICAL", s.Critical)
}

func (r *Report) csvAuth(c *csvOut) {
	a := r.FailedAuth
	c.row("failed_auth", "", "total", a.Total)
	c.row("failed_auth", "", "per_day", a.PerDay)
	c.row("failed_auth", "", "per_hour", a.PerHour)
	c.row("failed_auth", "", "peak_hour", a.PeakHour)
	c.row("failed_auth", "", "peak_count", a.PeakCount)
	for _, d := range a.Daily {
		c.row("failed_auth_daily", d.Day, "failures", d.Failures)
		c.row("failed_auth_daily", d.Day, "successes", d.Successes)
		c.row("failed_auth_daily", d.Day, "failure_share", d.FailureShare)
	}
	for _, row := range a.Hourly.Rows {
		for h, n := range row.Cells {
			c.row("failed_auth_hourly", row.Label+"T"+a.Hourly.Columns[h]+":00Z", "failures", n)
		}
	}
	c.row("lockout", "", "locks", a.Lockout.Locks)
	c.row("lockout", "", "max_threshold", a.Lockout.MaxThreshold)
	c.row("lockout", "", "min_duration", a.Lockout.MinDuration)
	c.row("logins", "", "total", r.Logins.Total)
	c.row("logins", "", "users", r.Logins.Users)
	c.row("logins", "", "located", r.Logins.Located)
	for h, n := range r.Logins.ByHour {
		c.row("logins_by_hour", twoDigits(h), "logins", n)
	}
	for _, kc := range r.Logins.ByCountry {
		c.row("logins_by_country", kc.Key, "logins", kc.Count)
	}
}

func (r *Report) csvMatrix(c *csvOut, section string, m Matrix) {
	for _, row := range m.Rows {
		for i, n := range row.Cells {
			c.row(section, row.Label, m.Columns[i], n)
		}
		c.row(section, row.Label, "total", row.Total)
	}
}

func csvOffenders(c *csvOut, section string, list []Offender) {
	for _, o := range list {
		c.row(section, o.Subject, "events", o.Events)
		c.row(section, o.Subject, "failed_logins", o.FailedLogins)
		c.row(section, o.Subject, "incidents", o.Incidents)
		c.row(section, o.Subject, "max_severity", o.MaxSeverity.String())
		c.row(section, o.Subject, "types", strings.Join(typeNames(o.Types), " "))
		c.row(section, o.Subject, "country", o.Country)
		c.row(section, o.Subject, "first", o.First)
		c.row(section, o.Subject, "last", o.Last)
	}
}

func (r *Report) csvActions(c *csvOut) {
	for _, n := range r.Actions.Counts {
		c.row("action_counts", n.Action+"/"+n.Source, "enforced", n.Enforced)
		c.row("action_counts", n.Action+"/"+n.Source, "not_enforced", n.NotEnforced)
	}
	c.row("action_counts", "", "omitted", r.Actions.Omitted)
	c.row("action_counts", "", "revoked_refusals", r.Actions.RevokedRefusals)
	for _, a := range r.Actions.Rows {
		k := a.EventID
		for _, f := range [][2]string{
			{"time", cellText(a.Time)}, {"type", string(a.Type)}, {"action", a.Action}, {"source", a.Source},
			{"target", a.Target}, {"site", a.Site}, {"reason", a.Reason}, {"duration", a.Duration},
			{"until", a.Until}, {"operator", a.Operator}, {"enforced", strconv.FormatBool(a.Enforced)}, {"note", a.Note},
		} {
			c.row("actions", k, f[0], f[1])
		}
	}
}

func (r *Report) csvRest(c *csvOut) {
	for _, d := range r.Decisions.Active {
		k := string(d.Kind) + " " + d.Target
		c.row("decisions", k, "reason", d.Reason)
		c.row("decisions", k, "source", d.Source)
		c.row("decisions", k, "site", d.Site)
		c.row("decisions", k, "strike", d.Strike)
		c.row("decisions", k, "created", d.Created)
		c.row("decisions", k, "until", d.Until)
	}
	for _, ch := range r.Alerts.Channels {
		c.row("alerts", ch.Channel, "sent", ch.Sent)
		c.row("alerts", ch.Channel, "failed", ch.Failed)
		c.row("alerts", ch.Channel, "dropped", ch.Dropped)
		c.row("alerts", ch.Channel, "delivered_percent", ch.Delivered)
	}
	c.row("audit", "", "status", r.Audit.Status)
	c.row("audit", "", "records", r.Audit.Records)
	c.row("audit", "", "last_checkpoint", r.Audit.LastCheckpoint)
	c.row("audit", "", "problem", r.Audit.Problem)
	for _, ct := range r.Controls {
		k := ct.Framework + " " + ct.ID
		c.row("controls", k, "status", ct.Status)
		c.row("controls", k, "sections", strings.Join(ct.Sections, " "))
		c.row("controls", k, "note", ct.Note)
	}
}
