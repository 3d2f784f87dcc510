// Package data watches data leave: bulk exports counted in bytes, rows and
// requests as the answer streams, volumes judged against each user's own
// and their peers' baselines, sensitive routes, and unusual queries
// (enumeration of ids, oversized pages).
//
// The counting is inline and streaming: a ResponseTap sees the body as the
// app produced it (decoded when compressed), counts it in constant memory,
// and can end an answer that crosses a cap. Everything that needs the
// store runs on the pool after the answer, except what enforcement needs
// before it (a throttled subject, the running total a cap is measured
// against).
package data

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/access"
	"github.com/vigilsec/vigil/detect/data/baseline"
	"github.com/vigilsec/vigil/detect/data/query"
)

// Over is what crossing an export limit does beyond BULK_EXPORT.
type Over uint8

const (
	// OverAlert raises BULK_EXPORT only.
	OverAlert Over = iota
	// OverThrottle answers further export requests in the window with 429.
	OverThrottle
	// OverRevoke ends the user's sessions.
	OverRevoke
	// OverCut ends the answer that crosses the cap: the connection is
	// closed, so the client sees a truncated transfer.
	OverCut
)

// Limit is "<max> within <dur>"; a zero Max is off.
type Limit struct {
	Max    int64
	Within time.Duration
}

func (l Limit) on() bool { return l.Max > 0 && l.Within > 0 }

// Route is a path glob and its compiled matcher.
type Route struct {
	Pattern string
	Match   access.Matcher
}

// Baseliner judges a subject's volume against their history and peers
// (baseline.Baselines).
type Baseliner interface {
	Add(ctx context.Context, o baseline.Observation) (baseline.Verdict, error)
}

// Group is one `export` block: its routes and limits.
type Group struct {
	Routes              []Route
	Bytes, Rows, Reqs   Limit
	RowsHeader          string // rows from this response header; "": count the body
	Over                Over
	Baseline            Baseliner // nil: no baseline
	Peers               string    // the session claim whose value groups peers
	Query               *query.Detector
	key                 string
	bytesK, rowsK, reqK detect.Sum
}

// Name is the group's name in events: its first pattern.
func (g *Group) Name() string { return g.Routes[0].Pattern }

// Sensitive is one `sensitive` line.
type Sensitive struct {
	Routes []Route
	// From and To are the hours (0–24, UTC) access is expected in; From ==
	// To: any hour.
	From, To int
}

// Enumerator counts distinct ids per subject (query.Detector).
type Enumerator interface {
	Match(path string) (enum int, id string, ok bool)
	Enumerate(ctx context.Context, subject string, enum int, id string, now time.Time) (query.Finding, bool)
}

// Options configure a Detector.
type Options struct {
	Groups      []Group
	Sensitive   []Sensitive
	Enumeration Enumerator // nil: none
	Sums        detect.SumWindow
	Profiles    detect.Profiles
	Actor       detect.Actor
	Pool        *detect.Pool
	MonitorOnly bool
	Logger      *slog.Logger
}

// Detector is the data family's check, tap factory and background work.
type Detector struct {
	opt Options
}

// Sum kinds, part of the store's key names.
const (
	sumBytes    detect.SumKind = "xbytes"
	sumRows     detect.SumKind = "xrows"
	sumRequests detect.SumKind = "xreqs"
)

// New checks the options.
func New(opt Options) (*Detector, error) {
	if opt.Actor == nil || opt.Pool == nil || opt.Sums == nil || opt.Profiles == nil {
		return nil, errors.New("data: an actor, a pool, sums and profiles are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	for i := range opt.Groups {
		g := &opt.Groups[i]
		if len(g.Routes) == 0 {
			return nil, errors.New("data: an export group needs a route")
		}
		g.key = "export:" + strconv.Itoa(i) + ":" + g.Name()
		g.bytesK = detect.Sum{Kind: sumBytes, Within: g.Bytes.Within}
		g.rowsK = detect.Sum{Kind: sumRows, Within: g.Rows.Within}
		g.reqK = detect.Sum{Kind: sumRequests, Within: g.Reqs.Within}
	}
	return &Detector{opt: opt}, nil
}

// subject is who data leaves to: the verified user, else the client's
// address (or IPv6 /64); the key is hashed, the name is for events.
func subject(req *detect.Request) (key string) {
	if id := req.Identity; id != nil {
		return id.UserKey
	}
	return detect.HashID("ip", req.Net())
}

// groupOf is the export group whose routes match the request, or nil;
// the check's answer is kept on the request for the tap.
func (d *Detector) groupOf(req *detect.Request) *Group {
	switch n := req.ExportGroup; {
	case n > 0:
		return &d.opt.Groups[n-1]
	case n < 0:
		return nil
	}
	req.ExportGroup = -1
	if len(d.opt.Groups) == 0 {
		return nil
	}
	v := access.NewPathView(req.HTTP)
	for i := range d.opt.Groups {
		g := &d.opt.Groups[i]
		for _, r := range g.Routes {
			if v.Matches(r.Match, r.Pattern) {
				req.ExportGroup = i + 1
				return g
			}
		}
	}
	return nil
}

// sensitive is the sensitive line matching the request, or nil.
func (d *Detector) sensitive(v access.PathView) (*Sensitive, string) {
	for i := range d.opt.Sensitive {
		s := &d.opt.Sensitive[i]
		for _, r := range s.Routes {
			if v.Matches(r.Match, r.Pattern) {
				return s, r.Pattern
			}
		}
	}
	return nil, ""
}

// sumKey is the store key of a subject's sum in a group.
func sumKey(g *Group, subj string) string { return detect.HashID("export", g.key+"\x00"+subj) }

// act hands a finding to the actor.
func (d *Detector) act(f detect.Finding) { d.opt.Actor.Act(context.Background(), f) }
