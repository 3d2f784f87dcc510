package dashboard

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// Bounds of a stats query: at most MaxBuckets points per series, and at
// most MaxScan events read from the log (the newest first); a window with
// more events answers Truncated and the series cover only the newest.
const (
	MaxBuckets = 1440
	MaxScan    = 200_000
	// DefaultPoints is how many buckets a query without step gets.
	DefaultPoints = 60
	topN          = 10
)

// StatsQuery is the window and bucket width of a stats query.
type StatsQuery struct {
	From, To time.Time
	Step     time.Duration
}

// ParseStatsQuery reads from, to (RFC 3339 or a duration back from now;
// default the last hour until now) and step (a duration; default about
// DefaultPoints buckets), and checks the bounds.
func ParseStatsQuery(q url.Values, now time.Time) (StatsQuery, error) {
	var sq StatsQuery
	var err error
	if sq.To, err = when(q.Get("to"), now, now); err != nil {
		return sq, fmt.Errorf("to: %w", err)
	}
	if sq.From, err = when(q.Get("from"), now, sq.To.Add(-time.Hour)); err != nil {
		return sq, fmt.Errorf("from: %w", err)
	}
	if s := q.Get("step"); s != "" {
		if sq.Step, err = time.ParseDuration(s); err != nil || sq.Step <= 0 {
			return sq, fmt.Errorf("step %q is not a positive duration", s)
		}
	}
	return sq, sq.Normalize()
}

func when(s string, now, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration", s)
	}
	return now.Add(-d), nil
}

// Normalize picks a step when none is given, aligns the window to whole
// steps and enforces MaxBuckets.
func (q *StatsQuery) Normalize() error {
	span := q.To.Sub(q.From)
	if span <= 0 {
		return fmt.Errorf("from must be before to")
	}
	if q.Step == 0 {
		q.Step = niceStep(span / DefaultPoints)
	}
	q.From = q.From.Truncate(q.Step)
	if n := q.buckets(); n > MaxBuckets {
		return fmt.Errorf("%d buckets of %s: at most %d (raise step)", n, q.Step, MaxBuckets)
	}
	return nil
}

func (q StatsQuery) buckets() int {
	return int((q.To.Sub(q.From) + q.Step - 1) / q.Step)
}

var steps = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute,
	5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour,
	6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// niceStep is the smallest round step at least d.
func niceStep(d time.Duration) time.Duration {
	for _, s := range steps {
		if s >= d {
			return s
		}
	}
	return (d + 24*time.Hour - 1).Truncate(24 * time.Hour)
}

// Series are the time series of a window. Every series has one value per
// bucket; Times are the buckets' starts (Unix seconds).
type Series struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Step  string    `json:"step"`
	Times []int64   `json:"times"`
	// FailedLogins and SuccessfulLogins count FAILED_LOGIN and
	// SUCCESSFUL_LOGIN events; FailedRate is failures per minute.
	FailedLogins     []int     `json:"failed_logins"`
	SuccessfulLogins []int     `json:"successful_logins"`
	FailedRate       []float64 `json:"failed_auth_rate"`
	// DataBytes sums the bytes of BULK_EXPORT, SENSITIVE_DATA_ACCESS and
	// DATA_ACCESS_ANOMALY events (details bytes, else answer_bytes).
	DataBytes []int64 `json:"data_bytes"`
	// ByType counts every type of event seen; BySeverity counts incidents
	// (every type but logins and admin actions).
	ByType     map[detect.Type][]int `json:"by_type"`
	BySeverity map[string][]int      `json:"by_severity"`
	Totals     map[string]int64      `json:"totals"`
	// Top offenders: the addresses, users and networks (/24, /64) with the
	// most failed logins and incidents.
	Top       TopOffenders `json:"top"`
	Scanned   int          `json:"scanned"`
	Truncated bool         `json:"truncated"`

	step    time.Duration
	offense map[string]map[string]int
}

// TopOffenders ranks subjects by failed logins and incidents.
type TopOffenders struct {
	IPs      []Count `json:"ips"`
	Users    []Count `json:"users"`
	Networks []Count `json:"networks"`
}

