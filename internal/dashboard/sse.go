package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Stream timing.
const (
	// Heartbeat is how often an idle stream sends a comment, so proxies
	// keep it open and a vanished client is noticed.
	Heartbeat = 15 * time.Second
	// WriteTimeout bounds one write to a client: a client that does not
	// read is cut off rather than holding a goroutine forever.
	WriteTimeout = 10 * time.Second
	// MaxCatchUp is how many events a reconnecting client is sent from its
	// cursor before the live ones; beyond that it is told to reload
	// (event "reset").
	MaxCatchUp = 1000
	// catchUpWait is how long the catch-up waits for more events.
	catchUpWait = 200 * time.Millisecond
	// retryMillis is the reconnection delay the browser is told.
	retryMillis = 2000
)

// StreamOptions tune one stream.
type StreamOptions struct {
	// Stop ends the stream (the config was unloaded); nil: only the
	// request's end does.
	Stop <-chan struct{}
	// Heartbeat overrides the default; for tests.
	Heartbeat time.Duration
}

// ServeStream answers a Server-Sent Events stream of the hub's events: a
// "ready" event carrying the cursor the stream starts from, then one
// "event" per security event (data: the event's JSON; id: the cursor after
// each batch). A client that sends Last-Event-ID first gets the events
// after that cursor (at most MaxCatchUp, else a "reset" event). A client
// dropped for falling behind gets a "dropped" event and the stream ends;
// the browser's EventSource reconnects and resumes.
func ServeStream(w http.ResponseWriter, r *http.Request, hub *Hub, opt StreamOptions) error {
	sub, start, err := hub.Subscribe(r.Context())
	if errors.Is(err, ErrTooManyClients) {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return nil
	}
	if err != nil {
		http.Error(w, "reading the event log: "+err.Error(), http.StatusBadGateway)
		return nil
	}
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &stream{w: w, rc: http.NewResponseController(w)}
	s.printf("retry: %d\n\n", retryMillis)
	seen := map[string]bool{}
	if last := strings.TrimSpace(r.Header.Get("Last-Event-ID")); last != "" {
		start = s.catchUp(r.Context(), hub, last, seen)
	}
	s.frame("ready", start, map[string]any{"cursor": start})
	if s.flush() != nil {
		return nil
	}
	return s.live(r.Context(), sub, seen, opt)
}

// stream writes SSE frames; the first write error sticks.
type stream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (s *stream) printf(format string, args ...any) {
	if s.err == nil {
		_, s.err = fmt.Fprintf(s.w, format, args...)
	}
}

// frame writes one event; data is JSON (one line, as encoding/json writes it).
func (s *stream) frame(name, id string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	if id != "" {
		s.printf("id: %s\n", id)
	}
	s.printf("event: %s\ndata: %s\n\n", name, b)
}

func (s *stream) flush() error {
	if s.err != nil {
		return s.err
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	s.err = s.rc.Flush()
	return s.err
}

// catchUp sends the events after cursor and answers the cursor reached.
func (s *stream) catchUp(ctx context.Context, hub *Hub, cursor string, seen map[string]bool) string {
	sent := 0
	for sent < MaxCatchUp && s.err == nil {
		wait, cancel := context.WithTimeout(ctx, catchUpWait)
		evs, next, err := hub.log.Tail(wait, cursor, min(tailBatch, MaxCatchUp-sent))
		cancel()
		if err != nil {
			s.frame("reset", "", map[string]string{"reason": "cursor not usable: " + err.Error()})
			return cursor
		}
		if len(evs) == 0 {
			return cursor
		}
		for i, e := range evs {
			id := ""
			if i == len(evs)-1 {
				id = next
			}
			seen[e.ID] = true
			s.frame("event", id, e)
		}
		sent += len(evs)
		cursor = next
		_ = s.flush()
	}
	if sent >= MaxCatchUp {
		s.frame("reset", "", map[string]string{"reason": "too many events missed"})
	}
	return cursor
}

// live sends the hub's events until the client leaves, falls behind, or
// the stream is stopped.
func (s *stream) live(ctx context.Context, sub *Sub, seen map[string]bool, opt StreamOptions) error {
	beat := opt.Heartbeat
	if beat <= 0 {
		beat = Heartbeat
	}
	ticker := time.NewTicker(beat)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-opt.Stop:
			return nil
		case <-sub.Dropped:
			s.frame("dropped", "", map[string]string{"reason": "the client fell behind"})
			_ = s.flush()
			return nil
		case <-ticker.C:
			s.printf(": ping\n\n")
		case it := <-sub.C:
			s.send(it, seen)
			// write what is already waiting before flushing once
			for n := len(sub.C); n > 0; n-- {
				s.send(<-sub.C, seen)
			}
		}
		if s.flush() != nil {
			return nil
		}
	}
}

func (s *stream) send(it Item, seen map[string]bool) {
	if len(seen) > 0 && seen[it.Event.ID] {
		delete(seen, it.Event.ID)
		if it.Cursor == "" {
			return
		}
		// already sent by the catch-up: keep only its cursor
		s.printf("id: %s\n: resumed\n\n", it.Cursor)
		return
	}
	s.frame("event", it.Cursor, it.Event)
}
