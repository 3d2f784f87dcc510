package geo

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Session binds a verified token to the country and network (ASN) of its
// first located use, until expires, and raises SESSION_ANOMALY when the
// token is used from another country or another network: once per token
// and new place, not per request. With Revoke the finding also revokes the
// token (EndSession, Target jti). jti is the token's ID, or a hash of the
// token when it has none. Unknown and private places and trusted ranges
// never count.
//
// A repeated use from the address seen last costs a map lookup: a small
// local cache remembers each token's last address, so only a change of
// address reaches the store.
func (d *Detector) Session(ctx context.Context, f detect.Facts, jti string, expires time.Time, now time.Time) {
	if jti == "" || !f.IP.IsValid() || d.cache.seen(jti, f.IP, now) {
		return
	}
	p := f.Place
	if !d.counts(f.IP, p) || (p.Country == "" && p.ASN == 0) {
		return
	}
	until := expires
	if until.IsZero() || !until.After(now) {
		until = now.Add(defaultSessionTTL)
	}
	ttl := min(until.Sub(now), d.opt.Forget)
	key := detect.HashID("jti", jti)
	b, err := d.opt.Profiles.Get(ctx, SessionKind, key)
	if err != nil {
		d.opt.Logger.Error("geo: reading session binding", "error", err)
		return
	}
	if rec, ok := decodeSession(b); ok && !rec.needsUpdate(p) {
		d.cache.put(jti, f.IP, now, now.Add(ttl))
		return
	}
	var found *detect.Finding
	_, err = d.opt.Profiles.Update(ctx, SessionKind, key, ttl, func(cur []byte) []byte {
		found = nil // fn runs again when another instance won the race
		rec, ok := decodeSession(cur)
		if !ok {
			rec = sessionRecord{V: recordVersion, Country: p.Country, ASN: p.ASN,
				Place: cleanText(p.String(), 2*maxText), Since: now.UnixMilli()}
			return encodeSession(&rec)
		}
		found = rec.observe(p)
		return encodeSession(&rec)
	})
	if err != nil {
		d.opt.Logger.Error("geo: updating session binding", "error", err)
		return
	}
	d.cache.put(jti, f.IP, now, now.Add(ttl))
	if found == nil {
		return
	}
	found.Facts, found.Time = f, now
	found.Details["token"] = key
	if d.opt.Revoke {
		found.Action, found.Target = detect.EndSession, jti
	}
	d.opt.Actor.Act(ctx, *found)
}

// changes names what differs between the binding and p: "country", "asn".
// A field either side does not know says nothing.
func (r *sessionRecord) changes(p detect.Place) []string {
	var what []string
	if r.Country != "" && p.Country != "" && r.Country != p.Country {
		what = append(what, "country")
	}
	if r.ASN != 0 && p.ASN != 0 && r.ASN != p.ASN {
		what = append(what, "asn")
	}
	return what
}

// needsUpdate reports whether a use from p changes the record: a new place
// to report, or a field the binding lacked that p fills in.
func (r *sessionRecord) needsUpdate(p detect.Place) bool {
	if len(r.changes(p)) > 0 {
		return len(r.Reported) < maxReported && !slices.Contains(r.Reported, placeID(p))
	}
	return (r.Country == "" && p.Country != "") || (r.ASN == 0 && p.ASN != 0)
}

// observe takes a use from p into the record and returns the finding it
// raises, if any.
func (r *sessionRecord) observe(p detect.Place) *detect.Finding {
	what := r.changes(p)
	if len(what) == 0 {
		// the same place: fill in what the first use did not know
		if r.Country == "" {
			r.Country = p.Country
		}
		if r.ASN == 0 {
			r.ASN = p.ASN
		}
		return nil
	}
	id := placeID(p)
	if len(r.Reported) >= maxReported || slices.Contains(r.Reported, id) {
		return nil
	}
	r.Reported = append(r.Reported, id)
	return &detect.Finding{Type: detect.SessionAnomaly, Details: detect.Details{
		"changed": what,
		"bound":   r.Place,
		"place":   p.String(),
		"since":   time.UnixMilli(r.Since).UTC().Format(time.RFC3339),
	}}
}

// placeID names a place as a session binding compares it.
func placeID(p detect.Place) string { return bindingString(p.Country, p.ASN) }

func bindingString(country string, asn uint) string {
	s := country
	if asn != 0 {
		s += "/AS" + strconv.FormatUint(uint64(asn), 10)
	}
	return s
}