// Count is one ranked subject.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// NewSeries returns empty series for q.
func NewSeries(q StatsQuery) *Series {
	n := q.buckets()
	s := &Series{From: q.From.UTC(), To: q.To.UTC(), Step: q.Step.String(), step: q.Step,
		Times: make([]int64, n), FailedLogins: make([]int, n), SuccessfulLogins: make([]int, n),
		FailedRate: make([]float64, n), DataBytes: make([]int64, n),
		ByType: map[detect.Type][]int{}, BySeverity: map[string][]int{}, Totals: map[string]int64{},
		offense: map[string]map[string]int{"ip": {}, "user": {}, "net": {}}}
	for i := range s.Times {
		s.Times[i] = q.From.Add(time.Duration(i) * q.Step).Unix()
	}
	for sev := detect.Low; sev <= detect.Critical; sev++ {
		s.BySeverity[sev.String()] = make([]int, n)
	}
	return s
}

// IsIncident reports whether an event type counts as an incident: every
// type but logins and admin actions.
func IsIncident(t detect.Type) bool {
	return t != detect.SuccessfulLogin && t != detect.FailedLogin && t != detect.AdminAction
}

// Add counts one event into its bucket; events outside the window are
// ignored.
func (s *Series) Add(e detect.Event) {
	if e.Time.Before(s.From) || !e.Time.Before(s.To) {
		return
	}
	i := int(e.Time.Sub(s.From) / s.step)
	if i >= len(s.Times) {
		return
	}
	if s.ByType[e.Type] == nil {
		s.ByType[e.Type] = make([]int, len(s.Times))
	}
	s.ByType[e.Type][i]++
	s.Totals[string(e.Type)]++
	switch e.Type {
	case detect.FailedLogin:
		s.FailedLogins[i]++
		s.FailedRate[i] = float64(s.FailedLogins[i]) / s.step.Minutes()
		s.offend(e)
	case detect.SuccessfulLogin:
		s.SuccessfulLogins[i]++
	case detect.BulkExport, detect.SensitiveDataAccess, detect.DataAccessAnomaly:
		b := EventBytes(e)
		s.DataBytes[i] += b
		s.Totals["data_bytes"] += b
	}
	if IsIncident(e.Type) {
		if sev := s.BySeverity[e.Severity.String()]; sev != nil {
			sev[i]++
		}
		s.Totals["incidents"]++
		s.offend(e)
	}
}

// EventBytes is the data volume an event reports: details bytes, else
// answer_bytes, else 0.
func EventBytes(e detect.Event) int64 {
	for _, k := range []string{"bytes", "answer_bytes"} {
		switch v := e.Details[k].(type) {
		case int64:
			return v
		case int:
			return int64(v)
		case float64:
			return int64(v)
		}
	}
	return 0
}

func (s *Series) offend(e detect.Event) {
	if e.IP != "" {
		s.offense["ip"][e.IP]++
		if n := Network(e.IP); n != "" {
			s.offense["net"][n]++
		}
	}
	if e.User != "" {
		s.offense["user"][e.User]++
	}
}

// Network is the /24 (IPv4) or /64 (IPv6) holding an address, or "".
func Network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// finish ranks the offenders.
func (s *Series) finish() {
	s.Top = TopOffenders{IPs: top(s.offense["ip"]), Users: top(s.offense["user"]), Networks: top(s.offense["net"])}
}

func top(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out[:min(len(out), topN)]
}

// Stats computes the series of q from the event log, paging through a
// query of the window (newest first) until the window's start or MaxScan
// events.
func Stats(ctx context.Context, log respond.EventLog, q StatsQuery) (*Series, error) {
	s := NewSeries(q)
	f := respond.EventFilter{Since: q.From, Until: q.To, Limit: 1000}
	for {
		page, err := log.Query(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			s.Add(e)
		}
		s.Scanned += len(page.Events)
		if page.Next == "" {
			break
		}
		if s.Scanned >= MaxScan {
			s.Truncated = true
			break
		}
		f.Cursor = page.Next
	}
	s.finish()
	return s, nil
}
