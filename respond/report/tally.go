package report

import (
	"math"
	"sort"
	"time"

	"github.com/vigilsec/vigil/detect"
)

const day = 24 * time.Hour

// FailedAuth is the failed-authentication section: FAILED_LOGIN events.
type FailedAuth struct {
	Total     int       `json:"total"`
	PerDay    float64   `json:"per_day"`  // Total over the period's length in days
	PerHour   float64   `json:"per_hour"` // Total over the period's length in hours
	PeakHour  time.Time `json:"peak_hour,omitzero"`
	PeakCount int       `json:"peak_count"`
	Daily     []DayAuth `json:"daily"`
	Hourly    Matrix    `json:"hourly"` // days × hours 00–23 (UTC)
	Lockout   Lockout   `json:"lockout"`
}

// DayAuth is one day's login outcomes.
type DayAuth struct {
	Day          string  `json:"day"`
	Failures     int     `json:"failures"`
	Successes    int     `json:"successes"`
	FailureShare float64 `json:"failure_share"` // percent of login events that failed, one decimal
}

// Logins is the successful-login section: SUCCESSFUL_LOGIN events.
type Logins struct {
	Total         int        `json:"total"`
	Users         int        `json:"users"` // distinct accounts (as lockouts fold them)
	UsersOverflow bool       `json:"users_overflow,omitempty"`
	ByHour        []int      `json:"by_hour"` // hour of day 00–23 UTC
	ByCountry     []KeyCount `json:"by_country"`
	Located       int        `json:"located"` // logins that carry a country
}

// KeyCount is a count under a name.
type KeyCount struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// Unknown is the country of logins the GeoIP database did not place.
const Unknown = "(unknown)"

// Incidents are the events other than logins and admin actions.
type Incidents struct {
	Total      int    `json:"total"`
	BySeverity Matrix `json:"by_severity"` // days × LOW, MEDIUM, HIGH, CRITICAL
	ByType     Matrix `json:"by_type"`     // days × the incident types that occurred
}

// dataTypes are the data-access section's columns.
var dataTypes = []detect.Type{detect.BulkExport, detect.DataAccessAnomaly, detect.SensitiveDataAccess}

var severityNames = []string{"LOW", "MEDIUM", "HIGH", "CRITICAL"}

// isIncident: every event but logins and operators' actions.
func isIncident(t detect.Type) bool {
	return t != detect.SuccessfulLogin && t != detect.FailedLogin && t != detect.AdminAction
}

// tally counts events as they are read.
type tally struct {
	from, to  time.Time
	start     time.Time // midnight UTC of From's day
	days      int
	types     map[detect.Type]*Severities
	failed    [][24]int
	success   []int
	succHour  [24]int
	countries map[string]int
	users     *distinct
	data      [][3]int
	incSev    [][4]int
	incType   map[detect.Type][]int
	offenders *offenderTally
	actions   *actionTally
}

func newTally(from, to time.Time) *tally {
	start := from.Truncate(day)
	days := int((to.Add(-time.Nanosecond).Truncate(day).Sub(start))/day) + 1
	return &tally{
		from: from, to: to, start: start, days: days,
		types:     map[detect.Type]*Severities{},
		failed:    make([][24]int, days),
		success:   make([]int, days),
		countries: map[string]int{},
		users:     newDistinct(),
		data:      make([][3]int, days),
		incSev:    make([][4]int, days),
		incType:   map[detect.Type][]int{},
		offenders: newOffenderTally(),
		actions:   &actionTally{},
	}
}

func (t *tally) add(e detect.Event) {
	d := int(e.Time.UTC().Sub(t.start) / day)
	if d < 0 || d >= t.days {
		return // scan keeps events inside the period: cannot happen
	}
	s := t.types[e.Type]
	if s == nil {
		s = &Severities{}
		t.types[e.Type] = s
	}
	s.add(e.Severity)
	switch e.Type {
	case detect.FailedLogin:
		t.failed[d][e.Time.UTC().Hour()]++
	case detect.SuccessfulLogin:
		t.success[d]++
		t.succHour[e.Time.UTC().Hour()]++
		c := e.Country
		if c == "" {
			c = Unknown
		}
		if _, ok := t.countries[c]; ok || len(t.countries) < MaxSubjects {
			t.countries[c]++
		}
		t.users.add(userKey(e.User))
	}
	for i, dt := range dataTypes {
		if e.Type == dt {
			t.data[d][i]++
		}
	}
	if isIncident(e.Type) {
		if e.Severity >= detect.Low && e.Severity <= detect.Critical {
			t.incSev[d][e.Severity-detect.Low]++
		}
		row := t.incType[e.Type]
		if row == nil {
			row = make([]int, t.days)
			t.incType[e.Type] = row
		}
		row[d]++
	}
	t.offenders.add(e)
	t.actions.add(e)
}

