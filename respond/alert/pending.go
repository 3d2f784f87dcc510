package alert

import (
	"slices"
	"time"
)

// Puts the outbox refused (Redis down) are held by the router, in order,
// and offered again with backoff, so an outbox outage delays alerts rather
// than losing them, up to Options.Pending (all channels together).

// hold keeps a put the outbox refused, or drops it when too many wait. The
// bound is shared, so when it is reached a MEDIUM+ put takes the place of
// the oldest LOW one: a storm of LOW alerts must not be what keeps a
// MEDIUM+ alert out.
func (d *Dispatcher) hold(r *route, j Job) {
	if len(d.pending) >= d.opts.Pending {
		i := -1
		if !isLow(j.Alert.Severity) {
			i = slices.IndexFunc(d.pending, func(p pendingPut) bool { return isLow(p.j.Alert.Severity) })
		}
		if i < 0 {
			d.dropped(r, "outbox_unavailable")
			return
		}
		d.dropped(d.pending[i].r, "outbox_unavailable")
		d.pending = slices.Delete(d.pending, i, i+1)
	}
	d.pending = append(d.pending, pendingPut{r, j})
}

// nextPendingWait doubles the wait between offers of the held puts, from a
// tick up to maxPendingRetry.
func (d *Dispatcher) nextPendingWait() time.Duration {
	d.pendingBackoff = min(max(2*d.pendingBackoff, d.tickEvery()), maxPendingRetry)
	return d.pendingBackoff
}

// retryPending offers the held puts to the outbox again, in order, and
// stops at the first failure (one outbox timeout per offer, not per job).
func (d *Dispatcher) retryPending() {
	for len(d.pending) > 0 {
		if d.late() {
			return
		}
		p := d.pending[0]
		if err := d.put(p.r, p.j); err != nil {
			d.pendingAt = time.Now().Add(d.nextPendingWait())
			return
		}
		d.pending[0] = pendingPut{}
		d.pending = d.pending[1:]
	}
	d.pending = nil
	d.pendingBackoff = 0
}
