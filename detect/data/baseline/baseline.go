// Package baseline learns how much data each subject usually takes from a
// route group, per fixed window, and judges the running window against that
// history and against the subject's peers (insider threat): the
// DATA_ACCESS_ANOMALY of the `export … baseline <factor> … peers <claim>`
// directive.
//
// A subject's volume (bytes, rows or requests: one series per measure, up to
// four in one record) is summed per window of length Window. When a window
// closes, its total x updates an EWMA of the mean and variance
// (mean' = mean + α(x − mean); var' = (1−α)(var + α(x − mean)²)); windows
// without activity count as zeros, folded in closed form, so a year of
// silence costs one step. Judgement runs on the open window as volume
// arrives, so a bulk export is reported while it happens: the window total x
// is anomalous once the subject has MinHistory closed windows and
//
//	x > Factor × max(mean, Floor)  and  z = (x − mean)/√(var + 1) ≥ ZMin.
//
// Peers (subjects sharing a claim value, such as a department) pool their
// members' non-empty closed windows into one EWMA per (peer value, group).
// Empty windows are left out there: the question is how much a member takes
// when they do export, and idle colleagues would drag that level down. Once
// the pool has MinHistory samples from at least three members it both
// excuses and aggravates: a subject whose window is not above their peers
// (the same test with the peers' mean and variance) raises nothing, however
// low their own history (a whole team exporting the same volume is no
// anomaly); a subject above both is reported with insider: true and a
// higher score. Peers alone never report a subject with no history of
// their own.
//
// State lives in detect.Profiles: kind "vol" per (subject, group) keyed by
// detect.HashID("vol", subject+"\x00"+group), and kind "volpeer" per (peer
// value, group) keyed by detect.HashID("volpeer", peer+"\x00"+group). Both
// are updated with Profiles.Update, so instances adding at once lose
// nothing.
package baseline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Profile kinds this package stores.
const (
	SubjectKind detect.ProfileKind = "vol"
	PeerKind    detect.ProfileKind = "volpeer"
)

// Defaults of the options left at zero.
const (
	DefaultWindow     = time.Hour
	DefaultFactor     = 10
	DefaultMinHistory = 24
	DefaultZMin       = 3
	// DefaultAlpha is 2/(N+1) with N = 24: a window weighs as in a 24-window
	// moving average, a day of hourly windows.
	DefaultAlpha = 2.0 / 25
	// DefaultFloor is one unit of the measure; callers should set a floor
	// that means "negligible" in their measure (a few pages of bytes, a
	// hundred rows), or a subject who never exported trips on anything.
	DefaultFloor = 1
	// DefaultTTL keeps a silent subject's history for a quarter; it is
	// raised to two MinHistory spans when windows are long.
	DefaultTTL = 90 * 24 * time.Hour
	// DefaultMeasure names the series of an Observation without a Measure.
	DefaultMeasure = "volume"
)

// Options configure Baselines.
type Options struct {
	// Window is the length of the fixed windows volumes are summed over;
	// default 1h. Changing it discards what was learned with another one:
	// a mean per hour says nothing about a day.
	Window time.Duration
	// Factor: a window above Factor × the usual volume may be anomalous;
	// default 10, must be above 1.
	Factor float64
	// MinHistory closed windows (empty ones included) are learned before
	// any judgement; default 24.
	MinHistory int
	// ZMin is the least z-score (standard deviations above the mean) of an
	// anomaly; default 3.
	ZMin float64
	// Alpha is the EWMA weight of the newest window, in (0, 1]; default
	// DefaultAlpha.
	Alpha float64
	// Floor is the least mean the Factor applies to, in the measure's unit;
	// default 1.
	Floor    float64
	Profiles detect.Profiles
	// TTL is how long a record outlives its last update; default
	// DefaultTTL, at least two windows.
	TTL    time.Duration
	Logger *slog.Logger // store errors of the peer aggregate; nil: discarded
}

// Baselines judges volumes against per-subject and per-peer-group history.
// It is safe for concurrent use.
type Baselines struct {
	opt    Options
	window int64 // ns
}

// Observation is volume taken by a subject from a group.
type Observation struct {
	// Subject is already a hashed key (detect.HashID output or AccountKey).
	Subject string
	// Group names the route group (an export block); it is hashed with the
	// subject, never a store key by itself.
	Group string
	// Peer is the subject's peer value (the peers claim); "" compares the
	// subject with their own history only.
	Peer   string
	Amount int64 // negative amounts count as 0
	At     time.Time
	// Measure names the series ("bytes", "rows", "requests"); "" is
	// DefaultMeasure. Each measure has its own baseline.
	Measure string
}

// New validates o and fills in its defaults.
func New(o Options) (*Baselines, error) {
	if o.Profiles == nil {
		return nil, errors.New("baseline: no profile store")
	}
	if err := fillDefaults(&o); err != nil {
		return nil, err
	}
	return &Baselines{opt: o, window: int64(o.Window)}, nil
}

