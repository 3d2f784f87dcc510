package decode

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestStreamRoundTrip(t *testing.T) {
	want := sha256.Sum256(testBody())
	for i, c := range encCases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{tb: t}
			s := NewStream(c.contentEncoding, rec.sink)
			for _, err := range feed(s, encoded(t, c), uint64(i)) {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := sha256.Sum256(rec.got.Bytes()); got != want {
				t.Fatalf("sink saw %d bytes with another digest, want %d bytes", rec.got.Len(), len(testBody()))
			}
		})
	}
}

// Truncated and corrupted bodies must fail in Close only.
func TestStreamBrokenData(t *testing.T) {
	for i, c := range encCases {
		enc := encoded(t, c)
		corrupt := bytes.Clone(enc)
		for j := len(corrupt) / 2; j < len(corrupt)/2+64; j++ {
			corrupt[j] ^= 0xa5
		}
		inputs := map[string][]byte{
			"half":    enc[:len(enc)/2],
			"lastcut": enc[:len(enc)-1],
			"corrupt": corrupt,
		}
		for kind, in := range inputs {
			if kind == "corrupt" && !c.checked {
				continue // raw deflate and br carry no checksum: garbage can decode
			}
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				rec := &recorder{tb: t}
				s := NewStream(c.contentEncoding, rec.sink)
				for _, err := range feed(s, in, uint64(i)) {
					if err != nil {
						t.Fatalf("Write returned %v; decoding errors must stay out of Write", err)
					}
				}
				err := s.Close()
				if err == nil {
					t.Fatalf("Close = nil after %d decoded bytes, want an error", rec.got.Len())
				}
				if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrTooLarge) {
					t.Fatalf("Close = %v, want a decoding error", err)
				}
				got := rec.got.Bytes()
				// Corrupt input may decode to garbage before a check fails;
				// a cut one must give a clean prefix, the whole body at most
				// when only a trailer is missing.
				if kind != "corrupt" && !bytes.HasPrefix(testBody(), got) {
					t.Fatalf("sink saw %d bytes that are not a prefix of the body", len(got))
				}
				if kind == "half" && len(got) == len(testBody()) {
					t.Fatal("sink saw the whole body")
				}
				t.Logf("%v after %d decoded bytes", err, len(got))
			})
		}
	}
}

func TestStreamSinkError(t *testing.T) {
	refusal := errors.New("tap quota reached")
	cases := append([]encCase{{name: "identity", contentEncoding: "identity"}}, encCases...)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := testBody()
			if c.encode != nil {
				in = encoded(t, c)
			}
			baseline := runtime.NumGoroutine()
			rec := &recorder{tb: t, quota: 1 << 20, refusal: refusal, anySize: c.encode == nil}
			s := NewStream(c.contentEncoding, rec.sink)
			errs := feed(s, in, uint64(i))
			first := -1
			for k, err := range errs {
				switch {
				case err == nil && first >= 0:
					t.Fatalf("Write %d = nil after Write %d returned the sink's error", k, first)
				case err != nil && err != refusal:
					t.Fatalf("Write %d = %v, want the sink's error", k, err)
				case err != nil && first < 0:
					first = k
				}
			}
			if first < 0 {
				t.Fatalf("no Write of %d returned the sink's error", len(errs))
			}
			if err := s.Close(); err != refusal {
				t.Fatalf("Close = %v, want the sink's error", err)
			}
			if rec.refusals != 1 {
				t.Fatalf("sink refused %d times, want once: nothing may follow a refusal", rec.refusals)
			}
			if !bytes.HasPrefix(testBody(), rec.got.Bytes()) || rec.got.Len() > rec.quota {
				t.Fatalf("sink kept %d bytes, want a prefix within the quota", rec.got.Len())
			}
			waitGoroutines(t, baseline, false)
		})
	}
}

func TestStreamUnsupported(t *testing.T) {
	for _, ce := range []string{"compress", "gzip, gzip, gzip, gzip", "gzip, foo", "br;q=1", "x-compress"} {
		t.Run(ce, func(t *testing.T) {
			if Supported(ce) {
				t.Fatal("Supported = true")
			}
			rec := &recorder{tb: t}
			s := NewStream(ce, rec.sink)
			if err := s.Write(encGzip(t, []byte("hello"))); err != nil {
				t.Fatalf("Write = %v, want nil", err)
			}
			if err := s.Close(); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Close = %v, want ErrUnsupported", err)
			}
			if rec.calls != 0 {
				t.Fatalf("sink called %d times", rec.calls)
			}
		})
	}
}

