package geo

import (
	"context"
	"math"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// maxKnownInDetails bounds the known places an UNUSUAL_LOCATION event
// lists.
const maxKnownInDetails = 10

// Login judges one successful login of f.User from f.Place (already
// located; f.IP set) at now, then learns the place. It raises
// UNUSUAL_LOCATION once the user has Learn logins behind them and the place
// is unlike every remembered one, and IMPOSSIBLE_TRAVEL when the journey
// from the previous successful login would have been faster than TravelKmh
// over more than TravelMinKm (both after subtracting the accuracy radii).
// Unknown and private places and trusted ranges are neither judged nor
// learned; a hosting network is judged for newness but is neither learned
// nor used for travel. Failed logins must never reach it.
func (d *Detector) Login(ctx context.Context, f detect.Facts, now time.Time) {
	if f.User == "" || !d.counts(f.IP, f.Place) {
		return
	}
	cur := placeFrom(f.Place, now)
	var found []detect.Finding
	_, err := d.opt.Profiles.Update(ctx, PlacesKind, detect.AccountKey(f.User), d.opt.Forget, func(b []byte) []byte {
		rec, ok := decodeUser(b, d.opt.Remember)
		if !ok {
			d.opt.Logger.Warn("geo: unreadable places record, starting afresh", "user", detect.Display(f.User))
		}
		found = found[:0] // fn runs again when another instance won the race
		found = d.judge(found, &rec, &cur, now)
		d.learn(&rec, cur, now)
		return encodeUser(&rec)
	})
	if err != nil {
		d.opt.Logger.Error("geo: updating places", "user", detect.Display(f.User), "error", err)
		return
	}
	for i := range found {
		found[i].Facts, found[i].Time = f, now
		if found[i].Action == detect.EndSessions {
			found[i].Target = f.User
		}
		d.opt.Actor.Act(ctx, found[i])
	}
}

// judge appends what the login at cur says against the record.
func (d *Detector) judge(found []detect.Finding, rec *userRecord, cur *placeRec, now time.Time) []detect.Finding {
	if rec.Logins >= d.opt.Learn && len(rec.Places) > 0 {
		if what := d.newness(rec.Places, cur); len(what) > 0 {
			found = append(found, detect.Finding{Type: detect.UnusualLocation, Details: unusualDetails(rec, cur, what)})
		}
	}
	if t, ok := d.travel(rec.Base, cur, now); ok {
		if d.opt.Revoke {
			t.Action = detect.EndSessions
		}
		found = append(found, t)
	}
	return found
}

// newness names what makes cur unlike every known place: "country", "city"
// (farther than NewCityKm, minus accuracy radii, from every known place
// with coordinates), "asn". A criterion the place or the known places have
// no data for says nothing.
func (d *Detector) newness(known []placeRec, cur *placeRec) []string {
	var what []string
	if d.opt.NewCountry && cur.Country != "" && !anyPlace(known, func(k *placeRec) bool { return k.Country == cur.Country }) {
		what = append(what, "country")
	}
	if d.opt.NewCityKm > 0 && d.farFromAll(known, cur) {
		what = append(what, "city")
	}
	if d.opt.NewASN && cur.ASN != 0 && !anyPlace(known, func(k *placeRec) bool { return k.ASN == cur.ASN }) {
		what = append(what, "asn")
	}
	return what
}

func (d *Detector) farFromAll(known []placeRec, cur *placeRec) bool {
	p := cur.place()
	if !p.HasCoords() {
		return false
	}
	compared := false
	for i := range known {
		k := known[i].place()
		if !k.HasCoords() {
			continue
		}
		if detect.MinDistance(p, k) <= d.opt.NewCityKm {
			return false
		}
		compared = true
	}
	return compared
}

func anyPlace(known []placeRec, match func(*placeRec) bool) bool {
	for i := range known {
		if match(&known[i]) {
			return true
		}
	}
	return false
}

// travel judges the journey from the baseline to cur. The order of the two
// logins does not matter: background work may see them swapped.
func (d *Detector) travel(base, cur *placeRec, now time.Time) (detect.Finding, bool) {
	if base == nil || cur.Hosting {
		return detect.Finding{}, false
	}
	from, to := base.place(), cur.place()
	if !from.HasCoords() || !to.HasCoords() {
		return detect.Finding{}, false
	}
	km := detect.MinDistance(from, to)
	if !(km > d.opt.TravelMinKm) {
		return detect.Finding{}, false
	}
	elapsed := now.Sub(time.UnixMilli(base.Seen)).Abs()
	hours := max(elapsed, time.Second).Hours() // never a division by zero
	kmh := km / hours
	if !(kmh > d.opt.TravelKmh) {
		return detect.Finding{}, false
	}
	return detect.Finding{Type: detect.ImpossibleTravel, Details: detect.Details{
		"from":            from.String(),
		"to":              to.String(),
		"from_time":       time.UnixMilli(base.Seen).UTC().Format(time.RFC3339),
		"km":              math.Round(km),
		"great_circle_km": math.Round(detect.Distance(from, to)),
		"hours":           round(elapsed.Hours(), 100),
		"kmh":             math.Round(kmh),
		"max_kmh":         d.opt.TravelKmh,
	}}, true
}

func unusualDetails(rec *userRecord, cur *placeRec, what []string) detect.Details {
	known := make([]string, 0, min(len(rec.Places), maxKnownInDetails))
	for i := range rec.Places {
		if i == maxKnownInDetails {
			break
		}
		known = append(known, rec.Places[i].short())
	}
	p := cur.place()
	d := detect.Details{
		"new":    what,
		"place":  p.String(),
		"known":  known,
		"logins": rec.Logins,
	}
	if cur.Hosting {
		d["hosting"] = true
	}
	return d
}

// learn records a successful login at cur: the latest login, and unless
// cur is a hosting network, a login that teaches, a known place and the
// travel baseline. A login older than the one recorded (background work
// out of order) does not replace it.
func (d *Detector) learn(rec *userRecord, cur placeRec, now time.Time) {
	ms := now.UnixMilli()
	one := cur
	one.First, one.Logins = 0, 0 // a single login: no history of its own
	if rec.Last == nil || ms >= rec.Last.Seen {
		last := one
		rec.Last = &last
	}
	if cur.Hosting {
		return
	}
	rec.Logins = min(rec.Logins, math.MaxInt32) + 1
	rec.remember(cur, d.opt.Remember)
	if cur.place().HasCoords() && (rec.Base == nil || ms >= rec.Base.Seen) {
		base := one
		rec.Base = &base
	}
}
