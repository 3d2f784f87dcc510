package respond

import "github.com/vigilsec/vigil/detect"

// eventRing is a FIFO of events that grows up to a bound and then drops its
// oldest entry for each new one. It only allocates during an outage.
type eventRing struct {
	buf     []detect.Event
	head, n int
}

// push appends e and reports whether the oldest event was dropped for it.
func (q *eventRing) push(e detect.Event, bound int) bool {
	if q.n == len(q.buf) {
		if len(q.buf) >= bound {
			q.buf[q.head] = e
			q.head = (q.head + 1) % len(q.buf)
			return true
		}
		grown := make([]detect.Event, min(bound, max(64, 2*len(q.buf))))
		q.front(q.n, grown[:0]) // fills grown in place: it has the capacity
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
	return false
}

// front appends up to k of the oldest events to dst.
func (q *eventRing) front(k int, dst []detect.Event) []detect.Event {
	for i := 0; i < min(k, q.n); i++ {
		dst = append(dst, q.buf[(q.head+i)%len(q.buf)])
	}
	return dst
}

// pop removes the k oldest events; an emptied large ring is released.
func (q *eventRing) pop(k int) {
	for ; k > 0 && q.n > 0; k-- {
		q.buf[q.head] = detect.Event{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > 1024 {
			q.buf = nil
		}
	}
}
