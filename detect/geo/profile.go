package geo

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Profile is what Vigil has learned of a user's places, for investigation
// (GET /vigil/users/{user}).
type Profile struct {
	// Logins counts the successful logins that taught a place (trusted,
	// unknown and hosting places do not).
	Logins int `json:"logins"`
	// Places are the remembered places, most recently seen first.
	Places []KnownPlace `json:"places"`
	// Last is the latest successful login judged: place and time.
	Last *KnownPlace `json:"last,omitempty"`
}

// KnownPlace is one place of a profile.
type KnownPlace struct {
	Place  detect.Place `json:"place"`
	First  time.Time    `json:"first,omitzero"` // first login from it
	Seen   time.Time    `json:"seen"`           // latest login from it
	Logins int          `json:"logins,omitempty"`
}

// Profile returns the learned places of user. A user never seen has an
// empty profile; so has one whose record cannot be read.
func (d *Detector) Profile(ctx context.Context, user string) (Profile, error) {
	b, err := d.opt.Profiles.Get(ctx, PlacesKind, detect.AccountKey(user))
	if err != nil {
		return Profile{Places: []KnownPlace{}}, fmt.Errorf("geo: reading places: %w", err)
	}
	rec, _ := decodeUser(b, d.opt.Remember)
	p := Profile{Logins: rec.Logins, Places: make([]KnownPlace, 0, len(rec.Places))}
	for i := range rec.Places {
		p.Places = append(p.Places, rec.Places[i].known())
	}
	if rec.Last != nil {
		last := rec.Last.known()
		last.First, last.Logins = time.Time{}, 0
		p.Last = &last
	}
	return p, nil
}

func (r *placeRec) known() KnownPlace {
	k := KnownPlace{Place: r.place(), Seen: time.UnixMilli(r.Seen).UTC(), Logins: r.Logins}
	if r.First > 0 {
		k.First = time.UnixMilli(r.First).UTC()
	}
	return k
}
