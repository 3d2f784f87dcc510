// Package dashboard is what the live dashboard and the investigation API
// are made of, apart from Caddy: the embedded page and its assets, the
// Server-Sent Events fan-out of the event log, the CSRF guard of the
// dashboard's actions, the time series of /vigil/stats, the per-user and
// per-address investigation reports, and the NDJSON/CSV export of an
// event query. The Caddy glue (the vigil_dashboard handler, the admin
// routes, the CLI) lives in caddymodule.
package dashboard

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

// Bounds of the live feed. A client costs at most ClientBuffer events of
// memory; a client that falls that far behind is dropped (its browser
// reconnects and resumes from its cursor).
const (
	// ClientBuffer is how many events wait for one client at most.
	ClientBuffer = 256
	// MaxClients is how many live streams one event log serves at once
	// (dashboard pages and /vigil/events/stream together).
	MaxClients = 64
	// tailBatch is how many events the hub reads from the log at a time.
	tailBatch = 100
)

// ErrTooManyClients: the hub already serves MaxClients streams.
var ErrTooManyClients = errors.New("too many live event streams")

// Item is one event handed to a client. Cursor is set on the last event of
// each batch read from the log: the position a client resumes from.
type Item struct {
	Event  detect.Event
	Cursor string
}

// Hub reads an event log once, however many clients watch it, and hands
// every event to each client's bounded buffer. It never waits for a
// client: one whose buffer is full is dropped. It reads the log only while
// someone watches.
type Hub struct {
	log     respond.EventLog
	buffer  int
	maxSubs int

	mu     sync.Mutex
	subs   map[*Sub]struct{}
	cursor string
	gen    uint64 // the reading goroutine's generation: an old one's batches are ignored
	stop   context.CancelFunc
	onIdle func()
}

// Sub is one client's subscription.
type Sub struct {
	// C delivers the events, oldest first.
	C chan Item
	// Dropped is closed when the hub dropped the client for falling behind.
	Dropped chan struct{}
	hub     *Hub
}

// NewHub returns a hub over log whose clients have buffers of buffer
// events (0: ClientBuffer), at most maxClients of them (0: MaxClients).
func NewHub(log respond.EventLog, buffer, maxClients int) *Hub {
	if buffer <= 0 {
		buffer = ClientBuffer
	}
	if maxClients <= 0 {
		maxClients = MaxClients
	}
	return &Hub{log: log, buffer: buffer, maxSubs: maxClients, subs: map[*Sub]struct{}{}}
}

var (
	hubsMu sync.Mutex
	hubs   = map[respond.EventLog]*Hub{}
)

// HubFor is the one hub of an event log in this process, shared by every
// dashboard and admin stream on it. It forgets the hub when its last
// client leaves.
func HubFor(log respond.EventLog) *Hub {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	if h, ok := hubs[log]; ok {
		return h
	}
	h := NewHub(log, 0, 0)
	h.onIdle = func() {
		hubsMu.Lock()
		defer hubsMu.Unlock()
		if hubs[log] == h {
			delete(hubs, log)
		}
	}
	hubs[log] = h
	return h
}

// Subscribe adds a client. It answers the cursor of the log's end when
// the client joined: the client receives every event after it. ctx bounds
// the first read of the log, when the hub starts.
func (h *Hub) Subscribe(ctx context.Context) (*Sub, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.maxSubs {
		return nil, "", ErrTooManyClients
	}
	if h.stop == nil {
		_, cursor, err := h.log.Tail(ctx, "", 0)
		if err != nil {
			return nil, "", err
		}
		h.cursor = cursor
		h.gen++
		runCtx, cancel := context.WithCancel(context.Background())
		h.stop = cancel
		go h.run(runCtx, h.gen, cursor)
	}
	s := &Sub{C: make(chan Item, h.buffer), Dropped: make(chan struct{}), hub: h}
	h.subs[s] = struct{}{}
	return s, h.cursor, nil
}

// Clients is how many clients the hub serves.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close removes the subscription; the hub stops reading when none is left.
func (s *Sub) Close() {
	h := s.hub
	h.mu.Lock()
	delete(h.subs, s)
	idle := len(h.subs) == 0 && h.stop != nil
	if idle {
		h.stop()
		h.stop = nil
	}
	h.mu.Unlock()
	if idle && h.onIdle != nil {
		h.onIdle()
	}
}

// run tails the log from cursor until ctx ends.
func (h *Hub) run(ctx context.Context, gen uint64, cursor string) {
	for ctx.Err() == nil {
		evs, next, err := h.log.Tail(ctx, cursor, tailBatch)
		if err != nil {
			// the store is away: try again shortly, from the same place
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		cursor = next
		if len(evs) > 0 {
			h.fanout(gen, evs, next)
		}
	}
}

// fanout hands a batch to every client without waiting for any.
func (h *Hub) fanout(gen uint64, evs []detect.Event, cursor string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen {
		return
	}
	h.cursor = cursor
	for s := range h.subs {
		for i, e := range evs {
			it := Item{Event: e}
			if i == len(evs)-1 {
				it.Cursor = cursor
			}
			select {
			case s.C <- it:
				continue
			default:
			}
			// fallen behind: drop it, so it costs nothing more
			delete(h.subs, s)
			close(s.Dropped)
			break
		}
	}
}
