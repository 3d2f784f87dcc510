package alert

import (
	"context"
	"strings"
	"time"
)

// Taking over the queues of a replaced dispatcher's channels: a reload that
// changes a channel's destination must not strand what was queued for it.

// Channels lists the outbox channel IDs of the dispatcher's routes.
func (d *Dispatcher) Channels() []string {
	if d == nil {
		return nil
	}
	ids := make([]string, len(d.routes))
	for i, r := range d.routes {
		ids[i] = r.id
	}
	return ids
}

// Adopt takes over the queues of channels a replaced dispatcher (on the
// same outbox) had and this one lacks — a changed URL, key or recipient
// list, or a removed channel — so that their alerts are not stranded: they
// move to this dispatcher's channel of the same kind if it has exactly one;
// otherwise they are counted as dropped "orphaned" and logged. Call it
// after the old dispatcher is closed.
func (d *Dispatcher) Adopt(ctx context.Context, old []string) {
	if d == nil {
		return
	}
	mine := map[string]bool{}
	for _, r := range d.routes {
		mine[r.id] = true
	}
	for _, ch := range old {
		if mine[ch] {
			continue
		}
		kind := ch
		if i := strings.LastIndexByte(ch, '-'); i > 0 {
			kind = ch[:i]
		}
		jobs, err := d.opts.Outbox.Take(ctx, ch)
		if err != nil {
			d.log.Warn("alert outbox: cannot take over the queue of a removed channel; it expires after max_age",
				"kind", kind, "error", err)
			continue
		}
		if len(jobs) == 0 {
			continue
		}
		var to *route
		for _, r := range d.routes {
			if r.Sender.Kind() == kind && d.countKind(kind) == 1 {
				to = r
			}
		}
		if to == nil {
			for range jobs {
				d.droppedKind(kind, "orphaned")
			}
			d.log.Error("alerts queued for a channel that is no longer configured were dropped",
				"kind", kind, "count", len(jobs))
			continue
		}
		moved := 0
		for _, j := range jobs {
			j.Due, j.Lease = time.Now(), time.Time{}
			res, err := d.opts.Outbox.Put(ctx, to.id, j, to.Policy.MaxQueue, queueTTL(to.Policy))
			switch {
			case err != nil:
				d.droppedKind(kind, "outbox_unavailable")
			case res == PutFull:
				d.droppedKind(kind, "queue_full")
			case res == PutEvicted:
				moved++
				d.droppedKind(kind, "queue_full") // the LOW job it replaced
			default:
				moved++
				to.depth.Add(1)
			}
		}
		d.reportDepth(to)
		select {
		case to.wake <- struct{}{}:
		default:
		}
		d.log.Warn("alerts queued for a channel that is no longer configured moved to the new one",
			"kind", kind, "channel", to.label, "count", moved, "of", len(jobs))
	}
}

func (d *Dispatcher) countKind(kind string) int {
	n := 0
	for _, r := range d.routes {
		if r.Sender.Kind() == kind {
			n++
		}
	}
	return n
}

func (d *Dispatcher) droppedKind(kind, reason string) {
	if d.opts.Hooks.Dropped != nil {
		d.opts.Hooks.Dropped(kind, reason)
	}
}