func fillDefaults(o *Options) error {
	switch {
	case o.Window < 0:
		return fmt.Errorf("baseline: window %v is negative", o.Window)
	case o.Factor != 0 && !(o.Factor > 1) || math.IsInf(o.Factor, 0):
		return fmt.Errorf("baseline: factor %v is not a finite number above 1", o.Factor)
	case o.MinHistory < 0:
		return fmt.Errorf("baseline: min_history %d is negative", o.MinHistory)
	case o.ZMin < 0 || math.IsNaN(o.ZMin) || math.IsInf(o.ZMin, 0):
		return fmt.Errorf("baseline: z threshold %v is not a finite number ≥ 0", o.ZMin)
	case o.Alpha < 0 || o.Alpha > 1 || math.IsNaN(o.Alpha):
		return fmt.Errorf("baseline: alpha %v is outside (0, 1]", o.Alpha)
	case o.Floor < 0 || math.IsNaN(o.Floor) || math.IsInf(o.Floor, 0):
		return fmt.Errorf("baseline: floor %v is not a finite number ≥ 0", o.Floor)
	case o.TTL < 0:
		return fmt.Errorf("baseline: ttl %v is negative", o.TTL)
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Factor == 0 {
		o.Factor = DefaultFactor
	}
	if o.MinHistory == 0 {
		o.MinHistory = DefaultMinHistory
	}
	if o.ZMin == 0 {
		o.ZMin = DefaultZMin
	}
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.Floor == 0 {
		o.Floor = DefaultFloor
	}
	if o.TTL == 0 {
		o.TTL = max(DefaultTTL, 2*time.Duration(o.MinHistory)*o.Window)
	}
	if o.TTL < 2*o.Window {
		return fmt.Errorf("baseline: ttl %v is shorter than two windows", o.TTL)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// subjectKey and peerKey are the store keys: hashes, since a group name and
// a claim value are configuration and client input.
func subjectKey(subject, group string) string {
	return detect.HashID("vol", subject+"\x00"+group)
}

func peerKey(peer, group string) string {
	return detect.HashID("volpeer", peer+"\x00"+group)
}

// Add adds o.Amount to the subject's open window, first closing the windows
// that ended since their last activity, and judges the open window. The
// verdict is Anomalous once per window, subject, group and measure: on the
// first Add that crosses, on whichever instance makes it. The peer
// aggregate is read before and fed after the subject's update; a store
// error there is logged and the verdict stands (it is already recorded as
// reported, and an error would make the caller drop it).
func (b *Baselines) Add(ctx context.Context, o Observation) (Verdict, error) {
	measure := o.Measure
	if measure == "" {
		measure = DefaultMeasure
	}
	if o.Subject == "" {
		return Verdict{}, errors.New("baseline: observation without a subject")
	}
	if len(measure) > MaxMeasureName {
		return Verdict{}, fmt.Errorf("baseline: measure name longer than %d bytes", MaxMeasureName)
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	idx := floorDiv(at.UnixNano(), b.window)
	var peers peerView
	if o.Peer != "" {
		peers = b.peerView(ctx, o.Peer, o.Group, measure)
	}
	var v Verdict
	var closed int64
	_, err := b.opt.Profiles.Update(ctx, SubjectKind, subjectKey(o.Subject, o.Group), b.opt.TTL, func(cur []byte) []byte {
		// runs again from scratch when another instance won the race
		r, err := decodeRecord(cur)
		if err != nil || r.window != b.window {
			r = record{window: b.window}
		}
		s := r.find(measure)
		if s == nil {
			s = r.add(measure, idx)
		}
		closed = roll(s, idx, b.opt.Alpha)
		s.total = addTotal(s.total, max(o.Amount, 0))
		v = b.judge(s, peers)
		v.Measure = measure
		if v.Anomalous {
			if s.reported == s.open {
				v.Anomalous = false
			} else {
				s.reported, s.lastAnomaly = s.open, at.UnixNano()
			}
		}
		return r.encode()
	})
	if err != nil {
		return Verdict{}, fmt.Errorf("baseline: %w", err)
	}
	if o.Peer != "" && closed > 0 {
		b.feedPeers(ctx, o, measure, closed)
	}
	return v, nil
}

// peerView is what a verdict needs of the peer aggregate.
type peerView struct {
	known      bool
	mean, vari float64
	members    int
}

// peerView reads the peer aggregate of one measure; it is known only when
// it has enough history from enough members.
func (b *Baselines) peerView(ctx context.Context, peer, group, measure string) peerView {
	cur, err := b.opt.Profiles.Get(ctx, PeerKind, peerKey(peer, group))
	if err != nil {
		b.opt.Logger.Warn("baseline: reading peers", "error", err)
		return peerView{}
	}
	if cur == nil {
		return peerView{}
	}
	r, err := decodePeers(cur)
	if err != nil || r.window != b.window {
		return peerView{}
	}
	s := r.find(measure)
	if s == nil {
		return peerView{}
	}
	return peerView{
		known:   s.samples >= uint32(b.opt.MinHistory) && len(s.members) >= minPeerMembers,
		mean:    s.mean,
		vari:    s.vari,
		members: len(s.members),
	}
}

// feedPeers folds a closed, non-empty window of a member into their peer
// aggregate.
func (b *Baselines) feedPeers(ctx context.Context, o Observation, measure string, closed int64) {
	tag := memberTag(o.Subject)
	_, err := b.opt.Profiles.Update(ctx, PeerKind, peerKey(o.Peer, o.Group), b.opt.TTL, func(cur []byte) []byte {
		r, err := decodePeers(cur)
		if err != nil || r.window != b.window {
			r = peerRecord{window: b.window}
		}
		s := r.find(measure)
		if s == nil {
			if len(r.series) >= maxMeasures {
				r.series = r.series[1:] // the oldest measure makes room
			}
			r.series = append(r.series, peerSeries{name: measure})
			s = &r.series[len(r.series)-1]
		}
		foldPeer(s, float64(closed), tag, b.opt.Alpha)
		return r.encode()
	})
	if err != nil {
		b.opt.Logger.Warn("baseline: updating peers", "error", err)
	}
}
