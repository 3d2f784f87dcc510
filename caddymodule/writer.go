package caddymodule

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/decode"
)

// exchange is one request on its way through the handler: the request
// context the detectors read, and the response writer the upstream writes
// to. Both live in one object, taken from a pool and given back when the
// handler returns, so a request without a session or a login costs no
// allocation.
//
// The writer notes the status as the answer streams through and, when a
// tap watches the answer, hands it the body: decoded on the fly when the
// answer carries a Content-Encoding (Caddy's encode or the app compressed
// it), so taps count what the app produced. Nothing is buffered. Flush and
// Unwrap come from the embedded wrapper, so streaming answers (SSE, long
// downloads) pass untouched; ReadFrom keeps sendfile when no tap watches.
type exchange struct {
	caddyhttp.ResponseWriterWrapper
	req    detect.Request
	status int
	tap    detect.ResponseTap
	body   *decode.Stream // the tap's view of the body; nil until the header
	cut    bool           // a tap ended the answer
	ended  bool           // the tap was told the answer ended
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func newExchange(w http.ResponseWriter, r *http.Request, h *Handler) *exchange {
	x := exchanges.Get().(*exchange)
	x.ResponseWriter = w
	x.req = detect.Request{HTTP: r, Answer: w.Header(), IP: clientIP(r), Site: h.Site, Start: h.now()}
	return x
}

// release gives x back to the pool. Nothing may use it afterwards: the
// upstream is done with the writer (the net/http contract once ServeHTTP
// returns), and background work holds Facts, never the Request.
func (x *exchange) release() {
	*x = exchange{}
	exchanges.Put(x)
}

// watch lets tap see the answer; nil leaves the answer unwatched.
func (x *exchange) watch(tap detect.ResponseTap) { x.tap = tap }

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		x.status = code
		x.startTap()
	}
	x.ResponseWriterWrapper.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
		x.startTap()
	}
	if x.cut {
		return 0, errAnswerCut
	}
	n, err := x.ResponseWriterWrapper.Write(b)
	if x.body != nil && n > 0 {
		if terr := x.body.Write(b[:n]); terr != nil {
			// the upstream stops copying; ServeHTTP then aborts the
			// connection, so the client sees a truncated transfer, never
			// a complete-looking one
			x.cut = true
			return n, errAnswerCut
		}
	}
	return n, err
}

var errAnswerCut = errors.New("answer cut by a response tap")

// ReadFrom keeps the underlying writer's sendfile path when no tap
// watches; a watched answer is copied through Write so the tap sees it.
func (x *exchange) ReadFrom(r io.Reader) (int64, error) {
	if x.tap == nil {
		if x.status == 0 {
			x.status = http.StatusOK
		}
		return x.ResponseWriterWrapper.ReadFrom(r)
	}
	return io.Copy(writerOnly{x}, r)
}

// writerOnly hides ReadFrom, so io.Copy uses Write.
type writerOnly struct{ io.Writer }

// startTap shows the tap the status and header and opens its view of the
// body.
func (x *exchange) startTap() {
	if x.tap == nil || x.body != nil {
		return
	}
	h := x.Header()
	x.tap.Header(x.status, h)
	x.body = decode.NewStream(h.Get("Content-Encoding"), x.tap.Write)
}

// done tells the tap the answer ended and reports whether a tap cut it.
func (x *exchange) done() (cut bool) {
	if x.tap == nil || x.ended {
		return x.cut
	}
	x.ended = true
	complete := !x.cut
	if x.body != nil {
		complete = x.body.Close() == nil && complete
	}
	x.tap.Done(complete)
	return x.cut
}

// endOnPanic tells the tap the answer ended when the upstream handler
// panics instead of returning: Caddy's reverse proxy aborts with
// http.ErrAbortHandler when copying the body fails (a client that went
// away mid-download, a cut). What left before that is still counted.
func (x *exchange) endOnPanic() {
	if p := recover(); p != nil {
		x.done()
		panic(p)
	}
}

// clientIP is Caddy's client_ip variable, which honours trusted_proxies; an
// X-Forwarded-For from an untrusted peer never gets here.
func clientIP(r *http.Request) netip.Addr {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}
