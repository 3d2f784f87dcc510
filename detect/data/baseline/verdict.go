package baseline

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Verdict is the judgement of a subject's open window after an Add.
//
// Score runs from 0 to 100 so that dashboards and alert rules can rank
// anomalies of different measures on one scale:
//
//   - 0: no judgement yet (fewer than MinHistory windows);
//   - below 50: not anomalous; 50 × x / threshold, how close the window
//     came to Factor × max(mean, Floor), capped at 49 (a window over the
//     threshold but under ZMin, or at its peers' level, stays at 49);
//   - 50 to 85: anomalous, 50 at the threshold plus 35 per decade above
//     it (10 × the threshold and beyond: 85);
//   - an insider, above their peers' threshold too, adds 5 plus 10 per
//     decade above that threshold (up to 15, so at most 100).
//
// Score stays high for the rest of a reported window while Anomalous is
// true only once.
type Verdict struct {
	Anomalous bool
	Score     float64
	// Observed is the open window's total so far.
	Observed float64
	// Mean, StdDev and Windows describe the subject's closed windows.
	Mean, StdDev float64
	Windows      int
	// Z is (Observed − Mean)/√(variance + 1); 0 before MinHistory.
	Z float64
	// PeerMean, PeerStdDev and PeerZ describe the peer aggregate when it
	// took part (Peers > 0); Peers counts its distinct members (at most 16).
	PeerMean, PeerStdDev, PeerZ float64
	Peers                       int
	// Insider: above both the subject's own baseline and their peers'.
	Insider bool
	// What the verdict was judged with.
	Measure     string
	Factor      float64
	Window      time.Duration
	WindowStart time.Time
}

// judge fills in a verdict of s's open window; Add decides whether it is
// the window's first report.
func (b *Baselines) judge(s *series, p peerView) Verdict {
	v := Verdict{
		Observed:    float64(s.total),
		Mean:        s.mean,
		StdDev:      math.Sqrt(s.vari),
		Windows:     int(s.windows),
		Factor:      b.opt.Factor,
		Window:      b.opt.Window,
		WindowStart: time.Unix(0, s.open*b.window).UTC(),
	}
	if p.known {
		v.PeerMean, v.PeerStdDev, v.Peers = p.mean, math.Sqrt(p.vari), p.members
	}
	if int(s.windows) < b.opt.MinHistory {
		return v
	}
	x := v.Observed
	own := b.opt.Factor * max(s.mean, b.opt.Floor)
	v.Z = (x - s.mean) / math.Sqrt(s.vari+epsilon)
	above := x > own && v.Z >= b.opt.ZMin
	var peer float64
	var abovePeers bool
	if p.known {
		peer = b.opt.Factor * max(p.mean, b.opt.Floor)
		v.PeerZ = (x - p.mean) / math.Sqrt(p.vari+epsilon)
		abovePeers = x > peer && v.PeerZ >= b.opt.ZMin
	}
	if !above || p.known && !abovePeers {
		v.Score = round1(min(49, 50*x/own))
		return v
	}
	v.Anomalous = true
	score := 50 + 35*decades(x/own)
	if abovePeers {
		v.Insider = true
		score += 5 + 10*decades(x/peer)
	}
	v.Score = round1(min(100, score))
	return v
}

// decades is log10(r) clamped to [0, 1].
func decades(r float64) float64 {
	return min(1, max(0, math.Log10(r)))
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// Details are the verdict's facts for a DATA_ACCESS_ANOMALY event, as the
// seed's detector reported them (anomaly_score, baseline, observed) plus
// what an investigator needs to check the arithmetic.
func (v Verdict) Details() detect.Details {
	d := detect.Details{
		"anomaly_score": v.Score,
		"baseline":      round1(v.Mean),
		"stddev":        round1(v.StdDev),
		"observed":      v.Observed,
		"windows":       v.Windows,
		"factor":        v.Factor,
		"z":             round1(v.Z),
		"insider":       v.Insider,
		"measure":       v.Measure,
		"window":        v.Window.String(),
		"window_start":  v.WindowStart.Format(time.RFC3339),
	}
	if v.Peers > 0 {
		d["peer_mean"], d["peer_stddev"] = round1(v.PeerMean), round1(v.PeerStdDev)
		d["peer_z"], d["peers"] = round1(v.PeerZ), v.Peers
	}
	return d
}

// Snapshot is what Vigil has learned of a subject's volume on a group, for
// the investigation API.
type Snapshot struct {
	Window   time.Duration     `json:"window"`
	Measures []MeasureSnapshot `json:"measures"`
}

// MeasureSnapshot is one measure's baseline. Mean and StdDev are as of the
// subject's last activity (WindowStart): silent windows since then are
// folded in by their next Add.
type MeasureSnapshot struct {
	Measure     string    `json:"measure"`
	Mean        float64   `json:"mean"`
	StdDev      float64   `json:"stddev"`
	Windows     int       `json:"windows"`
	WindowStart time.Time `json:"window_start"`
	Current     int64     `json:"current"`
	LastAnomaly time.Time `json:"last_anomaly,omitzero"`
}

// Profile returns the subject's baselines on group; an unknown subject, or
// an unreadable record, has none.
func (b *Baselines) Profile(ctx context.Context, subject, group string) (Snapshot, error) {
	snap := Snapshot{Window: b.opt.Window, Measures: []MeasureSnapshot{}}
	cur, err := b.opt.Profiles.Get(ctx, SubjectKind, subjectKey(subject, group))
	if err != nil {
		return snap, fmt.Errorf("baseline: %w", err)
	}
	r, err := decodeRecord(cur)
	if err != nil || r.window != b.window {
		return snap, nil
	}
	for _, s := range r.series {
		m := MeasureSnapshot{
			Measure:     s.name,
			Mean:        s.mean,
			StdDev:      math.Sqrt(s.vari),
			Windows:     int(s.windows),
			WindowStart: time.Unix(0, s.open*b.window).UTC(),
			Current:     s.total,
		}
		if s.lastAnomaly != 0 {
			m.LastAnomaly = time.Unix(0, s.lastAnomaly).UTC()
		}
		snap.Measures = append(snap.Measures, m)
	}
	return snap, nil
}
