package rbaeval

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/risk"
	"github.com/vigilsec/vigil/internal/store"
)

// Scored is one login of the evaluation window with its assessment.
type Scored struct {
	Kind    Kind
	Score   int
	DB      float64
	Learned bool
}

// value is what the curves rank: the score before rounding (0 while the
// profile learns, as the gateway would answer).
func (s Scored) value() float64 {
	if !s.Learned {
		return 0
	}
	return min(max(s.DB, 0), 100)
}

// Variant is one way of replaying a stream: the model's options and the
// features the logins keep.
type Variant struct {
	Name    string
	Options risk.Options
	// Without are features blanked out of every login (IP, ASN and
	// Country are the ones an observation can lack).
	Without []risk.Feature
}

// Replay runs a stream through the model in time order, on a fresh memory
// store: every login is assessed, and each successful legitimate one is
// then learned (an attacker's never are: in the gateway a challenged
// login is learned only once the user passed the challenge). It returns
// the assessments of the evaluation window.
func Replay(ctx context.Context, s Stream, v Variant) ([]Scored, error) {
	m, err := risk.New(store.NewMemoryRisk(0, nil), v.Options)
	if err != nil {
		return nil, err
	}
	var out []Scored
	keys := map[string]string{}
	for i := range s.Logins {
		l := &s.Logins[i]
		key, ok := keys[l.User]
		if !ok {
			key = detect.AccountKey(l.User)
			keys[l.User] = key
		}
		o := risk.Observation{User: key, IP: l.IP, Country: l.Country, ASN: l.ASN, UserAgent: l.UserAgent, Time: l.Time}
		for _, f := range v.Without {
			switch f {
			case risk.IP:
				o.IP = netip.Addr{}
			case risk.ASN:
				o.ASN = 0
			case risk.Country:
				o.Country = ""
			}
		}
		if !l.Time.Before(s.EvalFrom) {
			a, err := m.Score(ctx, o)
			if err != nil {
				return nil, fmt.Errorf("rbaeval: login %d: %w", i, err)
			}
			out = append(out, Scored{Kind: l.Kind, Score: a.Score, DB: a.DB, Learned: a.Learned})
		}
		if l.Kind == Legit && l.Success {
			if err := m.Learn(ctx, o); err != nil {
				return nil, fmt.Errorf("rbaeval: login %d: %w", i, err)
			}
		}
	}
	return out, nil
}
