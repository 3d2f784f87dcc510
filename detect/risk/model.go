// Package risk scores how unusual a login is for its user: the model of
// Freeman, Jain, Dürmuth, Biggio and Giacinto ("Who Are You? A Statistical
// Approach to Measuring User Authenticity", NDSS 2016), as Wiefling et al.
// evaluated it on 31 million real logins (ACM TOPS 2022).
//
// The risk of a login with feature values x_1 … x_n for user u is
//
//	risk = Π_k p(x_k) / p(x_k | u)
//
// where p(x_k) is the value's frequency over everyone's successful logins
// (how likely an attacker, who looks like the population, shows it) and
// p(x_k | u) its frequency in u's own history, smoothed so that a value u
// never used keeps a small probability. The score is 10·log10(risk) in
// decibans, clamped to 0–100. docs/risk.md documents the features, the
// smoothing, the score scale, the bounds and the evaluation.
package risk

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Options configure a Model. Zero fields take the defaults.
type Options struct {
	// HalfLife is how fast what a profile learned fades (default 60 days,
	// between 1 hour and 180 days).
	HalfLife time.Duration
	// Learn is the number of successful logins before a user's profile
	// counts (default 5): until then Score is 0 and Learned false.
	Learn int
	// K bounds the values each per-user table keeps (default 16); the hour
	// histogram keeps its 168 bins.
	K int
	// GlobalK bounds the values each global table keeps (default 65,536;
	// countries and device classes never reach it).
	GlobalK int
	// Forget drops a profile that has learned nothing for this long
	// (default 8 half-lives, when what it held has faded to 1/256).
	Forget time.Duration
	// GlobalEvery is the least time between two contributions of one user
	// to the global tables (default 1 hour).
	GlobalEvery time.Duration
	// MaxBonus bounds, in decibans, how much one familiar value may lower
	// the risk (default 20: a factor of 100).
	MaxBonus float64
	// Symmetric lets every feature lower the risk, as in Freeman et al.
	// By default only the address and the network (IP, ASN), which an
	// attacker cannot choose, may: a familiar country, browser or hour is
	// what a targeted attacker copies, so it never excuses a new network.
	// See docs/risk.md, "One-sided features".
	Symmetric bool
}

// Defaults.
const (
	DefaultHalfLife    = 60 * 24 * time.Hour
	DefaultLearn       = 5
	DefaultK           = 16
	DefaultGlobalK     = 1 << 16
	DefaultGlobalEvery = time.Hour
	DefaultMaxBonus    = 20.0
	maxHalfLife        = 180 * 24 * time.Hour
	maxK               = 64
)

// The thresholds docs/risk.md proposes (see its evaluation): challenge
// at 16 asks for a second factor on about 1 % of legitimate logins; alert
// at 30 reports the logins that look like a new country or a new device
// on a new network; block at 80 refuses what at most 0.001 % of the
// evaluation's legitimate logins reached (scripts, new devices on new
// networks).
const (
	DefaultChallenge = 16
	DefaultAlert     = 30
	DefaultBlock     = 80
)

// Model scores logins against the tables in a Store. It is safe for
// concurrent use; it keeps no state of its own.
type Model struct {
	store  Store
	opt    Options
	tables Tables
}

// New returns a model over store.
func New(store Store, opt Options) (*Model, error) {
	if store == nil {
		return nil, errors.New("risk: no store")
	}
	if err := opt.fill(); err != nil {
		return nil, err
	}
	m := &Model{store: store, opt: opt}
	m.tables = Tables{HalfLife: opt.HalfLife, UserTTL: opt.Forget, GlobalEvery: opt.GlobalEvery}
	for f := range NumFeatures {
		m.tables.UserK[f], m.tables.GlobalK[f] = opt.K, opt.GlobalK
	}
	m.tables.UserK[Hour], m.tables.GlobalK[Hour] = HoursPerWeek, HoursPerWeek
	return m, nil
}

func (o *Options) fill() error {
	if o.HalfLife == 0 {
		o.HalfLife = DefaultHalfLife
	}
	if o.Learn == 0 {
		o.Learn = DefaultLearn
	}
	if o.K == 0 {
		o.K = DefaultK
	}
	if o.GlobalK == 0 {
		o.GlobalK = DefaultGlobalK
	}
	if o.Forget == 0 {
		o.Forget = 8 * o.HalfLife
	}
	if o.GlobalEvery == 0 {
		o.GlobalEvery = DefaultGlobalEvery
	}
	if o.MaxBonus == 0 {
		o.MaxBonus = DefaultMaxBonus
	}
	switch {
	case o.HalfLife < time.Hour || o.HalfLife > maxHalfLife:
		return fmt.Errorf("risk: half-life %v outside 1h–180 days", o.HalfLife)
	case o.Learn < 1:
		return fmt.Errorf("risk: learn %d is not positive", o.Learn)
	case o.K < 1 || o.K > maxK:
		return fmt.Errorf("risk: K %d outside 1–%d", o.K, maxK)
	case o.GlobalK < 16:
		return fmt.Errorf("risk: global K %d below 16", o.GlobalK)
	case o.Forget < time.Hour || o.GlobalEvery < 0 || o.MaxBonus < 0:
		return errors.New("risk: forget below 1h, or a negative global interval or bonus")
	}
	return nil
}

// Options returns the options in effect, defaults filled in.
func (m *Model) Options() Options { return m.opt }

// Score assesses a login before the app sees it. It reads the store and
// writes nothing: only Learn teaches.
func (m *Model) Score(ctx context.Context, o Observation) (Assessment, error) {
	var a Assessment
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	q := m.query(&o, &a.Agent)
	c, err := m.store.Read(ctx, &q)
	if err != nil {
		return a, fmt.Errorf("risk: reading the profile: %w", err)
	}
	m.assess(&a, &q, &c)
	return a, nil
}

// Learn teaches the user's profile (and the global tables) a successful
// login. Call it for successes only: an attacker's failures must never
// make their address or device familiar. A login the app challenged
// should be learned only once the user passed the challenge.
func (m *Model) Learn(ctx context.Context, o Observation) error {
	var agent Agent
	q := m.query(&o, &agent)
	if err := m.store.Learn(ctx, &q); err != nil {
		return fmt.Errorf("risk: learning the login: %w", err)
	}
	return nil
}

// query turns an observation into the keys the store knows, and parses
// its User-Agent into agent.
func (m *Model) query(o *Observation, agent *Agent) Query {
	q := Query{User: o.User, Now: o.Time, Tables: &m.tables}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	if o.IP.IsValid() {
		q.Keys[IP], q.Has[IP] = keyIP(o.IP, o.ASN), true
	}
	if o.ASN != 0 {
		q.Keys[ASN], q.Has[ASN] = keyASN(o.ASN), true
	}
	if o.Country != "" {
		q.Keys[Country], q.Has[Country] = keyCountry(o.Country), true
	}
	*agent = ParseAgent(o.UserAgent)
	q.Keys[Browser], q.Keys[OS], q.Keys[Device] = agent.keys()
	q.Has[Browser], q.Has[OS], q.Has[Device] = true, true, true
	versionNear(&q.Near, q.Keys[Browser])
	h := hourOfWeek(q.Now)
	q.Keys[Hour], q.Has[Hour] = uint64(h), true
	hourNear(&q.Near, h)
	return q
}
