package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/detect"
)

// Route is one channel: where to send and how.
type Route struct {
	Sender Sender
	Policy Policy
}

// Hooks let the Caddy layer count deliveries without this package knowing
// Prometheus. kind is the channel type; any field may be nil.
type Hooks struct {
	Sent    func(kind string, latency time.Duration) // latency: queued to delivered
	Failed  func(kind string)                        // one failed attempt
	Dropped func(kind, reason string)                // an alert that will not be sent
	Depth   func(kind string, n int)                 // jobs waiting on all channels of a kind
}

// Options configure a Dispatcher.
type Options struct {
	Outbox Outbox // default: a new MemoryOutbox
	Routes []Route
	// Schedule is the retry schedule; default StandardSchedule. Tests
	// shrink it.
	Schedule []time.Duration
	// Poll is the longest a channel worker sleeps without being woken;
	// it bounds how late a job queued by another instance (or before a
	// restart) is noticed. Default 1s.
	Poll time.Duration
	// Queue bounds the events waiting for the router. Default 4096.
	Queue int
	// ShutdownTimeout bounds how long Close spends queueing what was
	// submitted (and the open digests) when the outbox is slow or down;
	// what is left is counted as dropped "shutdown". Default 5s.
	ShutdownTimeout time.Duration
	// Deferred leaves the router and the workers stopped until Start, so a
	// configuration that is only validated never delivers anything.
	Deferred bool
	// LeaseSlack is how much longer than one attempt's timeout a job is
	// leased; default 30s. A job whose lease is not at least one attempt
	// plus half the slack away is handed back instead of sent.
	LeaseSlack time.Duration
	Hooks      Hooks
	Logger     *slog.Logger
}

// Dispatcher turns events into alerts: Submit is cheap and never blocks;
// a router goroutine filters, deduplicates and throttles into the outbox;
// one worker per channel delivers from it.
type Dispatcher struct {
	opts   Options
	routes []*route
	minSev detect.Severity
	in     chan detect.Event
	log    *slog.Logger

	closed  atomic.Bool
	stop    chan struct{}
	base    context.Context // cancelled when workers must stop
	cancel  context.CancelFunc
	router  sync.WaitGroup
	workers sync.WaitGroup
	once    sync.Once
	started sync.Once
	pending []pendingPut // router only: puts the outbox refused (Redis down)
	// router only: when to offer the pending puts again, and how long the
	// last wait was
	pendingAt      time.Time
	pendingBackoff time.Duration
	drainBy        time.Time // router only: set on Close
}

type route struct {
	Route
	id       string
	label    string
	disabled atomic.Bool
	wake     chan struct{}
	depth    atomic.Int64
	win      window // router only
}

type pendingPut struct {
	r *route
	j Job
}

const (
	maxPending      = 1000
	leaseBatch      = 16
	opTimeout       = 2 * time.Second // one outbox operation
	maxPendingRetry = 4 * time.Second // longest wait between offers of the held puts
	queueTTLMargin  = time.Hour       // a queue outlives its newest job's max_age by this
)

