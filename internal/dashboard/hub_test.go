package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/respond"
)

func testEvent(i int) detect.Event {
	e := detect.NewEvent(detect.FailedLogin, time.Now())
	e.User = fmt.Sprintf("user%d", i)
	e.IP = "192.0.2.1"
	return e
}

func recv(t *testing.T, s *Sub, within time.Duration) Item {
	t.Helper()
	select {
	case it := <-s.C:
		return it
	case <-s.Dropped:
		t.Fatal("subscriber dropped")
	case <-time.After(within):
		t.Fatal("no event within", within)
	}
	return Item{}
}

// A client that does not read is dropped once its buffer is full; the
// others get every event, and the hub never holds more than the buffer
// for anyone.
func TestHubDropsSlowClientOnly(t *testing.T) {
	log := respond.NewMemoryEvents(10000)
	hub := NewHub(log, 8, 4)
	ctx := context.Background()
	slow, _, err := hub.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, _, err := hub.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()

	const n = 200
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got < n {
			select {
			case <-fast.C:
				got++
			case <-fast.Dropped:
				return
			case <-time.After(5 * time.Second):
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		log.Append(testEvent(i))
		if i%4 == 3 {
			time.Sleep(time.Millisecond) // let the reader keep up, as a browser would
		}
	}
	<-done
	if got != n {
		t.Fatalf("the reading client got %d of %d events", got, n)
	}
	select {
	case <-slow.Dropped:
	case <-time.After(2 * time.Second):
		t.Fatal("the client that never read was not dropped")
	}
	if len(slow.C) > cap(slow.C) || cap(slow.C) != 8 {
		t.Fatalf("buffer of the slow client: %d of cap %d, want cap 8", len(slow.C), cap(slow.C))
	}
	if c := hub.Clients(); c != 1 {
		t.Fatalf("hub still serves %d clients, want 1 (the slow one was removed)", c)
	}
}

func TestHubLimitsClientsAndStopsWhenIdle(t *testing.T) {
	log := respond.NewMemoryEvents(100)
	hub := NewHub(log, 4, 2)
	a, _, _ := hub.Subscribe(context.Background())
	b, _, _ := hub.Subscribe(context.Background())
	if _, _, err := hub.Subscribe(context.Background()); err != ErrTooManyClients {
		t.Fatalf("third client: err %v, want ErrTooManyClients", err)
	}
	a.Close()
	b.Close()
	hub.mu.Lock()
	running := hub.stop != nil
	hub.mu.Unlock()
	if running {
		t.Fatal("the hub still tails the log with no client")
	}
	// and starts again for the next one
	c, _, err := hub.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log.Append(testEvent(1))
	if it := recv(t, c, 2*time.Second); it.Event.User != "user1" || it.Cursor == "" {
		t.Fatalf("got %+v", it)
	}
}

// readFrames reads SSE frames (event name and data) until n "event"
// frames arrived.
func readFrames(t *testing.T, sc *bufio.Scanner, n int) (events []string, lastID string) {
	t.Helper()
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			lastID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && name == "event":
			events = append(events, strings.TrimPrefix(line, "data: "))
			if len(events) == n {
				return events, lastID
			}
		}
	}
	t.Fatalf("stream ended after %d events: %v", len(events), sc.Err())
	return nil, ""
}

// A client that reconnects with Last-Event-ID gets what it missed, then
// the live events, each once.
func TestStreamResumesFromLastEventID(t *testing.T) {
	log := respond.NewMemoryEvents(1000)
	hub := NewHub(log, 0, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = ServeStream(w, r, hub, StreamOptions{})
	}))
	defer srv.Close()

	open := func(last string) (*bufio.Scanner, func()) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		return bufio.NewScanner(resp.Body), func() { resp.Body.Close() }
	}
	sc, closeFirst := open("")
	waitClients(t, hub, 1)
	log.Append(testEvent(1))
	evs, id := readFrames(t, sc, 1)
	if !strings.Contains(evs[0], `"user1"`) || id == "" {
		t.Fatalf("first event %q id %q", evs[0], id)
	}
	closeFirst()
	waitClients(t, hub, 0)
	// missed while away
	log.Append(testEvent(2))
	log.Append(testEvent(3))
	sc, closeSecond := open(id)
	defer closeSecond()
	waitClients(t, hub, 1)
	log.Append(testEvent(4))
	evs, _ = readFrames(t, sc, 3)
	for i, want := range []string{"user2", "user3", "user4"} {
		if !strings.Contains(evs[i], `"`+want+`"`) {
			t.Fatalf("event %d: %q, want %s", i, evs[i], want)
		}
	}
}

func waitClients(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for h.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d clients, want %d", h.Clients(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
