package detect

import (
	"net/http"
	"time"
)

// The detector seams, by stage of a request. The handler asks the config
// once, at provision, which detectors a site needs and builds a Pipeline
// of them; a request that none of them wants costs a few interface calls.

// Check runs before the upstream sees the request, in pipeline order. It
// may annotate the request (the login route, the verified session) and may
// refuse it; a nil Refusal lets it through.
type Check interface {
	Check(req *Request) *Refusal
}

// Observer runs after the upstream answered (status and header known,
// body streamed), on the request path; slow work goes to a Pool. It also
// runs, with Answer.Status 0, when the upstream failed without answering
// (no verdict on anything: a reserved login attempt is released).
type Observer interface {
	Observe(req *Request, a Answer)
}

// Answer is the upstream's answer as an Observer sees it.
type Answer struct {
	Status int
	Header http.Header
	// Time is when the answer ended, when the handler read the clock
	// already (a login); else zero, and Clock reads it for an observer
	// that records something (reading the clock costs on every request).
	Time  time.Time
	Clock func() time.Time
}

// At is when the answer ended: the time of what observers record.
func (a Answer) At() time.Time {
	if a.Time.IsZero() && a.Clock != nil {
		return a.Clock()
	}
	return a.Time
}

// TapFactory gives a request a ResponseTap when the request's answer must
// be watched byte by byte (data access accounting); nil otherwise, which
// is the fast path.
type TapFactory interface {
	Tap(req *Request) ResponseTap
}

// ResponseTap sees one answer as it streams: the status and header once,
// then the body as the app produced it (decoded when the answer carries a
// Content-Encoding), then Done. Nothing is buffered on its behalf.
type ResponseTap interface {
	Header(status int, h http.Header)
	// Write sees the next bytes of the body. A non-nil error ends the
	// answer there: the connection is closed, so the client sees a
	// truncated transfer, never a complete-looking one.
	Write(p []byte) error
	// Done is called once, after the answer ended; complete is false when
	// it was cut or the body could not be decoded.
	Done(complete bool)
}

// Refusal is a check's answer instead of the upstream's. The handler turns
// it into Caddy's error (so an operator's handle_errors renders it), with
// Retry-After when Retry is set. Headers a refusal needs (WWW-Authenticate,
// a cleared cookie) are set on Request.Answer by the check.
type Refusal struct {
	Status int
	Retry  time.Duration
	Err    error
	// Action labels the refusal in the enforced-requests metric.
	Action string
}
