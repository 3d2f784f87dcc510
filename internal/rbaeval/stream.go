package rbaeval

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Kind says who made a login.
type Kind uint8

// The kinds of login in a stream.
const (
	// Legit is the account's owner.
	Legit Kind = iota
	// Naive attackers come from anywhere (a random country, often a data
	// centre) with a script or bot user agent: credential stuffing.
	Naive
	// VPN attackers come from the victim's country through a VPN or
	// hosting provider, with a common browser's user agent.
	VPN
	// Targeted attackers know the victim's country and exact user agent
	// (phished, or read from a leaked session) and come through a
	// residential proxy in that country: another network, another
	// address; half of them at the victim's usual hours.
	Targeted
)

// Kinds are the attacker kinds, in report order.
var Kinds = []Kind{Naive, VPN, Targeted}

var kindNames = []string{"legitimate", "naive", "vpn", "targeted"}

func (k Kind) String() string { return kindNames[k] }

// Login is one login attempt of a stream: a row of the CSV.
type Login struct {
	Time      time.Time
	User      string
	IP        netip.Addr
	Country   string
	ASN       uint32
	UserAgent string
	Success   bool
	Kind      Kind
}

// Config shapes a stream. DefaultConfig documents the values.
type Config struct {
	Seed  uint64
	Users int
	Start time.Time
	Days  int
	// Warmup days pass before the evaluation window and the attacks start.
	Warmup int
	// Attacks is the number of attempts of each attacker kind.
	Attacks int
	// ThirdPlaces are each user's places other than home and work
	// (friends, cafés), used for ThirdPlaceRate of their logins.
	ThirdPlaces    int
	ThirdPlaceRate float64
	// TripsPerDay is the chance a user starts a trip on a given day.
	TripsPerDay float64
	// FailureRate is the share of legitimate logins preceded by a mistyped
	// password.
	FailureRate float64
}

// DefaultConfig is the stream of docs/risk.md: 2,000 users over 180 days,
// the last 120 of them evaluated, with 3,000 attempts of each attacker
// kind; third places for 2 % of logins, a trip every 120 days on average
// (half of them abroad), and 4 % of logins preceded by a typo.
func DefaultConfig() Config {
	return Config{
		Seed: 1, Users: 2000, Start: time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC),
		Days: 180, Warmup: 60, Attacks: 3000,
		ThirdPlaces: 3, ThirdPlaceRate: 0.02, TripsPerDay: 1.0 / 120, FailureRate: 0.04,
	}
}

// Stream is a generated stream, in time order.
type Stream struct {
	Logins []Login
	// EvalFrom starts the evaluation window (the end of the warm-up).
	EvalFrom time.Time
}

// attack is one scheduled attempt against a victim.
type attack struct {
	at   time.Time
	kind Kind
	seed uint64
}

// Generate produces the stream of cfg. The same cfg gives the same
// stream: every user and every attack draws from a generator of its own,
// seeded from cfg.Seed.
func Generate(cfg Config) Stream {
	w := newWorld()
	evalFrom := cfg.Start.Add(time.Duration(cfg.Warmup) * 24 * time.Hour)
	end := cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour)
	plan := make(map[int][]attack)
	ar := rand.New(rand.NewPCG(cfg.Seed, math.MaxUint64))
	for _, k := range Kinds {
		for range cfg.Attacks {
			at := evalFrom.Add(time.Duration(ar.Int64N(int64(end.Sub(evalFrom)))))
			v := ar.IntN(cfg.Users)
			plan[v] = append(plan[v], attack{at, k, ar.Uint64()})
		}
	}
	var out []Login
	for id := range cfg.Users {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(id)))
		u := w.newUser(r, id, &cfg)
		attacks := plan[id]
		slices.SortFunc(attacks, func(a, b attack) int { return a.at.Compare(b.at) })
		for d := range cfg.Days {
			day := cfg.Start.Add(time.Duration(d) * 24 * time.Hour)
			w.dayEvents(r, u, day, &cfg)
			out = u.logins(r, out, day, &cfg)
			for len(attacks) > 0 && attacks[0].at.Before(day.Add(24*time.Hour)) {
				out = append(out, w.attempt(u, attacks[0], evalFrom, end))
				attacks = attacks[1:]
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Login) int { return a.Time.Compare(b.Time) })
	return Stream{Logins: out, EvalFrom: evalFrom}
}

// logins appends the user's logins of one day.
func (u *user) logins(r *rand.Rand, out []Login, day time.Time, cfg *Config) []Login {
	tz := time.Duration(u.tz()) * time.Hour
	wd := day.Weekday()
	weekend := wd == time.Saturday || wd == time.Sunday
	rate := u.rate
	if weekend {
		rate *= 0.7
	}
	if u.trip != nil {
		rate *= 0.5
	}
	for range poisson(r, rate) {
		h := u.localHour(r, weekend)
		t := day.Add(time.Duration(h*float64(time.Hour)) - tz).Add(time.Duration(r.IntN(60)) * time.Second)
		dev, pl := u.where(r, !weekend, h >= 8 && h < 18, cfg)
		l := Login{Time: t, User: userID(u.id), IP: pl.addr(r), Country: pl.net.country.code,
			ASN: pl.net.asn, UserAgent: dev.userAgent(t), Success: true}
		if r.Float64() < cfg.FailureRate {
			typo := l
			typo.Time, typo.Success = t.Add(-time.Duration(10+r.IntN(80))*time.Second), false
			out = append(out, typo)
		}
		out = append(out, l)
	}
	return out
}

// attempt is one attacker's login against u, as u is at the time.
func (w *world) attempt(u *user, a attack, from, end time.Time) Login {
	r := rand.New(rand.NewPCG(a.seed, uint64(a.kind)))
	l := Login{Time: a.at, User: userID(u.id), Kind: a.kind}
	var net *network
	switch a.kind {
	case Naive:
		c := w.countries[r.IntN(len(w.countries))]
		net = c.pick(r, []netKind{hosting, residential}[r.IntN(2)])
		l.UserAgent = scriptAgents[r.IntN(len(scriptAgents))]
		l.Success = r.Float64() < 0.2
	case VPN:
		net = u.home.pick(r, hosting)
		kind := desktop
		if r.Float64() < 0.3 {
			kind = phone
		}
		l.UserAgent = (&device{spec: pickAgent(r, kind)}).userAgent(a.at)
		l.Success = r.Float64() < 0.5
	case Targeted:
		for net == nil || u.knows(net) {
			net = u.home.pick(r, []netKind{residential, business}[r.IntN(2)])
		}
		if r.Float64() < 0.5 {
			// at one of the victim's usual hours, on a day of the window
			day := from.Add(time.Duration(r.IntN(int(end.Sub(from)/(24*time.Hour)))) * 24 * time.Hour).Truncate(24 * time.Hour)
			h := u.localHour(r, false)
			l.Time = day.Add(time.Duration(h*float64(time.Hour)) - time.Duration(u.home.tz)*time.Hour)
		}
		l.UserAgent = u.devices[r.IntN(len(u.devices))].userAgent(l.Time)
		l.Success = r.Float64() < 0.5
	}
	l.IP, l.Country, l.ASN = net.addr(r), net.country.code, net.asn
	return l
}

func userID(id int) string { return strconv.Itoa(100000 + id) }

// poisson draws from a Poisson distribution of mean lambda (Knuth: fine
// for the few logins a day a user makes).
func poisson(r *rand.Rand, lambda float64) int {
	limit, p, k := math.Exp(-lambda), 1.0, 0
	for {
		p *= r.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}
