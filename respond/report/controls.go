package report

import (
	"fmt"
	"time"
)

// Section anchors: the HTML page's ids and the CSV's section prefixes.
const (
	SecSummary    = "summary"
	SecFailedAuth = "failed-auth"
	SecLogins     = "logins"
	SecDataAccess = "data-access"
	SecIncidents  = "incidents"
	SecOffenders  = "offenders"
	SecActions    = "actions"
	SecDecisions  = "decisions"
	SecAlerts     = "alerts"
	SecAudit      = "audit"
	SecControls   = "controls"
)

// SectionTitles names the sections, in the report's order.
var SectionTitles = map[string]string{
	SecSummary:    "1. Summary and coverage",
	SecFailedAuth: "2. Failed authentication",
	SecLogins:     "3. Successful logins",
	SecDataAccess: "4. Data access",
	SecIncidents:  "5. Incident trends",
	SecOffenders:  "6. Top offenders",
	SecActions:    "7. Automated and manual actions",
	SecDecisions:  "8. Active decisions",
	SecAlerts:     "9. Alert delivery",
	SecAudit:      "10. Audit trail integrity",
	SecControls:   "11. Control mapping",
}

// Control statuses.
const (
	StatusEvidence   = "evidence"    // the report holds the evidence
	StatusPartial    = "partial"     // Vigil covers part; the rest is elsewhere
	StatusAttention  = "attention"   // the evidence shows a gap to look at
	StatusNotCovered = "not covered" // outside what a gateway sees
)

// Control is one row of the control mapping.
type Control struct {
	Framework   string   `json:"framework"`
	ID          string   `json:"id"`
	Requirement string   `json:"requirement"`
	Evidence    string   `json:"evidence"` // the Vigil feature that meets it
	Sections    []string `json:"sections"` // where in this report
	Status      string   `json:"status"`
	Note        string   `json:"note,omitempty"` // why this status, from this period's figures
}

const (
	pci  = "PCI DSS 4.0"
	soc2 = "SOC 2 (TSC 2017)"
	iso  = "ISO/IEC 27001:2022"
)

func controls(r *Report) []Control {
	logged := Control{Status: StatusEvidence, Note: fmt.Sprintf("%d events recorded in the period", r.Coverage.Events)}
	if r.Coverage.Events == 0 {
		logged.Status, logged.Note = StatusAttention, "no event recorded in the period: check that Vigil guards the login and data routes"
	}
	auditSt, auditNote := auditControl(r.Audit)
	alertSt, alertNote := alertControl(r.Alerts)
	return []Control{
		ctl(pci, "10.2.1", "Audit logs are enabled and active",
			"Every detection and enforcement is an event in the event log (Redis stream or memory ring) and, with audit_log, in the hash-chained audit trail").
			is(logged.Status, logged.Note).in(SecSummary, SecAudit),
		ctl(pci, "10.2.1.1", "Individual user access to cardholder data is logged",
			"SENSITIVE_DATA_ACCESS on every 2xx answer of a `sensitive` route; BULK_EXPORT and DATA_ACCESS_ANOMALY on `export` routes. Only declared routes are logged: declare every cardholder-data route").
			is(StatusPartial, fmt.Sprintf("%d data-access events", r.DataAccess.Total)).in(SecDataAccess),
		ctl(pci, "10.2.1.2", "All actions by individuals with administrative access are logged",
			"Every admin API change (block, unblock, lock, unlock, revoke, unrevoke, import) is an ADMIN_ACTION event naming the operator's address; the protected application's own admin actions are logged by it").
			is(StatusEvidence, fmt.Sprintf("%d admin actions", adminActions(r))).in(SecActions),
		ctl(pci, "10.2.1.3", "All access to audit logs is logged",
			"Not recorded by Vigil: audit files are plain files (use OS auditing, e.g. auditd, on the audit_log directory); their integrity is verified in section 10").
			is(StatusNotCovered, "").in(SecAudit),
		ctl(pci, "10.2.1.4", "Invalid logical access attempts are logged",
			"FAILED_LOGIN for every failed or unreadable login, PERMISSION_VIOLATION for refused roles, SESSION_REVOKED for refused revoked tokens, SUSPICIOUS_LOGIN for refused risky logins").
			is(StatusEvidence, fmt.Sprintf("%d failed logins", r.FailedAuth.Total)).in(SecFailedAuth, SecIncidents),
		ctl(pci, "10.2.1.5", "Changes to identification and authentication credentials are logged",
			"Account locks and unlocks and session revocations (ACCOUNT_LOCKED, SESSION_REVOKED, ADMIN_ACTION); account creation, privilege and password changes are the application's to log").
			is(StatusPartial, "").in(SecActions),
		ctl(pci, "10.2.1.6", "Initialization, stopping or pausing of audit logs is logged",
			"Signed audit checkpoints at a fixed interval: a stop, a gap or a cut tail shows in the chain's verification").
			is(auditSt, auditNote).in(SecAudit),
		ctl(pci, "10.2.1.7", "Creation and deletion of system-level objects is logged",
			"Outside a gateway's view: use host and database auditing").
			is(StatusNotCovered, ""),
		ctl(pci, "10.2.2", "Audit logs record user, event type, date and time, success or failure, origin and affected resource",
			"Each event records user, type, time (UTC), outcome (type, severity), origin (IP, country, city, ASN) and resource (site, method, path)").
			is(StatusEvidence, "").in(SecActions, SecOffenders),
		ctl(pci, "10.3", "Audit logs are protected from destruction and unauthorized modification",
			"Audit trail chained by SHA-256 with Ed25519-signed checkpoints and rotation that continues the chain; `caddy vigil audit verify` names the first broken record; the admin API listens only on Caddy's admin endpoint").
			is(auditSt, auditNote).in(SecAudit),
		ctl(pci, "10.4", "Audit logs are reviewed to identify anomalies (10.4.1, automated: 10.4.1.1)",
			"Detectors raise graded events; alerts by webhook, Slack, email and PagerDuty; the live dashboard; this report for the periodic review").
			is(alertSt, alertNote).in(SecIncidents, SecOffenders, SecAlerts),
		ctl(pci, "10.5.1", "Audit log history is retained for at least 12 months, three months immediately available",
			"events_retention keeps events queryable (Redis stream); audit_log rotate … keep n keeps the chained files: archive them for 12 months").
			is(retention(r), retentionNote(r)).in(SecSummary, SecAudit),
		ctl(pci, "8.3.4", "Invalid authentication attempts are limited: lockout after at most 10 attempts, for at least 30 minutes",
			"`lockout <n> within <dur> for <dur>` locks the account (429) and records ACCOUNT_LOCKED with its threshold and duration").
			is(lockoutStatus(r.FailedAuth.Lockout), lockoutNote(r.FailedAuth.Lockout)).in(SecFailedAuth, SecActions),
		ctl(soc2, "CC7.2", "System components are monitored for anomalies indicative of malicious acts",
			"Login, location, risk, data-access, permission and probe detectors on every guarded request").
			is(logged.Status, logged.Note).in(SecIncidents, SecOffenders, SecDataAccess),
		ctl(soc2, "CC7.3", "Security events are evaluated to determine whether they are incidents",
			"Severities with escalation (repeated or combined findings become CRITICAL), alerts per severity, `caddy vigil why` and the investigation routes").
			is(alertSt, alertNote).in(SecIncidents, SecAlerts),
		ctl(soc2, "CC7.4", "Identified security incidents are responded to",
			"Automatic locks, blocks and session revocations; manual actions through the admin API and CLI; runbooks (docs/runbooks.md)").
			is(StatusEvidence, fmt.Sprintf("%d actions, %d decisions in force", r.Actions.Total, r.Decisions.Total)).in(SecActions, SecDecisions),
		ctl(iso, "A.8.15", "Logging: logs of activities, exceptions and events are produced, stored, protected and analysed",
			"Event log, structured Caddy log lines, tamper-evident audit trail, this report").
			is(worst(logged.Status, auditSt), auditNote).in(SecSummary, SecAudit),
		ctl(iso, "A.8.16", "Monitoring activities: anomalous behaviour is monitored and acted on",
			"Detectors, Prometheus metrics and Grafana dashboard, alerts, automatic enforcement").
			is(worst(logged.Status, alertSt), alertNote).in(SecIncidents, SecActions, SecAlerts),
	}
}

