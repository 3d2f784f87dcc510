package detect

import (
	"net/http"
	"net/netip"
	"time"
)

// Request is what Vigil knows about one request. The handler builds it
// once; the checks fill it in as they run (the login route, the verified
// session). Detectors read it on the request path only: background work
// takes Facts, an immutable snapshot.
type Request struct {
	HTTP *http.Request
	// Answer is the response's header map, for a check that adds to the
	// answer while letting the request through (a stale session cookie
	// cleared on a login).
	Answer http.Header
	IP     netip.Addr // Caddy's client_ip (trusted_proxies honoured); invalid when unknown
	Site   string     // the configured site name; empty: the request's Host
	Start  time.Time

	// Identity is the verified, unrevoked session; nil when anonymous.
	Identity *Identity
	// Login is set on a login route.
	Login *Login
	// SessionDenial is the session refusal decided while identifying,
	// answered only after the probe checks have run: a scanner without a
	// session is still recorded and blocked.
	SessionDenial *Refusal

	// ExportGroup is the data detector's note to itself between its check
	// and its tap: 1 + the matched export group, -1 for none, 0 when the
	// check has not looked.
	ExportGroup int

	login Login // Login points here: marking a login costs no allocation
}

// MarkLogin sets Login for the login route at index route.
func (r *Request) MarkLogin(route int) {
	r.login = Login{Route: route}
	r.Login = &r.login
}

// Login is what a login route's check learnt of the attempt.
type Login struct {
	Route int    // index of the matched route, for the login detector
	User  string // the account the request names; "" when none could be read
	Err   error  // why no account could be read
	// Attempt is the attempt as the counters hold it, reserved before the
	// upstream answers; Counts are the counts it saw, itself included.
	Attempt  Attempt
	Counts   LoginCounts
	Reserved bool
	// Outcome is the login detector's verdict on the upstream's answer,
	// for the observers after it: OutcomeNone until then (and when the
	// upstream never answered).
	Outcome LoginOutcome
	// Place is where the attempt came from, when the site locates logins.
	Place Place
	// Risk is the attempt's risk score (0–100) when the site scores
	// logins; RiskDetails its explanation, kept only when the score is
	// worth an event.
	Risk        int
	RiskDetails Details
	// Ahead is work a later stage started once the account was read and
	// before the reservation, so that its store round trip overlaps the
	// reservation's instead of following it (login.Options.Ahead); that
	// stage waits for it. Only the stage that set it knows its type.
	Ahead any
}

// LoginOutcome is the verdict on a login attempt.
type LoginOutcome uint8

const (
	OutcomeNone LoginOutcome = iota
	OutcomeSuccess
	OutcomeFailure
)

// Net is the client's address as per-address counters and blocks key it.
func (r *Request) Net() string { return ClientNet(r.IP) }

// Facts is an immutable snapshot of a request, safe to hand to background
// work after the request ended, and the one place events are built.
type Facts struct {
	Site, Method, Path, Query, Agent string
	IP                               netip.Addr
	// Net is ClientNet(IP): what per-address counters and blocks key on.
	Net string
	// User is who the event is about: the account a login names, else the
	// verified session's user.
	User string
	// Session is the verified session's user ("" when anonymous): the only
	// user whose sessions a finding about this request may end.
	Session string
	// SessionKey is AccountKey(Session), computed once per token.
	SessionKey string
	// Place is where IP is, when a detector located it (logins); events
	// about requests that were not located are located as they are built,
	// off the request path, when the app has a GeoIP database.
	Place Place
}

// Facts takes the snapshot.
func (r *Request) Facts() Facts {
	h := r.HTTP
	f := Facts{Site: r.Site, Method: h.Method, Path: h.URL.Path, Query: h.URL.RawQuery, IP: r.IP}
	if ua := h.Header["User-Agent"]; len(ua) > 0 {
		f.Agent = ua[0]
	}
	if r.IP.IsValid() {
		f.Net = ClientNet(r.IP)
	}
	if f.Site == "" {
		f.Site = h.Host
	}
	if id := r.Identity; id != nil {
		f.User, f.Session, f.SessionKey = id.User, id.User, id.UserKey
	}
	if r.Login != nil {
		if r.Login.User != "" {
			f.User = r.Login.User
		}
		f.Place = r.Login.Place
	}
	return f
}

// NetKey is the hashed key of the client's address (or IPv6 /64).
func (f Facts) NetKey() string { return HashID("ip", f.Net) }

// Event is an event of type t about the request at now: site, user and
// address, and the request's method, path, query (secrets redacted) and
// User-Agent in its details, each shortened so no client can make an event
// large. The event takes d (may be nil), a detector's own details, as its
// details map: the caller gives it up.
func (f Facts) Event(t Type, now time.Time, d Details) Event {
	e := NewEvent(t, now)
	e.Site = Display(f.Site)
	e.User = Display(f.User)
	if f.IP.IsValid() {
		e.IP = f.IP.String()
	}
	e.Country, e.City, e.ASN = f.Place.Country, Display(f.Place.City), f.Place.ASN
	if d == nil {
		// sized for the request's details and a few of a detector's own
		d = make(Details, 8)
	}
	e.Details = d
	d["method"], d["path"] = Display(f.Method), Display(f.Path)
	if f.Query != "" {
		e.Details["query"] = Display(RedactQuery(f.Query))
	}
	if f.Agent != "" {
		e.Details["user_agent"] = Display(f.Agent)
	}
	return e
}
