package risk

import (
	"math"
	"slices"
	"strconv"

	"github.com/vigilsec/vigil/detect"
)

// Assessment is the model's verdict on one login.
type Assessment struct {
	// Score is the risk on the 0–100 scale of docs/risk.md: round(DB),
	// clamped; 0 while the profile is learning.
	Score int
	// DB is 10·log10(risk), the sum of the features' contributions, before
	// clamping: 10 means the login is ten times likelier from an attacker
	// than from this user, 20 a hundred times.
	DB float64
	// Learned is true once the profile has learned Options.Learn logins.
	Learned bool
	// Logins is the number of successful logins the profile learned.
	Logins int64
	// Agent is the parsed User-Agent.
	Agent Agent
	// Features holds each feature's contribution, in Feature order.
	Features [NumFeatures]Contribution
}

// Contribution is one feature's share of a score.
type Contribution struct {
	Feature Feature
	// Known is false when the login lacks the feature (no GeoIP): it then
	// contributes nothing.
	Known bool
	// Seen is true when the user's profile holds the value.
	Seen bool
	// DB is 10·log10(p(x) / p(x | u)), bounded below as Options say.
	DB float64
}

// hourSpread is the total weight of a bin and its neighbours in the
// smoothed histogram (itself, two adjacent hours, six other days): a
// smoothed count divided by it sums, over the week, to the logins learned.
const hourSpread = 1 + 2*weightAdjacent + 6*weightSameHour

// assess computes the contributions from the store's counts.
func (m *Model) assess(a *Assessment, q *Query, c *Counts) {
	a.Logins = c.Logins
	a.Learned = c.Logins >= int64(m.opt.Learn)
	var pg [NumFeatures]float64 // p(x), add-one smoothed
	for f := range NumFeatures {
		values := 1.0 // the add-one spreads over this many values
		if Feature(f) == Hour {
			values = HoursPerWeek
		}
		pg[f] = (c.Global[f].Count + 1) / (c.Global[f].Total + values)
	}
	for f := range NumFeatures {
		cb := &a.Features[f]
		cb.Feature = Feature(f)
		if !q.Has[f] {
			continue
		}
		cb.Known = true
		user := c.User[f]
		switch Feature(f) {
		case Hour:
			user.Count = smoothHour(user.Count, &c.Near)
		case Browser:
			if user.Count == 0 {
				// an update: the earlier versions' history is this one's
				user.Count = c.Near[NearHours] + c.Near[NearHours+1]
			}
		}
		cb.Seen = user.Count > 0
		r := ratio(pg[f], user.Count, user.Total, user.New)
		if Feature(f) == IP && q.Has[ASN] && c.User[ASN].Count > 0 {
			// In a network the user knows, the address is judged within it
			// (the chain rule: p(ip, asn) = p(asn)·p(ip | asn), the ASN's
			// share being its own feature): a phone on a carrier that hands
			// out a new address every session shows nothing unusual with
			// one more, a home line whose address never changes does.
			pc := min(pg[IP]/pg[ASN], 1)
			r = ratio(pc, user.Count, c.User[ASN].Count, c.IPNew)
		}
		db := 10 * math.Log10(r)
		floor := 0.0
		if m.opt.Symmetric || Feature(f) == IP || Feature(f) == ASN {
			floor = -m.opt.MaxBonus
		}
		cb.DB = max(db, floor)
		a.DB += cb.DB
	}
	if a.Learned {
		a.Score = int(math.Round(min(max(a.DB, 0), 100)))
	}
}

// ratio is p(x) / p(x | u) with p(x | u) smoothed by Witten–Bell
// interpolation with the global distribution:
//
//	p(x | u) = (c + N·p(x)) / (C + N)
//
// c the value's decayed count in the user's table, C the table's decayed
// total, N the decayed count of the logins that brought the table a new
// value. N/(C+N) estimates the chance that the user's next login shows a
// value they never used (the more often a user turned up with something
// new, the likelier again), and that mass is spread over the unseen
// values as the population spreads (back-off to p(x)). An unseen value then
// scores (C+N)/N whatever its global frequency, and a familiar one about
// p(x)·C/c. An empty table says nothing: the ratio is 1.
func ratio(pg, c, total, n float64) float64 {
	if total <= 0 || n <= 0 {
		return 1
	}
	return pg * (total + n) / (c + n*pg)
}

// smoothHour is the user's smoothed count at a bin (see hourNear), scaled
// back to login units.
func smoothHour(own float64, near *[NumNear]float64) float64 {
	s := own + weightAdjacent*(near[0]+near[1])
	for _, n := range near[2:NearHours] {
		s += weightSameHour * n
	}
	return s / hourSpread
}

// Drivers are the features that raised the score, the strongest first.
func (a *Assessment) Drivers() []Contribution {
	var out []Contribution
	for _, c := range a.Features {
		if c.Known && c.DB > 0 {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(x, y Contribution) int {
		switch {
		case x.DB > y.DB:
			return -1
		case x.DB < y.DB:
			return 1
		}
		return 0
	})
	return out
}

// Details describes the assessment for a SUSPICIOUS_LOGIN event: the
// score, and each feature with the login's value, whether the user had it
// before, and its contribution in decibans, the strongest first. Values
// are the parsed forms (never the raw User-Agent), shortened by
// detect.Display.
func (a *Assessment) Details(o Observation) detect.Details {
	order := make([]Contribution, 0, NumFeatures)
	for _, c := range a.Features {
		if c.Known {
			order = append(order, c)
		}
	}
	slices.SortStableFunc(order, func(x, y Contribution) int {
		switch {
		case x.DB > y.DB:
			return -1
		case x.DB < y.DB:
			return 1
		}
		return 0
	})
	features := make([]map[string]any, len(order))
	for i, c := range order {
		features[i] = map[string]any{
			"feature": c.Feature.String(),
			"value":   detect.Display(a.value(c.Feature, &o)),
			"new":     !c.Seen,
			"db":      math.Round(c.DB*10) / 10,
		}
	}
	return detect.Details{
		"risk_score": a.Score,
		"risk_db":    math.Round(a.DB*10) / 10,
		"learned":    a.Learned,
		"logins":     a.Logins,
		"features":   features,
	}
}

var weekdays = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// value is a feature's value in o as events show it.
func (a *Assessment) value(f Feature, o *Observation) string {
	switch f {
	case IP:
		ip := o.IP.Unmap()
		if ip.Is6() {
			p, _ := ip.Prefix(64)
			return p.String()
		}
		return ip.String()
	case ASN:
		return "AS" + strconv.FormatUint(uint64(o.ASN), 10)
	case Country:
		return o.Country
	case Browser:
		return a.Agent.BrowserName()
	case OS:
		return a.Agent.OS
	case Device:
		return a.Agent.Device.String()
	case Hour:
		h := hourOfWeek(o.Time)
		return weekdays[h/24] + " " + strconv.Itoa(h%24) + "h UTC"
	}
	return ""
}