// ctl starts a control row; is and in complete it.
func ctl(framework, id, requirement, evidence string) Control {
	return Control{Framework: framework, ID: id, Requirement: requirement, Evidence: evidence, Sections: []string{}}
}

func (c Control) is(status, note string) Control { c.Status, c.Note = status, note; return c }

func (c Control) in(sections ...string) Control { c.Sections = sections; return c }

func adminActions(r *Report) int {
	n := 0
	for _, c := range r.Actions.Counts {
		if c.Source == "admin" {
			n += c.Enforced + c.NotEnforced
		}
	}
	return n
}

func auditControl(a Audit) (string, string) {
	switch a.Status {
	case AuditVerified:
		return StatusEvidence, fmt.Sprintf("chain verified: %d records, last checkpoint %s", a.Records, stamp(a.LastCheckpoint))
	case AuditFailed:
		return StatusAttention, "audit chain verification FAILED: " + a.Problem
	}
	return StatusAttention, "no audit verification supplied: run `caddy vigil audit verify`"
}

func alertControl(a AlertStats) (string, string) {
	if !a.Supplied || len(a.Channels) == 0 {
		return StatusPartial, "no alert delivery figures supplied"
	}
	for _, c := range a.Channels {
		if c.Dropped > 0 || (c.Sent == 0 && c.Failed > 0) {
			return StatusAttention, fmt.Sprintf("channel %s: %d sent, %d failed attempts, %d dropped", c.Channel, c.Sent, c.Failed, c.Dropped)
		}
	}
	return StatusEvidence, fmt.Sprintf("%d alerts sent, none dropped", a.Total.Sent)
}

func retention(r *Report) string {
	if r.Coverage.Truncated {
		return StatusAttention
	}
	return StatusPartial
}

func retentionNote(r *Report) string {
	if r.Coverage.Truncated {
		return fmt.Sprintf("only the newest %d events were read; oldest %s", r.Coverage.Events, stamp(r.Coverage.Oldest))
	}
	if r.Coverage.Events == 0 {
		return "no event in the period"
	}
	return "oldest event in the period: " + stamp(r.Coverage.Oldest)
}

func lockoutStatus(l Lockout) string {
	switch {
	case l.Locks == 0:
		return StatusPartial
	case l.MaxThreshold > 10 || (l.minDur > 0 && l.minDur < 30*time.Minute):
		return StatusAttention
	}
	return StatusEvidence
}

func lockoutNote(l Lockout) string {
	if l.Locks == 0 {
		return "no lockout in the period: check `lockout` in the Caddyfile (≤ 10 attempts, ≥ 30m)"
	}
	return fmt.Sprintf("%d locks; threshold at most %d; shortest first lock %s", l.Locks, l.MaxThreshold, orDash(l.MinDuration))
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

var statusRank = map[string]int{StatusEvidence: 0, StatusPartial: 1, StatusNotCovered: 2, StatusAttention: 3}

func worst(a, b string) string {
	if statusRank[b] > statusRank[a] {
		return b
	}
	return a
}
