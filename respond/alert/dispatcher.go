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
	// Queue bounds the events waiting for the router, LOW and MEDIUM+
	// apart (Queue each), so that a flood of LOW events can fill only its
	// own queue and never make Submit drop a MEDIUM+ one. Default 4096.
	Queue int
	// Pending bounds the alerts held in memory while the outbox refuses
	// them (Redis down), all channels together; beyond it an alert is
	// dropped and counted as "outbox_unavailable". Default 1000.
	Pending int
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
	in     chan detect.Event // MEDIUM and higher
	low    chan detect.Event // LOW: a queue of its own, see Options.Queue
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
	wins     map[winKey]*window // router only: the open throttle windows
}

type pendingPut struct {
	r *route
	j Job
}

const (
	defaultPending  = 1000
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
	if opts.Pending <= 0 {
		opts.Pending = defaultPending
	}
	opts.ShutdownTimeout = orDur(opts.ShutdownTimeout, 5*time.Second)
	opts.LeaseSlack = orDur(opts.LeaseSlack, 30*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{opts: opts, in: make(chan detect.Event, opts.Queue), low: make(chan detect.Event, opts.Queue),
		stop: make(chan struct{}), log: opts.Logger}
	d.base, d.cancel = context.WithCancel(context.Background())
	d.minSev = detect.Critical + 1
	seen := map[string]bool{}
	for _, rt := range opts.Routes {
		if rt.Sender == nil {
			d.cancel()
			return nil, errors.New("alert route without a sender")
		}
		r := &route{Route: rt, id: channelID(rt.Sender), wake: make(chan struct{}, 1), wins: map[winKey]*window{}}
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
	q := d.in
	if isLow(e.Severity) {
		q = d.low
	}
	select {
	case q <- e:
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
		// with both queues ready, select picks at random: a MEDIUM+ event
		// waits for about one LOW event, not for a backlog of them
		select {
		case e := <-d.in:
			d.route(e)
		case e := <-d.low:
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
	// MEDIUM+ first: when the deadline is short, LOW events are the ones
	// left over
	for _, q := range []chan detect.Event{d.in, d.low} {
		for done := false; !done; {
			select {
			case e := <-q:
				if d.late() {
					d.dropEvent(e, "shutdown")
					continue
				}
				d.route(e)
			default:
				done = true
			}
		}
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
