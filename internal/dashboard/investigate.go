package dashboard

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/geo"
	"github.com/vigilsec/vigil/respond"
)

// Bounds of an investigation report: the newest events read for it.
const (
	ReportEvents = 200 // the subject's events listed
	ReportLogins = 50  // its logins listed
	reportData   = 1000
)

// Login is one login attempt, from a login event.
type Login struct {
	Time    time.Time   `json:"time"`
	Type    detect.Type `json:"type"`
	User    string      `json:"user,omitempty"`
	IP      string      `json:"ip,omitempty"`
	Country string      `json:"country,omitempty"`
	City    string      `json:"city,omitempty"`
	ASN     uint        `json:"asn,omitempty"`
	Risk    any         `json:"risk_score,omitempty"`
	Site    string      `json:"site,omitempty"`
}

// DataVolume sums what a subject took through the data-access events.
type DataVolume struct {
	Bytes  int64     `json:"bytes"`
	Events int       `json:"events"`
	Since  time.Time `json:"since,omitzero"`
}

// UserReport is GET /vigil/users/{user}.
type UserReport struct {
	User      string             `json:"user"`
	Decisions []respond.Decision `json:"decisions"`
	Logins    []Login            `json:"logins"`
	Places    geo.Profile        `json:"places"`
	Addresses []Count            `json:"addresses"`
	Data      DataVolume         `json:"data"`
	Counts    map[string]int     `json:"counts"`
	Events    []detect.Event     `json:"events"`
}

// IPReport is GET /vigil/ips/{ip}.
type IPReport struct {
	IP        string             `json:"ip"`
	Network   string             `json:"network"`
	Place     *detect.Place      `json:"place,omitempty"`
	Decisions []respond.Decision `json:"decisions"`
	Logins    []Login            `json:"logins"`
	Users     []Count            `json:"users"`
	Counts    map[string]int     `json:"counts"`
	Events    []detect.Event     `json:"events"`
}

var loginTypes = []detect.Type{detect.SuccessfulLogin, detect.FailedLogin, detect.SuspiciousLogin}

// Investigate builds the reports from a store.
type Investigate struct {
	Store *respond.Store
	// Locate, when set, places an address (the app's GeoIP).
	Locate func(netip.Addr) detect.Place
	Now    time.Time
}

// User reports on one account: its active locks and revocations, recent
// logins with place and risk, the places Vigil learned, the addresses it
// used, its data volume and its events.
func (in Investigate) User(ctx context.Context, user string) (UserReport, error) {
	if _, err := detect.CheckUsername(user); err != nil || len(user) > detect.MaxUsernameBytes {
		return UserReport{}, fmt.Errorf("not a usable user name")
	}
	rep := UserReport{User: detect.Display(user), Counts: map[string]int{}}
	var err error
	if rep.Decisions, err = in.decisions(ctx, func(d respond.Decision) bool {
		return (d.Kind == respond.Lock || d.Kind == respond.RevokeUser) && detect.AccountKey(d.Target) == detect.AccountKey(user)
	}); err != nil {
		return rep, err
	}
	page, err := in.Store.Events.Query(ctx, respond.EventFilter{User: user, Limit: ReportEvents})
	if err != nil {
		return rep, fmt.Errorf("querying events: %w", err)
	}
	rep.Events = nonNil(page.Events)
	addrs := map[string]int{}
	for _, e := range rep.Events {
		rep.Counts[string(e.Type)]++
		if e.IP != "" {
			addrs[e.IP]++
		}
	}
	rep.Addresses = top(addrs)
	if rep.Logins, err = in.logins(ctx, respond.EventFilter{User: user}); err != nil {
		return rep, err
	}
	if rep.Data, err = in.data(ctx, user); err != nil {
		return rep, err
	}
	places, err := geo.New(geo.Options{Profiles: in.Store.Profiles, Actor: noActor{}, Remember: geo.MaxRemember, SessionCache: 1})
	if err != nil {
		return rep, err
	}
	rep.Places, err = places.Profile(ctx, user)
	return rep, err
}

