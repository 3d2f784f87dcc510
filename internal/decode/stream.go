package decode

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// chunkSize bounds each slice handed to a sink. One buffer of this size
// is reused for the whole body, so a stream's memory does not depend on
// the body's length.
const chunkSize = 32 << 10

// closeTimeout bounds how long Close waits for the decoder. Every Write
// returns only once the decoder has taken its bytes, so what is left at
// Close is what the decoder buffered; that is small, but a crafted zstd
// or deflate tail can still expand a lot, and the request that called
// Close should not wait for it.
var closeTimeout = time.Second

var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, chunkSize)
	return &b
}}

var (
	// errStopped closes the pipe's read side once the decoder is done,
	// so that later Writes return at once instead of blocking forever.
	errStopped = errors.New("decoder stopped")
	// errAbandoned ends the decoder of a Stream dropped without Close.
	errAbandoned = errors.New("stream dropped without Close")
	// errCloseTimeout reports a decoder still busy when Close gave up.
	errCloseTimeout = errors.New("decoder did not finish in time")
)

// sinkFailure carries the sink's own error through the pipe, so Write
// can tell the sink refusing bytes (which the caller must hear about)
// from a decoding failure (which must not affect the client's answer).
type sinkFailure struct{ err error }

func (f *sinkFailure) Error() string { return "sink: " + f.err.Error() }
func (f *sinkFailure) Unwrap() error { return f.err }

// Stream decodes one response body on the fly and hands the decoded bytes
// to a sink. It is not safe for concurrent use, like the ResponseWriter
// it sits behind.
//
// For an encoded body the sink runs on the decoder's goroutine, possibly
// after the Write that brought its bytes has returned; Close returning
// orders every sink call before it, so the caller may read what the sink
// built from then on, and not before. The sink must not block (Vigil's
// taps only count and match): a blocked sink blocks Write and Close too.
// It must not keep p after returning, since the buffer is reused. A sink
// that returns an error stops decoding; that is also how a caller bounds
// the work a highly compressed body can cause.
type Stream struct {
	sink            func(p []byte) error
	contentEncoding string
	cs              codings

	stopped bool  // further bytes are ignored
	sinkErr error // the sink's refusal, returned by every later Write
	result  error // what Close reports, once closed
	closed  bool

	pw      *io.PipeWriter
	w       *worker
	cleanup runtime.Cleanup
}

// NewStream returns a Stream for a body with the given Content-Encoding.
// Nothing starts until the first non-empty Write, so bodies that stay
// empty (HEAD, 204, 304) cost no goroutine and decode without error.
func NewStream(contentEncoding string, sink func(p []byte) error) *Stream {
	cs, err := parse(contentEncoding)
	s := &Stream{sink: sink, contentEncoding: contentEncoding, cs: cs}
	if err != nil {
		s.stopped = true
		s.result = err
	}
	return s
}

// Write gives the stream the next encoded bytes; p is not retained. It
// returns the sink's error once the sink refused bytes. Decoding errors
// are not returned: the client's answer must not suffer from Vigil
// failing to decode it. After one, further bytes are ignored and Close
// reports it.
func (s *Stream) Write(p []byte) error {
	if s.stopped || len(p) == 0 {
		return s.sinkErr
	}
	if s.cs.n == 0 {
		if err := s.sink(p); err != nil {
			s.stopped, s.sinkErr = true, err
		}
		return s.sinkErr
	}
	if s.w == nil {
		s.start()
	}
	// The pipe copies p straight into the decoder's read buffer, with no
	// queue of its own, and returns once the decoder has taken all of it,
	// or as soon as the decoder stopped.
	if _, err := s.pw.Write(p); err != nil {
		s.stopped = true
		var f *sinkFailure
		if errors.As(err, &f) {
			s.sinkErr = f.err
		}
	}
	return s.sinkErr
}

// Close ends the stream. It waits, for about closeTimeout at most, for
// the decoder to finish the bytes already written, and returns nil when the
// body decoded completely. Otherwise it returns the sink's error as is,
// or an error wrapping the cause: truncated or corrupt data,
// ErrUnsupported. As in Body, bytes after a complete deflate stream are
// ignored. Later calls return the same result.
func (s *Stream) Close() error {
	if s.closed {
		return s.result
	}
	s.closed, s.stopped = true, true
	if s.w == nil {
		if s.result == nil {
			s.result = s.sinkErr
		}
		return s.result
	}
	s.cleanup.Stop()
	_ = s.pw.Close()
	err := s.w.wait()
	var f *sinkFailure
	switch {
	case err == nil:
	case errors.As(err, &f):
		s.sinkErr = f.err
		s.result = f.err
	default:
		s.result = wrap(s.contentEncoding, err)
	}
	return s.result
}

func (s *Stream) start() {
	pr, pw := io.Pipe()
	s.pw = pw
	s.w = &worker{pr: pr, sink: s.sink, cs: s.cs, done: make(chan struct{})}
	// The worker holds no reference to s, so a Stream dropped without
	// Close becomes unreachable; closing its pipe then lets the worker
	// finish instead of waiting for input forever.
	s.cleanup = runtime.AddCleanup(s, func(pw *io.PipeWriter) {
		_ = pw.CloseWithError(errAbandoned)
	}, pw)
	go s.w.run()
}

// worker is the decoder goroutine's state, kept apart from Stream so the
// goroutine does not keep a dropped Stream alive.
type worker struct {
	pr      *io.PipeReader
	sink    func(p []byte) error
	cs      codings
	done    chan struct{}
	err     error // written before done is closed
	abandon atomic.Bool
}

func (w *worker) run() {
	defer close(w.done)
	w.err = w.decode()
	var f *sinkFailure
	if errors.As(w.err, &f) {
		_ = w.pr.CloseWithError(w.err)
		return
	}
	_ = w.pr.CloseWithError(errStopped)
}

func (w *worker) decode() error {
	c, err := newChain(w.cs, w.pr, streamMaxWindow)
	if err != nil {
		return err
	}
	defer c.close()
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	buf := *bufp
	for {
		if w.abandon.Load() {
			return errCloseTimeout
		}
		n, err := c.Read(buf)
		if n > 0 {
			if serr := w.sink(buf[:n]); serr != nil {
				return &sinkFailure{err: serr}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// wait returns the decoder's result, giving up on it after closeTimeout.
func (w *worker) wait() error {
	select {
	case <-w.done:
		return w.err
	default:
	}
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		// The decoder checks the flag between chunks, and a closed pipe
		// fails its next read, so it stops within one chunk of work.
		w.abandon.Store(true)
		_ = w.pr.CloseWithError(errCloseTimeout)
		<-w.done
	}
	return w.err
}
