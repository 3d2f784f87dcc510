package data

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/query"
)

var errThrottled = errors.New("export limit reached: try again later")

// Check counts an export request, refuses it while its subject is
// throttled, reports an oversized page, and hands an id on an enumeration
// pattern to the background count.
func (d *Detector) Check(req *detect.Request) *detect.Refusal {
	if e := d.opt.Enumeration; e != nil {
		if enum, id, ok := e.Match(req.HTTP.URL.Path); ok {
			d.enumerate(req, enum, id)
		}
	}
	if len(d.opt.Groups) == 0 {
		return nil
	}
	g := d.groupOf(req)
	if g == nil {
		return nil
	}
	if g.Query != nil && req.HTTP.URL.RawQuery != "" {
		d.judgeQuery(req, g)
	}
	return d.limitRequests(req, g)
}

// limitRequests counts the request against the group's requests limit
// and, under over throttle, refuses it while any of the subject's sums is
// at its limit. Only throttling needs the count before the upstream; the
// other actions count off the request path. A store that fails lets the
// request through.
func (d *Detector) limitRequests(req *detect.Request, g *Group) *detect.Refusal {
	throttle := g.Over == OverThrottle && !d.opt.MonitorOnly
	if !g.Reqs.on() && !throttle {
		return nil
	}
	key, facts, now := sumKey(g, subject(req)), req.Facts(), req.Start
	if !throttle {
		d.opt.Pool.Go(func() {
			if d.countRequest(context.Background(), g, key, now) == g.Reqs.Max+1 {
				d.bulk(g, facts, now, crossing{"requests", g.Reqs.Max + 1, g.Reqs})
			}
		})
		return nil
	}
	ctx := context.WithoutCancel(req.HTTP.Context())
	n := d.countRequest(ctx, g, key, now)
	if n == g.Reqs.Max+1 {
		d.opt.Pool.Go(func() { d.bulk(g, facts, now, crossing{"requests", n, g.Reqs}) })
	}
	over := n > g.Reqs.Max && g.Reqs.on()
	for _, c := range []struct {
		l Limit
		s detect.Sum
	}{{g.Bytes, g.bytesK}, {g.Rows, g.rowsK}} {
		if over || !c.l.on() {
			continue
		}
		if v, err := d.opt.Sums.Sum(ctx, c.s, key, now); err == nil && v >= c.l.Max {
			over = true
		}
	}
	if !over {
		return nil
	}
	return &detect.Refusal{Status: http.StatusTooManyRequests, Retry: g.retry(), Err: errThrottled, Action: "throttle"}
}

// countRequest adds one request to the subject's requests sum and returns
// the sum (0 without a requests limit or when the store fails: no verdict).
func (d *Detector) countRequest(ctx context.Context, g *Group, key string, now time.Time) int64 {
	if !g.Reqs.on() {
		return 0
	}
	n, err := d.opt.Sums.Add(ctx, g.reqK, key, 1, now)
	if err != nil {
		return 0
	}
	return n
}

// retry is how long a throttled subject waits at most: the shortest window
// among the limits (the sums then hold nothing of what throttled it).
func (g *Group) retry() (r time.Duration) {
	for _, l := range []Limit{g.Bytes, g.Rows, g.Reqs} {
		if l.on() && (r == 0 || l.Within < r) {
			r = l.Within
		}
	}
	return r
}

// enumerate counts an id off the request path.
func (d *Detector) enumerate(req *detect.Request, enum int, id string) {
	facts, subj, now := req.Facts(), subject(req), req.Start
	d.opt.Pool.Go(func() {
		f, ok := d.opt.Enumeration.Enumerate(context.Background(), subj, enum, id, now)
		if !ok {
			return
		}
		f.Details["kind"] = f.Kind
		d.act(detect.Finding{Type: detect.DataAccessAnomaly, Time: now, Facts: facts, Details: f.Details})
	})
}

// peerOf is the value of the peers claim of the request's session.
func peerOf(req *detect.Request, claim string) string {
	if claim == "" || req.Identity == nil {
		return ""
	}
	return strings.Join(req.Identity.ClaimRoles[claim], " ")
}

// judgeQuery reports an oversized page at once and counts the query's
// shape (its parameter names) off the request path: a subject suddenly
// sending many distinct shapes is probing the API.
func (d *Detector) judgeQuery(req *detect.Request, g *Group) {
	raw, facts, now := req.HTTP.URL.RawQuery, req.Facts(), req.Start
	report := func(f query.Finding) {
		f.Details["kind"], f.Details["export"] = f.Kind, g.Name()
		d.act(detect.Finding{Type: detect.DataAccessAnomaly, Severity: detect.Medium, Time: now, Facts: facts, Details: f.Details})
	}
	page, paged := g.Query.Query(raw)
	shape, subj := query.Shape(raw), subject(req)
	d.opt.Pool.Go(func() {
		if paged {
			report(page)
		}
		if f, ok := g.Query.Shapes(context.Background(), subj, shape, now); ok {
			report(f)
		}
	})
}