func (t *tally) dayLabel(i int) string {
	return t.start.Add(time.Duration(i) * day).Format(time.DateOnly)
}

// fill writes the counts into r's sections.
func (t *tally) fill(r *Report) {
	r.Summary.Days = t.days
	for _, typ := range detect.Types {
		if s := t.types[typ]; s != nil {
			r.Summary.ByType = append(r.Summary.ByType, TypeCount{Type: typ, Total: s.Total(), Severities: *s})
			r.Summary.Events += s.Total()
			r.Summary.Severities.Low += s.Low
			r.Summary.Severities.Medium += s.Medium
			r.Summary.Severities.High += s.High
			r.Summary.Severities.Critical += s.Critical
		}
	}
	t.fillAuth(r)
	r.Logins = Logins{ByHour: t.succHour[:], Users: t.users.n(), UsersOverflow: t.users.overflow}
	for i := range t.success {
		r.Logins.Total += t.success[i]
	}
	for c, n := range t.countries {
		r.Logins.ByCountry = append(r.Logins.ByCountry, KeyCount{c, n})
		if c != Unknown {
			r.Logins.Located += n
		}
	}
	sortCounts(r.Logins.ByCountry)
	r.DataAccess = t.matrix(typeNames(dataTypes), func(d, c int) int { return t.data[d][c] })
	r.Incidents.BySeverity = t.matrix(severityNames, func(d, c int) int { return t.incSev[d][c] })
	var incTypes []detect.Type
	for _, typ := range detect.Types {
		if t.incType[typ] != nil {
			incTypes = append(incTypes, typ)
		}
	}
	r.Incidents.ByType = t.matrix(typeNames(incTypes), func(d, c int) int { return t.incType[incTypes[c]][d] })
	r.Incidents.Total = r.Incidents.ByType.Total
	r.Offenders = t.offenders.top()
	r.Actions = t.actions.result()
	r.FailedAuth.Lockout = t.actions.lockout.result()
}

func (t *tally) fillAuth(r *Report) {
	a := &r.FailedAuth
	hours := make([]string, 24)
	for h := range hours {
		hours[h] = twoDigits(h)
	}
	a.Hourly = t.matrix(hours, func(d, c int) int { return t.failed[d][c] })
	a.Total = a.Hourly.Total
	for d := range t.days {
		row := a.Hourly.Rows[d]
		for h, n := range row.Cells {
			if n > a.PeakCount {
				a.PeakCount, a.PeakHour = n, t.start.Add(time.Duration(d)*day+time.Duration(h)*time.Hour)
			}
		}
		da := DayAuth{Day: row.Label, Failures: row.Total, Successes: t.success[d]}
		if all := da.Failures + da.Successes; all > 0 {
			da.FailureShare = round(100*float64(da.Failures)/float64(all), 1)
		}
		a.Daily = append(a.Daily, da)
	}
	hoursInPeriod := t.to.Sub(t.from).Hours()
	a.PerHour = round(float64(a.Total)/hoursInPeriod, 2)
	a.PerDay = round(float64(a.Total)/(hoursInPeriod/24), 2)
}

// matrix builds a days × columns table from cell(day, column).
func (t *tally) matrix(cols []string, cell func(d, c int) int) Matrix {
	m := Matrix{Columns: cols, Totals: make([]int, len(cols))}
	if m.Columns == nil {
		m.Columns = []string{}
	}
	for d := range t.days {
		row := Row{Label: t.dayLabel(d), Cells: make([]int, len(cols))}
		for c := range cols {
			n := cell(d, c)
			row.Cells[c] = n
			row.Total += n
			m.Totals[c] += n
		}
		m.Total += row.Total
		m.Rows = append(m.Rows, row)
	}
	return m
}

func typeNames(ts []detect.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// sortCounts orders by count, largest first, then by key.
func sortCounts(kc []KeyCount) {
	sort.Slice(kc, func(i, j int) bool {
		if kc[i].Count != kc[j].Count {
			return kc[i].Count > kc[j].Count
		}
		return kc[i].Key < kc[j].Key
	})
}

// userKey is the account as lockouts fold it, or the name as written when
// it has no canonical form.
func userKey(u string) string {
	if n := detect.NormalizeUser(u); n != "" {
		return n
	}
	return u
}

// distinct counts distinct keys up to MaxSubjects.
type distinct struct {
	seen     map[string]struct{}
	overflow bool
}

func newDistinct() *distinct { return &distinct{seen: map[string]struct{}{}} }

func (d *distinct) add(k string) {
	if k == "" {
		return
	}
	if _, ok := d.seen[k]; !ok {
		if len(d.seen) >= MaxSubjects {
			d.overflow = true
			return
		}
		d.seen[k] = struct{}{}
	}
}

func (d *distinct) n() int { return len(d.seen) }
