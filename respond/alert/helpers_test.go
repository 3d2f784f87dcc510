package alert

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/poll"
)

// fastSchedule is the Standard Webhooks schedule shrunk for tests.
var fastSchedule = []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond}

// request is what a test receiver got.
type request struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is an HTTP server on loopback that records every request and
// answers with what respond decides (default 200).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []request
	respond func(n int, r *http.Request, w http.ResponseWriter) // n counts from 1
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, request{Header: r.Header.Clone(), Body: body, At: time.Now()})
	n, respond := len(rc.reqs), rc.respond
	rc.mu.Unlock()
	if respond != nil {
		respond(n, r, w)
	}
}

func (rc *receiver) setRespond(f func(n int, r *http.Request, w http.ResponseWriter)) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func (rc *receiver) url() string { return rc.srv.URL + "/hook" }

// counts records the dispatcher's hooks.
type counts struct {
	mu      sync.Mutex
	sent    map[string]int
	failed  map[string]int
	dropped map[string]int // kind/reason
}

func newCounts() *counts {
	return &counts{sent: map[string]int{}, failed: map[string]int{}, dropped: map[string]int{}}
}

func (c *counts) hooks() Hooks {
	return Hooks{
		Sent:    func(k string, _ time.Duration) { c.mu.Lock(); c.sent[k]++; c.mu.Unlock() },
		Failed:  func(k string) { c.mu.Lock(); c.failed[k]++; c.mu.Unlock() },
		Dropped: func(k, r string) { c.mu.Lock(); c.dropped[k+"/"+r]++; c.mu.Unlock() },
	}
}

func (c *counts) get(m map[string]int, k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[k]
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// start builds a dispatcher with fast retries and closes it at the end.
func start(t *testing.T, opts Options) *Dispatcher {
	t.Helper()
	if opts.Schedule == nil {
		opts.Schedule = fastSchedule
	}
	if opts.Poll == 0 {
		opts.Poll = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// event returns an event of type typ for user and ip.
func event(typ detect.Type, user, ip string) detect.Event {
	e := detect.NewEvent(typ, time.Now())
	e.Site, e.User, e.IP = "shop.example", user, ip
	e.Details = map[string]any{"strike": 1}
	return e
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // 24 bytes

func webhook(t *testing.T, url string) *Webhook {
	t.Helper()
	w, err := NewWebhook(url, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func atLeast(n int) func(int) (bool, string) {
	return func(got int) (bool, string) { return got >= n, fmt.Sprint(got) }
}

// settle waits until nothing is queued for the router and every channel's
// outbox is empty: each alert has been delivered and acknowledged (or given
// up), so no retry or duplicate can still follow and a count taken now is
// final.
func settle(t *testing.T, d *Dispatcher) {
	t.Helper()
	poll.Until(t, 10*time.Second, "alerts settled", func() (bool, string) {
		if n := len(d.in) + len(d.low); n > 0 {
			return false, fmt.Sprintf("%d events queued", n)
		}
		for _, r := range d.routes {
			_, n, err := d.opts.Outbox.Next(context.Background(), r.id)
			if err != nil || n > 0 {
				return false, fmt.Sprintf("%s: %d jobs (%v)", r.label, n, err)
			}
		}
		return true, ""
	})
}

// logRecorder keeps the messages a dispatcher logs, so a test can wait for
// what the dispatcher noticed instead of sleeping.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}

// logged reports whether msg was logged, and what was.
func (l *logRecorder) logged(msg string) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if m == msg {
			return true, ""
		}
	}
	return false, strings.Join(l.msgs, "; ")
}
