package report

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Actions are every automated and manual action of the period: locks,
// blocks, session revocations, operators' changes, intrusion bans, cut or
// throttled exports and refused risky logins.
type Actions struct {
	Total   int           `json:"total"`
	Counts  []ActionCount `json:"counts"`
	Rows    []Action      `json:"rows"`    // oldest first; the newest MaxActionRows
	Omitted int           `json:"omitted"` // older actions counted but not listed
	// RevokedRefusals counts SESSION_REVOKED events that record a revoked
	// token being refused (not a new revocation).
	RevokedRefusals int `json:"revoked_refusals"`
}

// ActionCount counts actions of one kind by one source.
type ActionCount struct {
	Action      string `json:"action"`
	Source      string `json:"source"`
	Enforced    int    `json:"enforced"`
	NotEnforced int    `json:"not_enforced"` // allowlisted or monitor_only
}

// Action is one row of the actions table.
type Action struct {
	Time     time.Time   `json:"time"`
	EventID  string      `json:"event_id"`
	Type     detect.Type `json:"type"`
	Action   string      `json:"action"` // lock, block, revoke_user, unlock …
	Source   string      `json:"source"` // auto or admin
	Target   string      `json:"target"`
	Site     string      `json:"site,omitempty"`
	Reason   string      `json:"reason,omitempty"`
	Duration string      `json:"duration,omitempty"`
	Until    string      `json:"until,omitempty"`
	Operator string      `json:"operator,omitempty"` // admin actions: user or remote address
	Enforced bool        `json:"enforced"`
	Note     string      `json:"note,omitempty"`
}

// Lockout is what the period's ACCOUNT_LOCKED events say about the lockout
// policy (PCI DSS 8.3.4: at most 10 attempts, at least 30 minutes).
type Lockout struct {
	Locks        int    `json:"locks"`
	Thresholds   []int  `json:"thresholds"`             // distinct thresholds seen
	MaxThreshold int    `json:"max_threshold"`          // highest attempts before a lock
	MinDuration  string `json:"min_duration,omitempty"` // shortest first-strike lock
	minDur       time.Duration
}

type actionTally struct {
	rows     []Action // newest first while reading
	total    int
	refusals int
	counts   map[[2]string]*ActionCount
	lockout  lockoutTally
}

type lockoutTally struct {
	l    Lockout
	seen map[int]bool
}

func (a *actionTally) add(e detect.Event) {
	if e.Type == detect.AccountLocked {
		a.lockout.add(e)
	}
	act, ok := classify(e)
	if !ok {
		if e.Type == detect.SessionRevoked {
			a.refusals++
		}
		return
	}
	a.total++
	if a.counts == nil {
		a.counts = map[[2]string]*ActionCount{}
	}
	k := [2]string{act.Action, act.Source}
	c := a.counts[k]
	if c == nil {
		c = &ActionCount{Action: act.Action, Source: act.Source}
		a.counts[k] = c
	}
	if act.Enforced {
		c.Enforced++
	} else {
		c.NotEnforced++
	}
	if len(a.rows) < MaxActionRows {
		a.rows = append(a.rows, act)
	}
}

