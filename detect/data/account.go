package data

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/baseline"
)

// crossing is a subject's sum passing a limit.
type crossing struct {
	measure  string // bytes, rows, requests
	observed int64
	limit    Limit
}

// account adds an answer's figures to the subject's sums and judges them.
func (d *Detector) account(t *tap, fig figures) {
	ctx := context.Background()
	if t.g != nil {
		d.accountExport(ctx, t, fig)
	}
	if t.s != nil {
		d.accountSensitive(ctx, t, fig)
	}
}

func (d *Detector) accountExport(ctx context.Context, t *tap, fig figures) {
	g := t.g
	key := sumKey(g, t.subj)
	extra := detect.Details{"answer_bytes": fig.bytes}
	if fig.rowsErr != nil {
		// a body that is not what its Content-Type says: bytes only
		extra["rows_error"] = fig.rowsErr.Error()
	} else {
		extra["answer_rows"] = fig.rows
	}
	if fig.cut != "" {
		extra["cut"], extra["cut_by"] = true, fig.cut
	}
	var crossed []crossing
	add := func(l Limit, s detect.Sum, measure string, v int64) {
		if !l.on() || v <= 0 {
			return
		}
		after, err := d.opt.Sums.Add(ctx, s, key, v, t.start)
		if err == nil && after-v <= l.Max && after > l.Max {
			crossed = append(crossed, crossing{measure, after, l})
		}
	}
	add(g.Bytes, g.bytesK, "bytes", fig.bytes)
	if fig.rowsErr == nil {
		add(g.Rows, g.rowsK, "rows", fig.rows)
	}
	for i, c := range crossed {
		if i > 0 {
			extra = copyDetails(extra)
		}
		d.bulkWith(g, t.facts, t.start, c, extra)
	}
	if g.Baseline != nil {
		d.judgeVolume(ctx, t, fig)
	}
}

// bulk raises BULK_EXPORT for a crossing found while counting requests.
func (d *Detector) bulk(g *Group, facts detect.Facts, now time.Time, c crossing) {
	d.bulkWith(g, facts, now, c, detect.Details{})
}

// bulkWith raises BULK_EXPORT with the figures and the limit; under over
// revoke it also ends the user's sessions.
func (d *Detector) bulkWith(g *Group, facts detect.Facts, now time.Time, c crossing, extra detect.Details) {
	extra["export"], extra["measure"] = g.Name(), c.measure
	extra["observed"], extra["limit"], extra["window"] = c.observed, c.limit.Max, c.limit.Within.String()
	extra["over"] = g.Over.String()
	f := detect.Finding{Type: detect.BulkExport, Time: now, Facts: facts, Details: extra}
	if g.Over == OverRevoke && facts.Session != "" {
		f.Action, f.Target = detect.EndSessions, facts.Session
	}
	d.act(f)
}

// judgeVolume feeds the answer to the baseline: rows when the group counts
// rows, else bytes.
func (d *Detector) judgeVolume(ctx context.Context, t *tap, fig figures) {
	g := t.g
	measure, amount := "bytes", fig.bytes
	if (g.Rows.on() || g.RowsHeader != "") && fig.rowsErr == nil {
		measure, amount = "rows", fig.rows
	}
	v, err := g.Baseline.Add(ctx, baseline.Observation{Subject: t.subj, Group: g.key, Peer: t.peer, Amount: amount, At: t.start, Measure: measure})
	if err != nil {
		d.opt.Logger.Debug("data access baseline", "error", err)
		return
	}
	if !v.Anomalous {
		return
	}
	details := v.Details()
	details["export"], details["measure"] = g.Name(), measure
	d.act(detect.Finding{Type: detect.DataAccessAnomaly, Time: t.start, Facts: t.facts, Details: details})
}

func copyDetails(d detect.Details) detect.Details {
	out := make(detect.Details, len(d)+6)
	for k, v := range d {
		out[k] = v
	}
	return out
}

// String names the over action in events and config.
func (o Over) String() string {
	switch o {
	case OverThrottle:
		return "throttle"
	case OverRevoke:
		return "revoke"
	case OverCut:
		return "cut"
	}
	return "alert"
}
