package report

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

var (
	t0   = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tEnd = t0.Add(3 * day)
	evil = `=HYPERLINK("https://evil.example/x")`
	ipOf = func(i int) string { return fmt.Sprintf("198.51.100.%d", 10+i%50) }
	hhmm = func(d, h, m int) time.Time {
		return t0.Add(time.Duration(d)*day + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	until = "2026-11-01T04:00:00Z"
)

type seed struct {
	at       time.Time
	typ      detect.Type
	sev      detect.Severity
	user, ip string
	country  string
	details  detect.Details
}

// history is the known period: 3 days, 2518 events in it, 2 outside.
func history() []seed {
	s := []seed{
		{at: t0.Add(-time.Millisecond), typ: detect.FailedLogin, user: "outside", ip: "192.0.2.99"},
		{at: tEnd, typ: detect.FailedLogin, user: "outside", ip: "192.0.2.99"},
		{at: hhmm(0, 3, 10), typ: detect.FailedLogin, user: "alice", ip: "203.0.113.7", country: "AU"},
		{at: hhmm(0, 3, 20), typ: detect.FailedLogin, user: "alice", ip: "203.0.113.7", country: "AU"},
		{at: hhmm(0, 3, 30), typ: detect.FailedLogin, user: "Alice", ip: "203.0.113.7", country: "AU"},
		{at: hhmm(0, 3, 40), typ: detect.AccountLocked, user: "alice", ip: "203.0.113.7", country: "AU",
			details: detect.Details{"threshold": 3, "window": "15m0s", "strike": 1, "duration": "15m0s", "until": until}},
		{at: hhmm(0, 9, 5), typ: detect.SuccessfulLogin, user: "bob", ip: "198.51.100.2", country: "NL"},
		{at: hhmm(0, 9, 30), typ: detect.SuccessfulLogin, user: "BOB", ip: "198.51.100.2", country: "NL"},
		{at: hhmm(0, 14, 0), typ: detect.BulkExport, user: "bob", ip: "198.51.100.2", country: "NL",
			details: detect.Details{"export": "/api/export/*", "measure": "bytes", "cut": true}},
		{at: hhmm(1, 0, 0), typ: detect.FailedLogin, user: "carol", ip: "203.0.113.8"},
		{at: hhmm(1, 10, 0), typ: detect.IPBlocked, ip: "203.0.113.8",
			details: detect.Details{"reason": "failed_logins", "allowlisted": true, "duration": "1h0m0s"}},
		{at: hhmm(1, 11, 0), typ: detect.SuccessfulLogin, user: "carol", ip: "2001:db8::1"},
		{at: hhmm(1, 12, 0), typ: detect.SystemIntrusion, sev: detect.Critical, ip: "2001:db8::2",
			details: detect.Details{"kind": "honeypot", "until": "2026-11-03T12:00:00Z", "duration": "24h0m0s"}},
		{at: hhmm(1, 12, 30), typ: detect.SensitiveDataAccess, user: "carol", ip: "2001:db8::1"},
		{at: hhmm(1, 13, 0), typ: detect.AdminAction, user: "ops",
			details: detect.Details{"action": "unlock", "target": "alice", "remote": "127.0.0.1"}},
		{at: hhmm(1, 13, 5), typ: detect.SessionRevoked, user: "alice",
			details: detect.Details{"revocation": "revoke_user", "source": "admin", "reason": "laptop stolen"}},
		{at: hhmm(1, 13, 6), typ: detect.SessionRevoked, user: "alice", details: detect.Details{"refused": true, "path": "/api"}},
		{at: hhmm(1, 15, 0), typ: detect.DataAccessAnomaly, sev: detect.Medium, user: "carol", ip: "2001:db8::1"},
		{at: hhmm(2, 20, 0), typ: detect.SuspiciousLogin, user: "erin", ip: "192.0.2.1",
			details: detect.Details{"action": "block", "risk_score": 90}},
		{at: tEnd.Add(-time.Second), typ: detect.FailedLogin, user: evil, ip: "192.0.2.1"},
	}
	for i := range 2500 { // a stuffing wave: 50 addresses × 50 failures, day 2, 05:00–05:41
		s = append(s, seed{at: hhmm(1, 5, 0).Add(time.Duration(i) * time.Second), typ: detect.FailedLogin, user: "mallory", ip: ipOf(i)})
	}
	return s
}

// seedLog appends the history to a memory event log, optionally as Redis
// would hand it back (a JSON round trip: numbers become float64).
func seedLog(t *testing.T, viaJSON bool) *respond.MemoryEvents {
	t.Helper()
	log := respond.NewMemoryEvents(10000)
	for i, s := range history() {
		e := detect.NewEvent(s.typ, s.at)
		e.ID = fmt.Sprintf("ev%05d", i)
		if s.sev != 0 {
			e.Severity = s.sev
		}
		e.User, e.IP, e.Country, e.Details = s.user, s.ip, s.country, s.details
		if viaJSON {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			e = detect.Event{}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
		}
		log.Append(e)
	}
	return log
}

func fixtureInput(log EventSource) Input {
	now := tEnd.Add(time.Hour)
	return Input{
		Events: log, From: t0, To: tEnd, Generated: now,
		Audit:  &AuditStatus{Verified: true, Records: 2518, LastCheckpoint: tEnd.Add(-time.Minute)},
		Alerts: map[string]AlertFigures{"webhook": {Sent: 10, Failed: 2}, "slack": {Sent: 5, Dropped: 1}},
		Decisions: []respond.Decision{
			{Kind: respond.Lock, Target: "alice", Source: "auto", Strike: 1, Created: now.Add(-time.Minute), Until: now.Add(time.Hour)},
			{Kind: respond.Block, Target: "203.0.113.0/24", Source: "admin", Strike: 1, Created: now.Add(-time.Hour), Until: now.Add(time.Hour)},
			{Kind: respond.Block, Target: "192.0.2.1", Source: "auto", Created: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)},
		},
	}
}

func TestBuildCrossCheck(t *testing.T) {
	for _, viaJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", viaJSON), func(t *testing.T) {
			r, err := Build(context.Background(), fixtureInput(seedLog(t, viaJSON)))
			if err != nil {
				t.Fatal(err)
			}
			crossCheck(t, r)
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func crossCheck(t *testing.T, r *Report) {
	eq(t, "coverage.events", r.Coverage.Events, 2518)
	eq(t, "coverage.pages", r.Coverage.Pages, 3)
	eq(t, "coverage.truncated", r.Coverage.Truncated, false)
	eq(t, "coverage.oldest", r.Coverage.Oldest, hhmm(0, 3, 10))
	eq(t, "coverage.newest", r.Coverage.Newest, tEnd.Add(-time.Second))
	eq(t, "summary.events", r.Summary.Events, 2518)
	eq(t, "summary.days", r.Summary.Days, 3)
	eq(t, "summary.severities", r.Summary.Severities, Severities{Low: 2505 + 3 + 1 + 1, Medium: 6, High: 1, Critical: 1})
	byType := map[detect.Type]int{}
	for _, tc := range r.Summary.ByType {
		byType[tc.Type] = tc.Total
	}
	eq(t, "summary.by_type", byType, map[detect.Type]int{
		detect.FailedLogin: 2505, detect.SuccessfulLogin: 3, detect.AccountLocked: 1, detect.BulkExport: 1,
		detect.IPBlocked: 1, detect.SystemIntrusion: 1, detect.SensitiveDataAccess: 1, detect.AdminAction: 1,
		detect.SessionRevoked: 2, detect.DataAccessAnomaly: 1, detect.SuspiciousLogin: 1,
	})

	a := r.FailedAuth
	eq(t, "failed.total", a.Total, 2505)
	eq(t, "failed.per_hour", a.PerHour, 34.79)
	eq(t, "failed.per_day", a.PerDay, 835.0)
	eq(t, "failed.peak", [2]any{a.PeakHour, a.PeakCount}, [2]any{hhmm(1, 5, 0), 2500})
	eq(t, "failed.daily", a.Daily, []DayAuth{
		{Day: "2026-11-01", Failures: 3, Successes: 2, FailureShare: 60},
		{Day: "2026-11-02", Failures: 2501, Successes: 1, FailureShare: 100},
		{Day: "2026-11-03", Failures: 1, Successes: 0, FailureShare: 100},
	})
	hourly := map[string]int{}
	for _, row := range a.Hourly.Rows {
		for h, n := range row.Cells {
			if n != 0 {
				hourly[row.Label+" "+a.Hourly.Columns[h]] = n
			}
		}
	}
	eq(t, "failed.hourly", hourly, map[string]int{"2026-11-01 03": 3, "2026-11-02 00": 1, "2026-11-02 05": 2500, "2026-11-03 23": 1})
	eq(t, "failed.hourly.total", a.Hourly.Total, 2505)
	eq(t, "lockout", [3]any{a.Lockout.Locks, a.Lockout.Thresholds, a.Lockout.MinDuration}, [3]any{1, []int{3}, "15m0s"})

	l := r.Logins
	eq(t, "logins.total", l.Total, 3)
	eq(t, "logins.users", l.Users, 2)
	eq(t, "logins.located", l.Located, 2)
	hours := make([]int, 24)
	hours[9], hours[11] = 2, 1
	eq(t, "logins.by_hour", l.ByHour, hours)
	eq(t, "logins.by_country", l.ByCountry, []KeyCount{{"NL", 2}, {Unknown, 1}})

	eq(t, "data.columns", r.DataAccess.Columns, []string{"BULK_EXPORT", "DATA_ACCESS_ANOMALY", "SENSITIVE_DATA_ACCESS"})
	eq(t, "data.rows", cells(r.DataAccess), [][]int{{1, 0, 0}, {0, 1, 1}, {0, 0, 0}})
	eq(t, "data.total", r.DataAccess.Total, 3)

	eq(t, "incidents.total", r.Incidents.Total, 9)
	eq(t, "incidents.by_severity", cells(r.Incidents.BySeverity), [][]int{{0, 1, 1, 0}, {1, 4, 0, 1}, {0, 1, 0, 0}})
	eq(t, "incidents.types", r.Incidents.ByType.Columns, []string{"ACCOUNT_LOCKED", "IP_BLOCKED", "DATA_ACCESS_ANOMALY",
		"BULK_EXPORT", "SENSITIVE_DATA_ACCESS", "SYSTEM_INTRUSION", "SESSION_REVOKED", "SUSPICIOUS_LOGIN"})
	eq(t, "incidents.by_type", cells(r.Incidents.ByType), [][]int{{1, 0, 0, 1, 0, 0, 0, 0}, {0, 1, 1, 0, 1, 1, 2, 0}, {0, 0, 0, 0, 0, 0, 0, 1}})

	o := r.Offenders
	eq(t, "offenders.subjects", o.Subjects, map[string]int{"ips": 56, "users": 6, "networks": 4})
	eq(t, "offenders.ips", len(o.IPs), TopN)
	eq(t, "offenders.ip[0]", [3]any{o.IPs[0].Subject, o.IPs[0].Events, o.IPs[0].FailedLogins}, [3]any{"198.51.100.10", 50, 50})
	nets := map[string][3]int{}
	for _, n := range o.Networks {
		nets[n.Subject] = [3]int{n.Events, n.FailedLogins, n.Incidents}
	}
	eq(t, "offenders.networks", nets, map[string][3]int{
		"198.51.100.0/24": {2501, 2500, 1}, "203.0.113.0/24": {6, 4, 2}, "2001:db8::/64": {3, 0, 3}, "192.0.2.0/24": {2, 1, 1},
	})
	eq(t, "offenders.networks order", o.Networks[0].Subject+" "+o.Networks[3].Subject, "198.51.100.0/24 192.0.2.0/24")
	users := map[string][3]int{}
	for _, u := range o.Users {
		users[u.Subject] = [3]int{u.Events, u.FailedLogins, u.Incidents}
	}
	eq(t, "offenders.users", users, map[string][3]int{
		"mallory": {2500, 2500, 0}, "alice": {6, 3, 3}, "carol": {3, 1, 2}, "bob": {1, 0, 1}, "erin": {1, 0, 1}, userKey(evil): {1, 1, 0},
	})
	alice := o.Users[1]
	eq(t, "alice", [4]any{alice.Subject, alice.MaxSeverity, alice.First, alice.Last}, [4]any{"alice", detect.Medium, hhmm(0, 3, 10), hhmm(1, 13, 6)})
	eq(t, "alice.types", alice.Types, []detect.Type{detect.FailedLogin, detect.AccountLocked, detect.SessionRevoked})

	ac := r.Actions
	eq(t, "actions.total", ac.Total, 7)
	eq(t, "actions.refusals", ac.RevokedRefusals, 1)
	eq(t, "actions.omitted", ac.Omitted, 0)
	eq(t, "actions.counts", ac.Counts, []ActionCount{
		{"block", "auto", 1, 1}, {"cut", "auto", 1, 0}, {"lock", "auto", 1, 0},
		{"refuse_login", "auto", 1, 0}, {"revoke_user", "admin", 1, 0}, {"unlock", "admin", 1, 0},
	})
	var seq []string
	for _, x := range ac.Rows {
		seq = append(seq, x.Action+":"+x.Target)
	}
	eq(t, "actions.rows", seq, []string{"lock:alice", "cut:bob", "block:203.0.113.8", "block:2001:db8::2",
		"unlock:alice", "revoke_user:alice", "refuse_login:erin"})
	eq(t, "actions.unlock", [2]string{ac.Rows[4].Operator, ac.Rows[4].Source}, [2]string{"ops 127.0.0.1", "admin"})
	eq(t, "actions.allowlisted", [2]any{ac.Rows[2].Enforced, ac.Rows[2].Reason}, [2]any{false, "failed_logins"})
	eq(t, "actions.refuse", ac.Rows[6].Reason, "risk score 90")

	eq(t, "decisions", [2]any{r.Decisions.Total, r.Decisions.ByKind}, [2]any{2, map[string]int{"block": 1, "lock": 1}})
	eq(t, "alerts.total", r.Alerts.Total, AlertFigures{Sent: 15, Failed: 2, Dropped: 1})
	eq(t, "alerts.channels", r.Alerts.Channels[0], ChannelStats{Channel: "slack", AlertFigures: AlertFigures{5, 0, 1}, Delivered: 83.3})
	eq(t, "audit", [3]any{r.Audit.Status, r.Audit.Records, r.Audit.LastCheckpoint}, [3]any{AuditVerified, 2518, tEnd.Add(-time.Minute)})
	status := map[string]string{}
	for _, c := range r.Controls {
		status[c.ID] = c.Status
	}
	eq(t, "control 8.3.4", status["8.3.4"], StatusAttention) // 15m lock < 30m
	eq(t, "control 10.3", status["10.3"], StatusEvidence)
	eq(t, "control 10.4", status["10.4"], StatusAttention) // slack dropped one
}

func cells(m Matrix) [][]int {
	out := [][]int{}
	for _, r := range m.Rows {
		out = append(out, r.Cells)
	}
	return out
}
