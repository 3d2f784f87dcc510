package report

import (
	"net/netip"
	"sort"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Offenders are the subjects with the most failed logins and incidents.
type Offenders struct {
	IPs      []Offender `json:"ips"`
	Users    []Offender `json:"users"`
	Networks []Offender `json:"networks"` // IPv4 /24, IPv6 /64
	Limit    int        `json:"limit"`
	Tracked  int        `json:"tracked"` // distinct subjects tracked per kind (MaxSubjects)
	// Subjects are how many distinct subjects of each kind offended.
	Subjects map[string]int `json:"subjects"`
	// Untracked counts, per kind, the events of subjects beyond
	// MaxSubjects (a very wide attack): they are in every other figure,
	// not in this section.
	Untracked map[string]int `json:"untracked"`
}

// Offender is one subject's record over the period.
type Offender struct {
	Subject      string          `json:"subject"`
	Events       int             `json:"events"`        // FailedLogins + Incidents
	FailedLogins int             `json:"failed_logins"` // FAILED_LOGIN
	Incidents    int             `json:"incidents"`     // every other type but SUCCESSFUL_LOGIN and ADMIN_ACTION
	MaxSeverity  detect.Severity `json:"max_severity"`
	Types        []detect.Type   `json:"types"` // in documentation order
	Country      string          `json:"country,omitempty"`
	First        time.Time       `json:"first"`
	Last         time.Time       `json:"last"`
}

// offends: the events that count against their subject.
func offends(t detect.Type) bool { return t != detect.SuccessfulLogin && t != detect.AdminAction }

type offenderTally struct {
	ips, users, nets map[string]*Offender
	untracked        map[string]int
}

func newOffenderTally() *offenderTally {
	return &offenderTally{ips: map[string]*Offender{}, users: map[string]*Offender{}, nets: map[string]*Offender{},
		untracked: map[string]int{}}
}

func (o *offenderTally) add(e detect.Event) {
	if !offends(e.Type) {
		return
	}
	if e.User != "" {
		o.count(o.users, "users", userKey(e.User), e)
	}
	if a, err := netip.ParseAddr(e.IP); err == nil {
		a = a.Unmap().WithZone("")
		o.count(o.ips, "ips", a.String(), e)
		o.count(o.nets, "networks", network(a), e)
	}
}

// network is the /24 of an IPv4 address, the /64 of an IPv6 one.
func network(a netip.Addr) string {
	bits := 24
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

func (o *offenderTally) count(m map[string]*Offender, kind, key string, e detect.Event) {
	r := m[key]
	if r == nil {
		if len(m) >= MaxSubjects {
			o.untracked[kind]++
			return
		}
		r = &Offender{Subject: key, First: e.Time.UTC(), Last: e.Time.UTC()}
		m[key] = r
	}
	r.Events++
	if e.Type == detect.FailedLogin {
		r.FailedLogins++
	} else {
		r.Incidents++
	}
	r.MaxSeverity = max(r.MaxSeverity, e.Severity)
	if e.Time.Before(r.First) {
		r.First = e.Time.UTC()
	}
	if !e.Time.Before(r.Last) {
		r.Last = e.Time.UTC()
		if e.Country != "" {
			r.Country = e.Country
		}
	} else if r.Country == "" {
		r.Country = e.Country
	}
	for _, t := range r.Types {
		if t == e.Type {
			return
		}
	}
	r.Types = append(r.Types, e.Type)
}

func (o *offenderTally) top() Offenders {
	return Offenders{
		IPs: topOf(o.ips), Users: topOf(o.users), Networks: topOf(o.nets), Limit: TopN, Tracked: MaxSubjects,
		Subjects:  map[string]int{"ips": len(o.ips), "users": len(o.users), "networks": len(o.nets)},
		Untracked: o.untracked,
	}
}

// topOf returns the TopN subjects by events, then severity, then name.
func topOf(m map[string]*Offender) []Offender {
	all := make([]*Offender, 0, len(m))
	for _, r := range m {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Events != b.Events {
			return a.Events > b.Events
		}
		if a.MaxSeverity != b.MaxSeverity {
			return a.MaxSeverity > b.MaxSeverity
		}
		return a.Subject < b.Subject
	})
	out := make([]Offender, 0, min(TopN, len(all)))
	for _, r := range all[:min(TopN, len(all))] {
		o := *r
		sort.Slice(o.Types, func(i, j int) bool { return typeOrder(o.Types[i]) < typeOrder(o.Types[j]) })
		out = append(out, o)
	}
	return out
}

func typeOrder(t detect.Type) int {
	for i, known := range detect.Types {
		if t == known {
			return i
		}
	}
	return len(detect.Types)
}
