package rbaeval

import (
	"math"
	"slices"
	"sort"
)

// FPRs are the false-positive rates the report reads the ROC curve at.
var FPRs = []float64{0.001, 0.01, 0.05}

// Rates are the figures of one attacker kind against the legitimate
// logins.
type Rates struct {
	N   int
	AUC float64
	// TPR[i] is the share of attempts scored above the lowest threshold
	// that flags at most FPRs[i] of legitimate logins.
	TPR []float64
	// Flagged is the share of attempts at or above the challenge score,
	// Blocked at or above the block score.
	Flagged, Blocked float64
}

// Metrics are the figures of one replay.
type Metrics struct {
	Legit int
	// Challenged and Blocked are the shares of legitimate logins at or
	// above the challenge and the block score; Learning the share scored
	// while their profile was still learning.
	Challenged, Blocked, Learning float64
	Challenge, Block              int
	// Kinds holds each attacker kind's rates (index: Kind), and All those
	// of every attempt together.
	Kinds [4]Rates
	All   Rates
}

// Evaluate computes the metrics of a replay at the given thresholds.
func Evaluate(scored []Scored, challenge, block int) Metrics {
	m := Metrics{Challenge: challenge, Block: block}
	var legit []float64
	var attacks [4][]Scored
	var all []Scored
	for _, s := range scored {
		if s.Kind != Legit {
			attacks[s.Kind] = append(attacks[s.Kind], s)
			all = append(all, s)
			continue
		}
		legit = append(legit, s.value())
		m.Legit++
		if s.Score >= challenge {
			m.Challenged++
		}
		if s.Score >= block {
			m.Blocked++
		}
		if !s.Learned {
			m.Learning++
		}
	}
	if m.Legit > 0 {
		n := float64(m.Legit)
		m.Challenged, m.Blocked, m.Learning = m.Challenged/n, m.Blocked/n, m.Learning/n
	}
	slices.Sort(legit)
	for _, k := range Kinds {
		m.Kinds[k] = rates(legit, attacks[k], challenge, block)
	}
	m.All = rates(legit, all, challenge, block)
	return m
}

func rates(legit []float64, attacks []Scored, challenge, block int) Rates {
	r := Rates{N: len(attacks), TPR: make([]float64, len(FPRs))}
	if len(attacks) == 0 || len(legit) == 0 {
		return r
	}
	n, m := float64(len(legit)), float64(len(attacks))
	auc := 0.0
	for _, a := range attacks {
		v := a.value()
		lo := sort.SearchFloat64s(legit, v)
		hi := sort.Search(len(legit), func(i int) bool { return legit[i] > v })
		auc += (float64(lo) + 0.5*float64(hi-lo)) / n
		if a.Score >= challenge {
			r.Flagged++
		}
		if a.Score >= block {
			r.Blocked++
		}
	}
	r.AUC, r.Flagged, r.Blocked = auc/m, r.Flagged/m, r.Blocked/m
	for i, fpr := range FPRs {
		t := thresholdAt(legit, fpr)
		hits := 0
		for _, a := range attacks {
			if a.value() > t {
				hits++
			}
		}
		r.TPR[i] = float64(hits) / m
	}
	return r
}

// thresholdAt is the legitimate value above which at most fpr of the
// (sorted) legitimate values lie: flagging what scores strictly above it
// keeps the false-positive rate within fpr, ties included.
func thresholdAt(legit []float64, fpr float64) float64 {
	allowed := int(math.Floor(fpr * float64(len(legit))))
	if allowed >= len(legit) {
		return math.Inf(-1)
	}
	return legit[len(legit)-1-allowed]
}