func TestSupported(t *testing.T) {
	for _, ce := range []string{"", " ", "identity", " IDENTITY ", "gzip", "x-gzip", "GZip ", "deflate",
		"br", "zstd", "gzip, br", "gzip,br", "gzip, identity, br", "gzip, gzip, gzip", "gzip,,br"} {
		if !Supported(ce) {
			t.Errorf("Supported(%q) = false", ce)
		}
	}
}

func TestStreamIdentity(t *testing.T) {
	var seen int
	sink := func(p []byte) error { seen += len(p); return nil }
	p := make([]byte, 1000)
	for _, ce := range []string{"", "identity", " Identity "} {
		s := NewStream(ce, sink)
		if allocs := testing.AllocsPerRun(100, func() { _ = s.Write(p) }); allocs != 0 {
			t.Errorf("%q: Write allocates %v times, want 0", ce, allocs)
		}
		if err := s.Close(); err != nil {
			t.Errorf("%q: Close = %v", ce, err)
		}
	}
	if seen != 3*101*len(p) {
		t.Fatalf("sink saw %d bytes, want %d", seen, 3*101*len(p))
	}
}

// A body that stays empty (HEAD, 304) still carries the representation's
// Content-Encoding; that is not a truncated stream.
func TestStreamEmptyBody(t *testing.T) {
	for _, c := range encCases {
		baseline := runtime.NumGoroutine()
		rec := &recorder{tb: t}
		s := NewStream(c.contentEncoding, rec.sink)
		if err := s.Write(nil); err != nil {
			t.Fatal(err)
		}
		if runtime.NumGoroutine() != baseline {
			t.Errorf("%s: an empty body started a goroutine", c.name)
		}
		if err := s.Close(); err != nil || rec.calls != 0 {
			t.Errorf("%s: Close = %v, %d sink calls", c.name, err, rec.calls)
		}
	}
}

func TestStreamCloseTwiceAndWriteAfterClose(t *testing.T) {
	rec := &recorder{tb: t}
	s := NewStream("gzip", rec.sink)
	if err := s.Write(encGzip(t, []byte("hello"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]byte("late")); err != nil {
		t.Fatalf("Write after Close = %v", err)
	}
	if err := s.Close(); err != nil || rec.got.String() != "hello" {
		t.Fatalf("second Close = %v, sink saw %q", err, rec.got.String())
	}
}

// A Stream dropped without Close must not keep its decoder goroutine
// blocked on the pipe forever.
func TestStreamDroppedWithoutClose(t *testing.T) {
	baseline := runtime.NumGoroutine()
	enc := encoded(t, encCases[0])
	func() {
		var n int
		s := NewStream("gzip", func(p []byte) error { n += len(p); return nil })
		feed(s, enc[:len(enc)/2], 1)
	}()
	waitGoroutines(t, baseline, true)
}

// Close must return even when the decoder still has much to do; the sink
// here stands in for a slow decoder by holding the first chunk.
func TestStreamCloseBounded(t *testing.T) {
	defer func(d time.Duration) { closeTimeout = d }(closeTimeout)
	closeTimeout = time.Millisecond
	release := make(chan struct{})
	s := NewStream("gzip", func([]byte) error { <-release; return nil })
	// Compressed, this fits one pipe read, so Write returns before the
	// sink is first called; decoded, it is several chunks.
	if err := s.Write(encGzip(t, bytes.Repeat([]byte("hello vigil "), 20000))); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for !s.w.abandon.Load() {
		if time.Now().After(deadline) {
			t.Fatal("Close did not give up on the decoder")
		}
		runtime.Gosched()
	}
	close(release)
	if err := <-closed; !errors.Is(err, errCloseTimeout) {
		t.Fatalf("Close = %v, want errCloseTimeout", err)
	}
}

// Body's window bound for br rests on reading the header right.
func TestBrotliWindow(t *testing.T) {
	data := testBody()[:100<<10]
	for lgwin := 10; lgwin <= 24; lgwin++ {
		enc := encBrotliWindow(lgwin)(t, data)
		if got := brotliWindow(enc[0]); got != 1<<lgwin {
			t.Errorf("lgwin %d: brotliWindow = %d, want %d", lgwin, got, 1<<lgwin)
		}
	}
}