// classify turns an event into an action row, or says it is none.
func classify(e detect.Event) (Action, bool) {
	d := e.Details
	a := Action{Time: e.Time.UTC(), EventID: e.ID, Type: e.Type, Site: e.Site, Source: "auto", Enforced: true,
		Reason: str(d, "reason"), Duration: str(d, "duration"), Until: str(d, "until"), Target: e.User}
	switch e.Type {
	case detect.AccountLocked:
		a.Action = "lock"
		if a.Reason == "" && flag(d, "distributed") {
			a.Reason = "distributed failures"
		}
	case detect.IPBlocked:
		a.Action, a.Target = "block", e.IP
	case detect.SessionRevoked:
		if flag(d, "refused") {
			return a, false
		}
		a.Action, a.Source = str(d, "revocation"), str(d, "source")
		if a.Target == "" {
			a.Target = "jti " + str(d, "jti")
		}
	case detect.AdminAction:
		a.Action, a.Source, a.Target = str(d, "action"), "admin", str(d, "target")
		a.Operator = e.User
		if r := str(d, "remote"); r != "" {
			a.Operator = join(a.Operator, r)
		}
	case detect.SystemIntrusion:
		if a.Until == "" {
			return a, false
		}
		a.Action, a.Target, a.Reason = "block", e.IP, join(str(d, "kind"), str(d, "bucket"))
	case detect.BulkExport:
		switch {
		case flag(d, "cut"):
			a.Action = "cut"
		case str(d, "over") == "throttle":
			a.Action = "throttle"
		default:
			return a, false
		}
		a.Target, a.Reason = subject(e), join(str(d, "export"), str(d, "measure"))
	case detect.SuspiciousLogin:
		if str(d, "action") != "block" {
			return a, false
		}
		a.Action, a.Target, a.Reason = "refuse_login", subject(e), "risk score "+str(d, "risk_score")
	default:
		return a, false
	}
	if a.Source == "" {
		a.Source = "auto"
	}
	switch {
	case flag(d, "allowlisted"):
		a.Enforced, a.Note = false, "allowlisted: recorded, not enforced"
	case flag(d, "monitor_only"):
		a.Enforced, a.Note = false, "monitor_only: recorded, not enforced"
	}
	return a, true
}

func subject(e detect.Event) string {
	if e.User != "" {
		return e.User
	}
	return e.IP
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

func (a *actionTally) result() Actions {
	out := Actions{Total: a.total, Omitted: a.total - len(a.rows), RevokedRefusals: a.refusals, Rows: make([]Action, len(a.rows))}
	for i, r := range a.rows {
		out.Rows[len(a.rows)-1-i] = r
	}
	for _, c := range a.counts {
		out.Counts = append(out.Counts, *c)
	}
	sort.Slice(out.Counts, func(i, j int) bool {
		x, y := out.Counts[i], out.Counts[j]
		if x.Action != y.Action {
			return x.Action < y.Action
		}
		return x.Source < y.Source
	})
	return out
}

func (l *lockoutTally) add(e detect.Event) {
	l.l.Locks++
	if n, ok := num(e.Details, "threshold"); ok {
		if l.seen == nil {
			l.seen = map[int]bool{}
		}
		if !l.seen[n] {
			l.seen[n] = true
			l.l.Thresholds = append(l.l.Thresholds, n)
		}
		l.l.MaxThreshold = max(l.l.MaxThreshold, n)
	}
	if s, ok := num(e.Details, "strike"); ok && s > 1 {
		return // a repeat ban is longer: the first strike's duration is the policy's
	}
	if d, err := time.ParseDuration(str(e.Details, "duration")); err == nil && (l.l.minDur == 0 || d < l.l.minDur) {
		l.l.minDur = d
		l.l.MinDuration = d.String()
	}
}

func (l *lockoutTally) result() Lockout {
	sort.Ints(l.l.Thresholds)
	return l.l
}

// str reads a detail as text: strings as they are, numbers and booleans
// printed, anything else as JSON.
func str(d detect.Details, k string) string {
	switch v := d[k].(type) {
	case nil:
		return ""
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int, int64, uint, uint64, bool:
		return fmt.Sprint(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func flag(d detect.Details, k string) bool { b, _ := d[k].(bool); return b }

// num reads an integer detail, whether it was set in Go or read back from JSON.
func num(d detect.Details, k string) (int, bool) {
	switch v := d[k].(type) {
	case int:
		return v, true
	case int64:
		return int(v), true
	case uint:
		return int(v), true
	case float64:
		return int(v), v == float64(int(v))
	case json.Number:
		n, err := v.Int64()
		return int(n), err == nil
	}
	return 0, false
}
