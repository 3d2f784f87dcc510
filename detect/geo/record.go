package geo

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigilsec/vigil/detect"
)

// recordVersion is written into every record; a record of another version
// (or one that does not decode) is treated as empty.
const recordVersion = 1

// maxRecordBytes is what a user's record may take: well under
// detect.MaxProfileBytes, whatever the database's names hold. Past it the
// least recently seen places are dropped.
const maxRecordBytes = 12 << 10

// maxText bounds a city or organisation name in a record.
const maxText = 64

// userRecord is what is stored per user (kind "places").
type userRecord struct {
	V int `json:"v"`
	// Logins counts the successful logins that taught a place.
	Logins int `json:"n"`
	// Places are the distinct places learned, most recently seen first.
	Places []placeRec `json:"p,omitempty"`
	// Base is the travel baseline: the latest successful login from a
	// place with coordinates that is not a hosting network.
	Base *placeRec `json:"b,omitempty"`
	// Last is the latest judged successful login, hosting included.
	Last *placeRec `json:"l,omitempty"`
}

// placeRec is a place in a record, with when it was seen (Unix ms).
type placeRec struct {
	Country string  `json:"c,omitempty"`
	City    string  `json:"ci,omitempty"`
	Lat     float64 `json:"la,omitempty"`
	Lon     float64 `json:"lo,omitempty"`
	Radius  float64 `json:"r,omitempty"`
	ASN     uint    `json:"a,omitempty"`
	Org     string  `json:"o,omitempty"`
	Hosting bool    `json:"h,omitempty"`
	First   int64   `json:"f,omitempty"`
	Seen    int64   `json:"t"`
	Logins  int     `json:"k,omitempty"`
}

// placeFrom turns a located place into what a record keeps: names
// shortened and cleaned, coordinates only when usable (never NaN, which
// JSON cannot carry) and rounded to 4 decimals (about 10 m), the radius
// finite and not negative.
func placeFrom(p detect.Place, now time.Time) placeRec {
	r := placeRec{
		Country: cleanText(p.Country, 8),
		City:    cleanText(p.City, maxText),
		ASN:     p.ASN,
		Org:     cleanText(p.Org, maxText),
		Hosting: p.Hosting,
		First:   now.UnixMilli(),
		Seen:    now.UnixMilli(),
		Logins:  1,
	}
	if p.HasCoords() {
		r.Lat, r.Lon = round(p.Lat, 1e4), round(p.Lon, 1e4)
		r.Radius = cleanRadius(p.RadiusKm)
	}
	return r
}

// place is the record's place as detect.Place.
func (r *placeRec) place() detect.Place {
	return detect.Place{Country: r.Country, City: r.City, Lat: r.Lat, Lon: r.Lon,
		RadiusKm: cleanRadius(r.Radius), ASN: r.ASN, Org: r.Org, Hosting: r.Hosting}
}

// same reports whether r and o are one place: the same country, city and
// network.
func (r *placeRec) same(o *placeRec) bool {
	return r.Country == o.Country && r.City == o.City && r.ASN == o.ASN
}

// short is the place for event details, without the organisation:
// "Berlin, DE (AS3320)".
func (r *placeRec) short() string {
	p := r.place()
	p.Org = ""
	return p.String()
}

// halfEarthKm is the farthest two points can be apart: a larger (or
// infinite) accuracy radius says as much as this one.
const halfEarthKm = 20038

func cleanRadius(r float64) float64 {
	switch {
	case !(r > 0): // also NaN
		return 0
	case r > halfEarthKm:
		return halfEarthKm
	}
	return round(r, 10)
}

func round(x, scale float64) float64 { return math.Round(x*scale) / scale }

// cleanText keeps a name from a database printable and short: invalid
// UTF-8 and control characters go, and it is cut to limit bytes on a rune
// boundary.
func cleanText(s string, limit int) string {
	ok := len(s) <= limit && utf8.ValidString(s)
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= 0x20 && s[i] != 0x7f
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, c := range strings.ToValidUTF8(s, "") {
		if unicode.IsControl(c) {
			continue
		}
		if b.Len()+utf8.RuneLen(c) > limit {
			break
		}
		b.WriteRune(c)
	}
	return b.String()
}

// decodeUser reads a user's record; a missing, corrupt or foreign one is
// empty (and reported by ok false when it was there).
func decodeUser(b []byte, remember int) (rec userRecord, ok bool) {
	if b == nil {
		return userRecord{V: recordVersion}, true
	}
	if json.Unmarshal(b, &rec) != nil || rec.V != recordVersion {
		return userRecord{V: recordVersion}, false
	}
	rec.Logins = max(rec.Logins, 0)
	if len(rec.Places) > remember {
		rec.Places = rec.Places[:remember]
	}
	return rec, true
}

// encodeUser writes a record, dropping the least recently seen places
// while it is larger than maxRecordBytes.
func encodeUser(rec *userRecord) []byte {
	for {
		b, err := json.Marshal(rec)
		if err == nil && len(b) <= maxRecordBytes {
			return b
		}
		if len(rec.Places) == 0 {
			// cannot happen with cleaned places; never store garbage
			return mustEmpty()
		}
		rec.Places = rec.Places[:len(rec.Places)-1]
	}
}

func mustEmpty() []byte {
	b, _ := json.Marshal(userRecord{V: recordVersion})
	return b
}

// remember puts p among the record's places: an already known place is
// refreshed (coordinates, time, count), a new one added; the least recently
// seen go past limit.
func (rec *userRecord) remember(p placeRec, limit int) {
	i := slices.IndexFunc(rec.Places, func(k placeRec) bool { return k.same(&p) })
	if i >= 0 {
		k := rec.Places[i]
		p.First = min(k.First, p.First)
		p.Seen = max(k.Seen, p.Seen)
		p.Logins = min(k.Logins, math.MaxInt32) + 1
		rec.Places[i] = p
	} else {
		rec.Places = append(rec.Places, p)
	}
	slices.SortStableFunc(rec.Places, func(a, b placeRec) int {
		switch {
		case a.Seen > b.Seen:
			return -1
		case a.Seen < b.Seen:
			return 1
		}
		return 0
	})
	if len(rec.Places) > limit {
		rec.Places = rec.Places[:limit]
	}
}

// sessionRecord is what is stored per token (kind "session"): the country
// and network of its first located use, and the places it was reported
// from since.
type sessionRecord struct {
	V       int    `json:"v"`
	Country string `json:"c,omitempty"`
	ASN     uint   `json:"a,omitempty"`
	Place   string `json:"p,omitempty"` // the first use, for event details
	Since   int64  `json:"t"`           // the first use, Unix ms
	// Reported are the "country/ASN" places already raised, so a token
	// gets one event per new place, not one per request.
	Reported []string `json:"s,omitempty"`
}

// maxReported bounds the places one token is reported from; a token seen
// in more places has been reported enough.
const maxReported = 16

func decodeSession(b []byte) (rec sessionRecord, ok bool) {
	if b == nil || json.Unmarshal(b, &rec) != nil || rec.V != recordVersion ||
		(rec.Country == "" && rec.ASN == 0) {
		return sessionRecord{}, false
	}
	if len(rec.Reported) > maxReported {
		rec.Reported = rec.Reported[:maxReported]
	}
	return rec, true
}

func encodeSession(rec *sessionRecord) []byte {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil
	}
	return b
}
