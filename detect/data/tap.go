package data

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/access"
	"github.com/vigilsec/vigil/detect/data/rows"
)

// Tap watches the answer of a request to an export or sensitive route.
func (d *Detector) Tap(req *detect.Request) detect.ResponseTap {
	if len(d.opt.Groups) == 0 && len(d.opt.Sensitive) == 0 {
		return nil
	}
	g := d.groupOf(req)
	var s *Sensitive
	var pattern string
	if len(d.opt.Sensitive) > 0 {
		s, pattern = d.sensitive(access.NewPathView(req.HTTP))
	}
	if g == nil && s == nil {
		return nil
	}
	t := &tap{d: d, g: g, s: s, route: pattern, facts: req.Facts(), subj: subject(req), start: req.Start}
	if g != nil {
		t.peer = peerOf(req, g.Peers)
		if g.Over == OverCut && !d.opt.MonitorOnly {
			t.priorSums(context.WithoutCancel(req.HTTP.Context()))
		}
	}
	return t
}

// tap counts one answer: constant memory whatever its length.
type tap struct {
	d     *Detector
	g     *Group     // nil: a sensitive route only
	s     *Sensitive // nil: an export route only
	route string     // the sensitive pattern matched
	facts detect.Facts
	subj  string
	peer  string
	start time.Time

	status    int
	counting  bool
	bytes     int64
	rows      rows.Counter
	rowsFixed int64 // rows from the response header; -1: count the body
	// prior sums and the caps they leave, under over cut (-1: no cap)
	capBytes, capRows int64
	cut               string // which cap ended the answer
}

var errCut = errors.New("export cap reached: answer cut")

// priorSums reads what the subject already took in the window, so the
// answer that crosses a cap can be ended as it crosses.
func (t *tap) priorSums(ctx context.Context) {
	t.capBytes, t.capRows = -1, -1
	key := sumKey(t.g, t.subj)
	if t.g.Bytes.on() {
		if v, err := t.d.opt.Sums.Sum(ctx, t.g.bytesK, key, t.start); err == nil {
			t.capBytes = max(t.g.Bytes.Max-v, 0)
		}
	}
	if t.g.Rows.on() {
		if v, err := t.d.opt.Sums.Sum(ctx, t.g.rowsK, key, t.start); err == nil {
			t.capRows = max(t.g.Rows.Max-v, 0)
		}
	}
}

func (t *tap) Header(status int, h http.Header) {
	t.status = status
	t.counting = status >= 200 && status < 300
	t.rowsFixed = -1
	if !t.counting || t.g == nil {
		return
	}
	if t.g.RowsHeader != "" {
		n, err := strconv.ParseInt(h.Get(t.g.RowsHeader), 10, 64)
		if err == nil && n >= 0 {
			t.rowsFixed = n
		} else {
			t.rowsFixed = 0
		}
		return
	}
	t.rows.Reset(rows.FormatOf(h.Get("Content-Type")), true)
}

func (t *tap) Write(p []byte) error {
	if !t.counting {
		return nil
	}
	t.bytes += int64(len(p))
	if t.g == nil {
		return nil
	}
	if t.rowsFixed < 0 {
		t.rows.Write(p)
	}
	if t.cut != "" {
		return errCut
	}
	if t.capBytes >= 0 && t.bytes > t.capBytes && t.g.Over == OverCut {
		t.cut = "bytes"
	} else if t.capRows >= 0 && t.rowCount() > t.capRows && t.g.Over == OverCut {
		t.cut = "rows"
	}
	if t.cut != "" {
		return errCut
	}
	return nil
}

func (t *tap) rowCount() int64 {
	if t.rowsFixed >= 0 {
		return t.rowsFixed
	}
	return t.rows.Rows()
}

// Done hands the figures to the background: sums, limits, baseline,
// sensitive access.
func (t *tap) Done(complete bool) {
	if !t.counting {
		return
	}
	fig := figures{bytes: t.bytes, complete: complete, cut: t.cut}
	if t.g != nil {
		switch {
		case t.rowsFixed >= 0:
			fig.rows = t.rowsFixed
		case !complete:
			// a cut or broken-off answer ends mid-record: its complete
			// records are what left
			fig.rows = t.rows.Rows()
		default:
			fig.rows, fig.rowsErr = t.rows.Close()
		}
	}
	t.d.opt.Pool.Go(func() { t.d.account(t, fig) })
}

// figures are what one answer carried.
type figures struct {
	bytes, rows int64
	rowsErr     error
	complete    bool
	cut         string
}
