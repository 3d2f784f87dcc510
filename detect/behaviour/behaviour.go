// Package behaviour is where a login and a session meet what Vigil has
// learned about people: it locates logins, scores their risk before the
// app answers (refusing or flagging them for a second factor), teaches the
// per-user profiles from successful logins only, hands failures to the
// coordinated-attack detectors, and watches verified sessions move.
//
// It composes the families that know the details (detect/geo, detect/risk,
// detect/coordinated) through the small interfaces below, so each stays
// testable on its own and this package only decides when each one runs.
package behaviour

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/risk"
)

// Places judges where users log in from and where sessions are used
// (detect/geo).
type Places interface {
	Login(ctx context.Context, f detect.Facts, now time.Time)
	Session(ctx context.Context, f detect.Facts, jti string, expires, now time.Time)
}

// Scorer is the login risk model (detect/risk).
type Scorer interface {
	Score(ctx context.Context, o risk.Observation) (risk.Assessment, error)
	Learn(ctx context.Context, o risk.Observation) error
}

// Coordinated sees every failed login (detect/coordinated).
type Coordinated interface {
	Failure(ctx context.Context, f detect.Facts, user string, now time.Time)
}

// Thresholds are the risk scores (0–100) at which a login is reported,
// challenged and refused; 0 disables a step.
type Thresholds struct {
	Alert, Challenge, Block int
	// Header carries the score of a challenged login to the app.
	Header string
}

// Options configure a Detector. Nil parts are not used.
type Options struct {
	Locator     detect.Locator
	Places      Places
	Risk        Scorer
	Thresholds  Thresholds
	Coordinated Coordinated
	Actor       detect.Actor
	Pool        *detect.Pool
	MonitorOnly bool
	Logger      *slog.Logger
	// Site names the site in the coordinated detectors' site-wide counts
	// (empty: the request's site, which is its Host header when the site
	// has no name, and an attacker could then split the counts).
	Site string
}

// Detector is a check (before the upstream) and an observer (after it).
type Detector struct {
	opt    Options
	header string // canonical form of Thresholds.Header
}

// DefaultRiskHeader is the header a challenged login carries its score in.
const DefaultRiskHeader = "X-Vigil-Risk"

