package alert

import (
	"time"

	"github.com/vigilsec/vigil/detect"
)

// dropEvent counts an event that will not be routed on every channel that
// wanted it.
func (d *Dispatcher) dropEvent(e detect.Event, reason string) {
	a := Alert{Event: detect.Event{Type: e.Type, Severity: e.Severity}}
	for _, r := range d.routes {
		if r.Policy.match(a) {
			d.dropped(r, reason)
		}
	}
}

// tickEvery is how often windows are checked: a quarter of the shortest
// throttle window, between 10ms and 1s.
func (d *Dispatcher) tickEvery() time.Duration {
	t := time.Second
	for _, r := range d.routes {
		t = min(t, r.Policy.ThrottleWindow/4)
	}
	return max(t, 10*time.Millisecond)
}

// route fans one event out to the channels that want it.
func (d *Dispatcher) route(e detect.Event) {
	a := FromEvent(e).Bounded()
	now := time.Now()
	for _, r := range d.routes {
		if !r.Policy.match(a) {
			continue
		}
		if r.disabled.Load() {
			d.dropped(r, "disabled")
			continue
		}
		w := r.windowFor(a)
		// while the outbox is known to be down (puts are held) or the
		// shutdown deadline passed, do not wait for it: fail open
		if r.Policy.DedupWindow > 0 && len(d.pending) == 0 && !d.late() {
			ctx, cancel := d.opCtx()
			first, err := d.opts.Outbox.FirstSeen(ctx, r.id, a.DedupKey+"/"+a.Severity.String(), r.Policy.DedupWindow)
			cancel()
			if err != nil {
				// better a duplicate than a lost alert
				d.log.Warn("alert dedup check failed; sending anyway", "channel", r.label, "error", err)
			} else if !first {
				w.hold(a, reasonDuplicate, now)
				d.dropped(r, reasonDuplicate)
				continue
			}
		}
		if !w.admit(now, r.Policy.limit(a.Severity)) {
			w.hold(a, reasonThrottled, now)
			d.dropped(r, reasonThrottled)
			continue
		}
		d.enqueue(r, Job{ID: a.ID, Alert: a, Queued: now, Due: now})
	}
}

// closeWindows sends the digests of the windows that ended (all, when
// closing) and forgets those windows, so only the open ones take memory.
func (d *Dispatcher) closeWindows(now time.Time, all bool) {
	for _, r := range d.routes {
		for k, w := range r.wins {
			if !all && !w.due(now, r.Policy) {
				continue
			}
			for _, dg := range w.digests(now, r.id, k) {
				d.enqueue(r, Job{ID: dg.ID, Alert: dg, Queued: now, Due: now})
			}
			delete(r.wins, k)
		}
	}
}

func (d *Dispatcher) enqueue(r *route, j Job) {
	switch {
	case d.late():
		d.dropped(r, "shutdown")
	case len(d.pending) > 0:
		// the outbox is down: keep the order, wait for retryPending
		d.hold(r, j)
	default:
		if err := d.put(r, j); err != nil {
			d.log.Warn("alert outbox unavailable; holding alerts in memory", "error", err)
			d.hold(r, j)
			d.pendingBackoff = 0
			d.pendingAt = time.Now().Add(d.nextPendingWait())
		}
	}
}

// put offers one job to the outbox; an error means it was not queued.
func (d *Dispatcher) put(r *route, j Job) error {
	ctx, cancel := d.opCtx()
	res, err := d.opts.Outbox.Put(ctx, r.id, j, r.Policy.MaxQueue, queueTTL(r.Policy))
	cancel()
	switch {
	case err != nil:
		return err
	case res == PutFull:
		d.dropped(r, "queue_full")
	default:
		if res == PutEvicted {
			// a LOW job made room for this one: the depth is unchanged
			d.dropped(r, "queue_full")
		} else {
			r.depth.Add(1)
		}
		d.reportDepth(r)
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// queueTTL is how long a channel's queue outlives its last put or retry.
func queueTTL(p Policy) time.Duration {
	return p.MaxAge + p.Timeout + queueTTLMargin
}

func (d *Dispatcher) dropped(r *route, reason string) {
	d.droppedKind(r.Sender.Kind(), reason)
}

// reportDepth sums the depth of the channels of r's kind.
func (d *Dispatcher) reportDepth(r *route) {
	if d.opts.Hooks.Depth == nil {
		return
	}
	n := int64(0)
	for _, o := range d.routes {
		if o.Sender.Kind() == r.Sender.Kind() {
			n += o.depth.Load()
		}
	}
	d.opts.Hooks.Depth(r.Sender.Kind(), int(n))
}
