package alert

import "time"

// Puts the outbox refused (Redis down) are held by the router, in order,
// and offered again with backoff, so an outbox outage delays alerts rather
// than losing them, up to maxPending.

// hold keeps a put the outbox refused, or drops it when too many wait.
func (d *Dispatcher) hold(r *route, j Job) {
	if len(d.pending) >= maxPending {
		d.dropped(r, "outbox_unavailable")
		return
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