// New returns a detector. A Risk scorer needs a Pool and an Actor, as do
// Places and Coordinated.
func New(opt Options) (*Detector, error) {
	if (opt.Places != nil || opt.Risk != nil || opt.Coordinated != nil) && (opt.Pool == nil || opt.Actor == nil) {
		return nil, errors.New("behaviour: a pool and an actor are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Detector{opt: opt}
	if opt.Risk != nil {
		if opt.Thresholds.Header == "" {
			opt.Thresholds.Header = DefaultRiskHeader
		}
		d.header = http.CanonicalHeaderKey(opt.Thresholds.Header)
		d.opt = opt
	}
	return d, nil
}

var errRisky = errors.New("login refused: risk too high")

// Check strips a client-sent risk header from every request (only Vigil
// may tell the app a login is risky), locates a login attempt, and scores
// it: at or above Block it is refused with 403, at or above Challenge it
// reaches the app with the score in the risk header.
func (d *Detector) Check(req *detect.Request) *detect.Refusal {
	if d.header != "" {
		delete(req.HTTP.Header, d.header)
	}
	l := req.Login
	if l == nil {
		return nil
	}
	if d.opt.Risk == nil || l.User == "" {
		d.locate(req)
		return nil
	}
	var obs risk.Observation
	var a risk.Assessment
	var err error
	if s, ok := l.Ahead.(*scoring); ok {
		<-s.done
		obs, a, err = s.obs, s.a, s.err
	} else {
		d.locate(req)
		obs = observation(req)
		a, err = d.opt.Risk.Score(context.WithoutCancel(req.HTTP.Context()), obs)
	}
	if err != nil {
		d.opt.Logger.Warn("scoring login risk", "error", err)
		return nil
	}
	l.Risk = a.Score
	t := d.opt.Thresholds
	if reached(a.Score, t.Alert) || reached(a.Score, t.Block) {
		l.RiskDetails = a.Details(obs)
	}
	if reached(a.Score, t.Block) {
		if d.opt.MonitorOnly {
			l.RiskDetails["monitor_only"] = true
		} else {
			l.RiskDetails["action"] = "block"
			d.suspicious(req.Facts(), l.RiskDetails, req.Start)
			return &detect.Refusal{Status: http.StatusForbidden, Err: errRisky, Action: "risk_block"}
		}
	}
	if reached(a.Score, t.Challenge) {
		req.HTTP.Header[d.header] = []string{strconv.Itoa(a.Score)}
		if l.RiskDetails != nil {
			l.RiskDetails["action"] = "challenge"
		}
	}
	return nil
}

func reached(score, threshold int) bool { return threshold > 0 && score >= threshold }

// locate sets where a login comes from, when the site locates logins.
func (d *Detector) locate(req *detect.Request) {
	if d.opt.Locator != nil && req.IP.IsValid() {
		req.Login.Place = d.opt.Locator.Locate(req.IP)
	}
}

// scoring is a risk score being read on another goroutine (Ahead).
type scoring struct {
	done chan struct{}
	obs  risk.Observation
	a    risk.Assessment
	err  error
}

// Ahead starts scoring a login whose account the login detector has just
// read, before that detector reserves the attempt (login.Options.Ahead):
// the risk profile's round trip then overlaps the reservation's, and a
// scored login waits for one round trip instead of two. Check waits for
// the score. The goroutine holds only copies of the request's facts, so a
// login refused before Check runs (a lockout) leaves nothing behind.
func (d *Detector) Ahead(req *detect.Request) {
	l := req.Login
	if d.opt.Risk == nil || l == nil || l.User == "" {
		return
	}
	d.locate(req)
	s := &scoring{done: make(chan struct{}), obs: observation(req)}
	ctx := context.WithoutCancel(req.HTTP.Context())
	go func() {
		defer close(s.done)
		s.a, s.err = d.opt.Risk.Score(ctx, s.obs)
	}()
	l.Ahead = s
}

// Observe acts on the login detector's verdict (it runs after it) and on a
// verified session seen from a new address. All of it runs on the pool.
func (d *Detector) Observe(req *detect.Request, a detect.Answer) {
	if id := req.Identity; id != nil && d.opt.Places != nil && req.IP.IsValid() && id.SeenFrom(req.IP) {
		d.session(req, a.At())
	}
	l := req.Login
	if l == nil {
		return
	}
	switch l.Outcome {
	case detect.OutcomeSuccess:
		d.success(req, a.At())
	case detect.OutcomeFailure:
		if d.opt.Coordinated != nil {
			f, user, now := req.Facts(), l.User, a.At()
			if d.opt.Site != "" {
				f.Site = d.opt.Site
			}
			d.opt.Pool.Go(func() { d.opt.Coordinated.Failure(context.Background(), f, user, now) })
		}
	}
}

// success teaches the profiles and reports a risky login.
func (d *Detector) success(req *detect.Request, now time.Time) {
	if d.opt.Places == nil && d.opt.Risk == nil {
		return
	}
	f, l := req.Facts(), req.Login
	var obs risk.Observation
	if d.opt.Risk != nil {
		obs = observation(req)
		obs.Time = now
	}
	// the request is recycled once it ends: take what the job needs now
	details, score := l.RiskDetails, l.Risk
	d.opt.Pool.Go(func() {
		ctx := context.Background()
		if details != nil && reached(score, d.opt.Thresholds.Alert) {
			d.suspicious(f, details, now)
		}
		if d.opt.Places != nil {
			d.opt.Places.Login(ctx, f, now)
		}
		if d.opt.Risk != nil {
			if err := d.opt.Risk.Learn(ctx, obs); err != nil {
				d.opt.Logger.Debug("learning a login", "error", err)
			}
		}
	})
}

// suspicious reports a risky login.
func (d *Detector) suspicious(f detect.Facts, details detect.Details, now time.Time) {
	f.Session, f.SessionKey = "", "" // about the attempt, not a session it carries
	d.opt.Actor.Act(context.Background(), detect.Finding{Type: detect.SuspiciousLogin, Time: now, Facts: f, Details: details})
}

// session hands a session seen from a new address to Places, located off
// the request path. A token without an ID is known by its user and issue
// time, which is as precise as the revocations Vigil can make of it.
func (d *Detector) session(req *detect.Request, now time.Time) {
	f, id := req.Facts(), req.Identity
	jti := id.JTI
	if jti == "" {
		jti = "iat:" + id.UserKey + ":" + strconv.FormatInt(id.Issued.Unix(), 10)
	}
	d.opt.Pool.Go(func() {
		if d.opt.Locator != nil {
			f.Place = d.opt.Locator.Locate(f.IP)
		}
		d.opt.Places.Session(context.Background(), f, jti, id.Expires, now)
	})
}

// observation is the login as the risk model sees it.
func observation(req *detect.Request) risk.Observation {
	l := req.Login
	o := risk.Observation{User: detect.AccountKey(l.User), IP: req.IP, Country: l.Place.Country, ASN: uint32(l.Place.ASN), Time: req.Start}
	if ua := req.HTTP.Header["User-Agent"]; len(ua) > 0 {
		o.UserAgent = ua[0]
	}
	return o
}