// New validates the routes and starts the router and the workers. Close
// stops them.
func New(opts Options) (*Dispatcher, error) {
	if opts.Outbox == nil {
		opts.Outbox = NewMemoryOutbox()
	}
	if len(opts.Schedule) == 0 {
		opts.Schedule = StandardSchedule
	}
	opts.Poll = orDur(opts.Poll, time.Second)
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	opts.ShutdownTimeout = orDur(opts.ShutdownTimeout, 5*time.Second)
	opts.LeaseSlack = orDur(opts.LeaseSlack, 30*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{opts: opts, in: make(chan detect.Event, opts.Queue), stop: make(chan struct{}), log: opts.Logger}
	d.base, d.cancel = context.WithCancel(context.Background())
	d.minSev = detect.Critical + 1
	seen := map[string]bool{}
	for _, rt := range opts.Routes {
		if rt.Sender == nil {
			d.cancel()
			return nil, errors.New("alert route without a sender")
		}
		r := &route{Route: rt, id: channelID(rt.Sender), wake: make(chan struct{}, 1)}
		if seen[r.id] {
			d.cancel()
			return nil, fmt.Errorf("alert %s configured twice (%s)", rt.Sender.Kind(), rt.Sender.Label())
		}
		seen[r.id] = true
		r.label = rt.Sender.Label()
		r.Policy = rt.Policy.withDefaults(rt.Sender.Kind())
		d.minSev = min(d.minSev, r.Policy.MinSeverity)
		d.routes = append(d.routes, r)
	}
	if !opts.Deferred {
		d.Start()
	}
	return d, nil
}

// Start runs the router and one worker per channel (once; never after
// Close). Events submitted before it wait in the queue.
func (d *Dispatcher) Start() {
	if d == nil || d.closed.Load() {
		return
	}
	d.started.Do(func() {
		d.router.Add(1)
		go d.runRouter()
		for _, r := range d.routes {
			d.workers.Add(1)
			go d.runWorker(r)
		}
	})
}

// Submit hands an event over for alerting. It never blocks: an event below
// every channel's severity costs one comparison; a full queue drops the
// event and counts it.
func (d *Dispatcher) Submit(e detect.Event) {
	if d == nil || e.Severity < d.minSev || d.closed.Load() {
		return
	}
	select {
	case d.in <- e:
	default:
		d.dropEvent(e, "queue_full")
	}
}

// Close stops taking events, queues what was submitted and the open
// digests (for at most ShutdownTimeout; the rest is counted as dropped
// "shutdown"), then stops the workers. Jobs being sent are put back to be
// sent again by the next dispatcher (same outbox) at once.
func (d *Dispatcher) Close() error {
	if d == nil {
		return nil
	}
	d.once.Do(func() {
		d.closed.Store(true)
		close(d.stop)
		d.router.Wait()
		d.cancel()
		d.workers.Wait()
	})
	return nil
}

func (d *Dispatcher) runRouter() {
	defer d.router.Done()
	tick := time.NewTicker(d.tickEvery())
	defer tick.Stop()
	for {
		select {
		case e := <-d.in:
			d.route(e)
		case now := <-tick.C:
			d.closeWindows(now, false)
			if !now.Before(d.pendingAt) {
				d.retryPending()
			}
		case <-d.stop:
			d.drain()
			return
		}
	}
}

// drain queues what was submitted and the open digests within
// ShutdownTimeout; the rest is counted as dropped "shutdown".
func (d *Dispatcher) drain() {
	d.drainBy = time.Now().Add(d.opts.ShutdownTimeout)
	for {
		select {
		case e := <-d.in:
			if d.late() {
				d.dropEvent(e, "shutdown")
				continue
			}
			d.route(e)
			continue
		default:
		}
		break
	}
	d.closeWindows(time.Now(), true)
	d.retryPending()
	for _, p := range d.pending {
		d.dropped(p.r, "shutdown")
	}
	d.pending = nil
}

// late reports whether the shutdown deadline passed.
func (d *Dispatcher) late() bool {
	return !d.drainBy.IsZero() && !time.Now().Before(d.drainBy)
}

// opCtx bounds one outbox operation of the router (and the shutdown).
func (d *Dispatcher) opCtx() (context.Context, context.CancelFunc) {
	dl := time.Now().Add(opTimeout)
	if !d.drainBy.IsZero() && d.drainBy.Before(dl) {
		dl = d.drainBy
	}
	return context.WithDeadline(context.Background(), dl)
}

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
				r.win.hold(a, "duplicate", now)
				d.dropped(r, "duplicate")
				continue
			}
		}
		if !r.win.admit(now, r.Policy) {
			r.win.hold(a, "throttled", now)
			d.dropped(r, "throttled")
			continue
		}
		d.enqueue(r, Job{ID: a.ID, Alert: a, Queued: now, Due: now})
	}
}

// closeWindows sends the digests of the windows that ended (all, when
// closing).
func (d *Dispatcher) closeWindows(now time.Time, all bool) {
	for _, r := range d.routes {
		if !all && !r.win.due(now, r.Policy) {
			continue
		}
		if dg, ok := r.win.close(now, r.id); ok {
			d.enqueue(r, Job{ID: dg.ID, Alert: dg, Queued: now, Due: now})
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
	ok, err := d.opts.Outbox.Put(ctx, r.id, j, r.Policy.MaxQueue, queueTTL(r.Policy))
	cancel()
	switch {
	case err != nil:
		return err
	case !ok:
		d.dropped(r, "queue_full")
	default:
		r.depth.Add(1)
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