// IP reports on one address: the blocks covering it, its logins, the
// users seen from it and its events.
func (in Investigate) IP(ctx context.Context, ip string) (IPReport, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return IPReport{}, fmt.Errorf("%q is not an IP address", ip)
	}
	a = a.Unmap().WithZone("")
	rep := IPReport{IP: a.String(), Network: Network(a.String()), Counts: map[string]int{}}
	if rep.Decisions, err = in.decisions(ctx, func(d respond.Decision) bool {
		p, ok := blockPrefix(d)
		return ok && p.Contains(a)
	}); err != nil {
		return rep, err
	}
	page, err := in.Store.Events.Query(ctx, respond.EventFilter{IP: rep.IP, Limit: ReportEvents})
	if err != nil {
		return rep, fmt.Errorf("querying events: %w", err)
	}
	rep.Events = nonNil(page.Events)
	users := map[string]int{}
	for _, e := range rep.Events {
		rep.Counts[string(e.Type)]++
		if e.User != "" {
			users[e.User]++
		}
		if rep.Place == nil && (e.Country != "" || e.ASN != 0) {
			rep.Place = &detect.Place{Country: e.Country, City: e.City, ASN: e.ASN}
		}
	}
	if in.Locate != nil {
		if p := in.Locate(a); p != (detect.Place{}) {
			rep.Place = &p
		}
	}
	rep.Users = top(users)
	rep.Logins, err = in.logins(ctx, respond.EventFilter{IP: rep.IP})
	return rep, err
}

func (in Investigate) decisions(ctx context.Context, keep func(respond.Decision) bool) ([]respond.Decision, error) {
	ds, err := in.Store.Decisions.List(ctx, in.Now)
	if err != nil {
		return nil, fmt.Errorf("listing decisions: %w", err)
	}
	out := []respond.Decision{}
	for _, d := range respond.Listing(ds, respond.DecisionFilter{}) {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (in Investigate) logins(ctx context.Context, f respond.EventFilter) ([]Login, error) {
	f.Types, f.Limit = loginTypes, ReportLogins
	page, err := in.Store.Events.Query(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("querying logins: %w", err)
	}
	out := make([]Login, 0, len(page.Events))
	for _, e := range page.Events {
		out = append(out, Login{Time: e.Time, Type: e.Type, User: e.User, IP: e.IP, Country: e.Country,
			City: e.City, ASN: e.ASN, Risk: e.Details["risk_score"], Site: e.Site})
	}
	return out, nil
}

// data sums the user's data-access events of the last 30 days (the
// newest reportData of them).
func (in Investigate) data(ctx context.Context, user string) (DataVolume, error) {
	since := in.Now.Add(-30 * 24 * time.Hour)
	page, err := in.Store.Events.Query(ctx, respond.EventFilter{User: user, Since: since, Limit: reportData,
		Types: []detect.Type{detect.BulkExport, detect.SensitiveDataAccess, detect.DataAccessAnomaly}})
	if err != nil {
		return DataVolume{}, fmt.Errorf("querying data access: %w", err)
	}
	v := DataVolume{Events: len(page.Events), Since: since.UTC()}
	for _, e := range page.Events {
		v.Bytes += EventBytes(e)
	}
	return v, nil
}

// blockPrefix is the range a block covers.
func blockPrefix(d respond.Decision) (netip.Prefix, bool) {
	if d.Kind != respond.Block {
		return netip.Prefix{}, false
	}
	if p, err := netip.ParsePrefix(d.Target); err == nil {
		return p, true
	}
	a, err := netip.ParseAddr(d.Target)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func nonNil(evs []detect.Event) []detect.Event {
	if evs == nil {
		return []detect.Event{}
	}
	return slices.Clip(evs)
}

// noActor takes no action: the geo detector is used here only to read.
type noActor struct{}

func (noActor) Act(context.Context, detect.Finding) detect.Outcome { return detect.Outcome{} }
