package alert

import (
	"context"
	"time"
)

// runWorker delivers one channel's jobs until the dispatcher closes.
func (d *Dispatcher) runWorker(r *route) {
	defer d.workers.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var errPause time.Duration
	for {
		if d.base.Err() != nil {
			return
		}
		now := time.Now()
		ctx, cancel := context.WithTimeout(d.base, opTimeout)
		jobs, err := d.opts.Outbox.Lease(ctx, r.id, now, now.Add(r.Policy.Timeout+d.opts.LeaseSlack), leaseBatch)
		cancel()
		if err != nil {
			if errPause == 0 {
				d.log.Warn("alert outbox unreachable; delivery paused", "channel", r.label, "error", err)
			}
			errPause = min(max(2*errPause, 50*time.Millisecond), d.opts.Poll)
			if !d.sleep(r, timer, errPause) {
				return
			}
			continue
		}
		errPause = 0
		more := len(jobs) == leaseBatch
		for i, j := range jobs {
			if d.base.Err() != nil {
				d.release(r, jobs[i:])
				return
			}
			// start an attempt only if it (and filing its outcome) ends
			// well inside the lease; otherwise another instance may lease
			// the job meanwhile and send it too
			if time.Now().Add(r.Policy.Timeout + d.opts.LeaseSlack/2).After(j.Lease) {
				d.release(r, jobs[i:])
				more = true
				break
			}
			d.deliver(r, j)
		}
		if more {
			continue
		}
		wait := d.opts.Poll
		ctx, cancel = context.WithTimeout(d.base, opTimeout)
		next, depth, err := d.opts.Outbox.Next(ctx, r.id)
		cancel()
		if err == nil {
			r.depth.Store(int64(depth))
			d.reportDepth(r)
			if !next.IsZero() {
				wait = min(wait, time.Until(next))
			}
		}
		if !d.sleep(r, timer, max(wait, 0)) {
			return
		}
	}
}

// sleep waits for the duration, a wake-up or the end; false at the end.
func (d *Dispatcher) sleep(r *route, timer *time.Timer, dur time.Duration) bool {
	timer.Reset(dur)
	select {
	case <-timer.C:
		return true
	case <-r.wake:
		// Go 1.23+ timers: Stop leaves no stale tick behind
		timer.Stop()
		return true
	case <-d.base.Done():
		return false
	}
}

// deliver makes one attempt and files the job according to the outcome.
func (d *Dispatcher) deliver(r *route, j Job) {
	now := time.Now()
	if r.disabled.Load() {
		d.ack(r, j)
		d.dropped(r, "disabled")
		return
	}
	// the last retry is due at max_age; allow it one attempt and a poll
	if now.Sub(j.Queued) > r.Policy.MaxAge+r.Policy.Timeout+d.opts.Poll {
		d.giveUp(r, j, "expired", "alert older than max_age given up", nil)
		return
	}
	ctx, cancel := context.WithTimeout(d.base, r.Policy.Timeout)
	err := r.Sender.Send(ctx, Message{ID: j.ID, Alert: j.Alert, Attempt: j.Attempts + 1})
	cancel()
	if err == nil {
		d.ack(r, j)
		if d.opts.Hooks.Sent != nil {
			d.opts.Hooks.Sent(r.Sender.Kind(), time.Since(j.Queued))
		}
		return
	}
	if d.base.Err() != nil {
		// shutting down mid-attempt: not the receiver's fault
		d.release(r, []Job{j})
		return
	}
	if d.opts.Hooks.Failed != nil {
		d.opts.Hooks.Failed(r.Sender.Kind())
	}
	de := classify(err)
	switch {
	case de.Gone:
		if !r.disabled.Swap(true) {
			d.log.Error("alert endpoint answered 410 Gone: channel disabled until the configuration changes",
				"channel", r.label, "alert_id", j.ID)
		}
		d.ack(r, j)
		d.dropped(r, "gone")
	case de.Permanent:
		d.giveUp(r, j, "rejected", "alert refused by the receiver; not retried", err)
	default:
		j.Attempts++
		// retry until max_age: the last attempt is due at max_age at the
		// latest; a Retry-After that does not fit any more ends it
		left := r.Policy.MaxAge - time.Since(j.Queued)
		if left <= 0 || de.RetryAfter > left {
			d.giveUp(r, j, "expired", "alert delivery failed until max_age; given up", err)
			return
		}
		delay := min(max(backoff(d.opts.Schedule, j.Attempts), de.RetryAfter), left)
		j.Due = time.Now().Add(delay)
		d.log.Warn("alert delivery failed; will retry", "channel", r.label, "alert_id", j.ID,
			"attempt", j.Attempts, "retry_in", delay.Round(time.Millisecond).String(), "error", err)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		if err := d.opts.Outbox.Retry(ctx, r.id, j, queueTTL(r.Policy)); err != nil {
			// the lease runs out and the job comes back anyway
			d.log.Warn("alert outbox: rescheduling failed", "channel", r.label, "error", err)
		}
		cancel()
	}
}

func (d *Dispatcher) giveUp(r *route, j Job, reason, msg string, err error) {
	d.ack(r, j)
	d.dropped(r, reason)
	attrs := []any{"channel", r.label, "alert_id", j.ID, "type", string(j.Alert.Type), "attempts", j.Attempts}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	d.log.Error(msg, attrs...)
}

func (d *Dispatcher) ack(r *route, j Job) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := d.opts.Outbox.Ack(ctx, r.id, j); err != nil {
		// the job will be leased and sent again: at-least-once
		d.log.Warn("alert outbox: removing a delivered alert failed", "channel", r.label, "error", err)
	}
	r.depth.Add(-1)
}

// release makes leased jobs (still held) due now, for this or the next
// dispatcher on the outbox. One timeout bounds the lot: if the outbox does
// not answer, the leases run out and the jobs come back anyway.
func (d *Dispatcher) release(r *route, jobs []Job) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for _, j := range jobs {
		j.Due = time.Now()
		if d.opts.Outbox.Retry(ctx, r.id, j, queueTTL(r.Policy)) != nil {
			return
		}
	}
}
