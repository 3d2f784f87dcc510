package decode

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestBodyRoundTrip(t *testing.T) {
	for _, c := range encCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Body(c.contentEncoding, bytes.NewReader(encoded(t, c)), 8<<20, 8<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, testBody()) {
				t.Fatalf("got %d bytes, not the body", len(got))
			}
		})
	}
}

func TestBodyIdentity(t *testing.T) {
	data := []byte("user=alice&password=hunter2")
	n := int64(len(data))
	if got, err := Body("", bytes.NewReader(data), n, n); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("exact bounds: %q, %v", got, err)
	}
	if _, err := Body("identity", bytes.NewReader(data), n, n-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("maxOut-1: %v, want ErrTooLarge", err)
	}
	if _, err := Body("identity", bytes.NewReader(data), n-1, n); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("maxIn-1: %v, want ErrTooLarge", err)
	}
}

func TestBodyEmpty(t *testing.T) {
	for _, c := range encCases {
		if got, err := Body(c.contentEncoding, bytes.NewReader(nil), 10, 10); err != nil || len(got) != 0 {
			t.Errorf("%s: %q, %v", c.name, got, err)
		}
	}
}

// A few kilobytes that expand to 10 MB must be refused once past maxOut,
// without the decoder producing (or the caller holding) the rest. The br
// and zstd bombs declare windows within maxOut, so it is the output bound
// that stops them (TestBodyLargeWindow covers the others).
func TestBodyBomb(t *testing.T) {
	zeros := make([]byte, 10<<20)
	const maxOut = 1 << 20
	cases := append(encCases[:4:4],
		encCase{"br", "br", encBrotliWindow(20), false},
		encCase{"zstd", "zstd", encZstdWindow(1 << 20), true},
		encCase{"gzip-then-br", "gzip, br", then(encGzip, encBrotliWindow(20)), true})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bomb := c.encode(t, zeros)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			got, err := Body(c.contentEncoding, bytes.NewReader(bomb), 1<<20, maxOut)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) || got != nil {
				t.Fatalf("Body = %d bytes, %v; want ErrTooLarge", len(got), err)
			}
			// The output buffer doubling up to maxOut (2×), a window of
			// up to maxOut that zstd allocates twice over (2×), and
			// decoder tables: well short of the 10 MB the bomb holds.
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > 5*maxOut {
				t.Fatalf("allocated %d bytes for a %d-byte bomb, want <= %d", alloc, len(bomb), 5*maxOut)
			}
			if elapsed > 5*time.Second {
				t.Fatalf("took %v", elapsed)
			}
			t.Logf("%d-byte bomb refused in %v, %d bytes allocated", len(bomb), elapsed, alloc)
		})
	}
}

// A window is allocated whole up front, so a stream declaring one past
// what maxOut needs is refused from its header, before any allocation.
func TestBodyLargeWindow(t *testing.T) {
	hello := []byte("user=alice&password=hunter2")
	for _, c := range []encCase{
		{name: "br-4MiB", contentEncoding: "br", encode: encBrotli},
		{name: "br-16MiB", contentEncoding: "br", encode: encBrotliWindow(24)},
		{name: "zstd-8MiB", contentEncoding: "zstd", encode: encZstdWindow(8 << 20)},
		{name: "zstd-single-segment", contentEncoding: "zstd", encode: func(tb testing.TB, data []byte) []byte {
			enc, err := zstd.NewWriter(nil)
			if err != nil {
				tb.Fatal(err)
			}
			return enc.EncodeAll(data, nil)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := hello
			if c.name == "zstd-single-segment" {
				data = make([]byte, 1<<20) // the frame declares its content size as its window
			}
			enc := c.encode(t, data)
			if _, err := Body(c.contentEncoding, bytes.NewReader(enc), 1<<20, 64<<10); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("maxOut 64 KiB: %v, want ErrTooLarge", err)
			}
			got, err := Body(c.contentEncoding, bytes.NewReader(enc), 1<<20, 16<<20)
			if c.name == "br-16MiB" {
				// Past zstd's cap, which Body applies to br too.
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("maxOut 16 MiB: %v, want ErrTooLarge", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("maxOut 16 MiB: %d bytes, %v", len(got), err)
			}
		})
	}
	// Small windows, as one-shot encoders choose for short inputs, pass.
	for _, c := range []encCase{
		{name: "br", contentEncoding: "br", encode: encBrotliWindow(16)},
		{name: "zstd", contentEncoding: "zstd", encode: encZstdWindow(64 << 10)},
	} {
		got, err := Body(c.contentEncoding, bytes.NewReader(c.encode(t, hello)), 1<<20, 64<<10)
		if err != nil || !bytes.Equal(got, hello) {
			t.Errorf("%s with a small window: %q, %v", c.name, got, err)
		}
	}
}

func TestBodyMaxIn(t *testing.T) {
	for _, c := range encCases {
		t.Run(c.name, func(t *testing.T) {
			enc := encoded(t, c)
			n := int64(len(enc))
			if _, err := Body(c.contentEncoding, bytes.NewReader(enc), n-1, 8<<20); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("maxIn one short: %v, want ErrTooLarge", err)
			}
			if _, err := Body(c.contentEncoding, bytes.NewReader(enc), n/10, 8<<20); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("maxIn a tenth: %v, want ErrTooLarge", err)
			}
			if _, err := Body(c.contentEncoding, bytes.NewReader(enc), n, 8<<20); err != nil {
				t.Fatalf("maxIn exact: %v", err)
			}
		})
	}
}

func TestBodyBroken(t *testing.T) {
	for _, c := range encCases {
		enc := encoded(t, c)
		_, err := Body(c.contentEncoding, bytes.NewReader(enc[:len(enc)/2]), 8<<20, 8<<20)
		if err == nil || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsupported) {
			t.Errorf("%s truncated: %v, want a decoding error", c.name, err)
		}
	}
	if _, err := Body("compress", bytes.NewReader([]byte("x")), 10, 10); !errors.Is(err, ErrUnsupported) {
		t.Errorf("compress: %v, want ErrUnsupported", err)
	}
}

var fuzzEncodings = []string{"", "gzip", "deflate", "br", "zstd", "gzip, br", "compress"}

// FuzzBody checks Body never panics nor passes maxOut, and that Stream
// agrees with it on whatever decodes within bounds.
func FuzzBody(f *testing.F) {
	f.Add(uint8(1), encGzip(f, []byte("hello")))
	f.Add(uint8(2), encZlib(f, []byte("hello")))
	f.Add(uint8(2), encRawDeflate(f, []byte("hello")))
	f.Add(uint8(3), encBrotliWindow(16)(f, []byte("hello")))
	f.Add(uint8(4), encZstd(f, []byte("hello")))
	f.Add(uint8(5), then(encGzip, encBrotliWindow(16))(f, []byte("hello")))
	f.Add(uint8(1), encGzip(f, make([]byte, 1<<20)))
	const maxIn, maxOut = 64 << 10, 64 << 10
	f.Fuzz(func(t *testing.T, enc uint8, data []byte) {
		ce := fuzzEncodings[int(enc)%len(fuzzEncodings)]
		out, err := Body(ce, bytes.NewReader(data), maxIn, maxOut)
		if len(out) > maxOut {
			t.Fatalf("%d bytes out, bound %d", len(out), maxOut)
		}
		if err != nil && out != nil {
			t.Fatalf("both output and %v", err)
		}
		switch {
		case ce == "compress":
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("compress: %v", err)
			}
			return
		case ce == "" && len(data) <= maxOut:
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("identity: %v", err)
			}
		case errors.Is(err, ErrTooLarge) || len(data) > maxIn:
			return
		}
		var streamed bytes.Buffer
		s := NewStream(ce, func(p []byte) error {
			if streamed.Len()+len(p) > maxOut {
				return ErrTooLarge
			}
			streamed.Write(p)
			return nil
		})
		_ = s.Write(data)
		serr := s.Close()
		if (err == nil) != (serr == nil) || (err == nil && !bytes.Equal(out, streamed.Bytes())) {
			t.Fatalf("Body: %d bytes, %v; Stream: %d bytes, %v", len(out), err, streamed.Len(), serr)
		}
	})
}

func BenchmarkStreamIdentity(b *testing.B) {
	var n int
	s := NewStream("", func(p []byte) error { n += len(p); return nil })
	p := make([]byte, 32<<10)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Write(p)
	}
}

func benchmarkStream(b *testing.B, c encCase) {
	enc := encoded(b, c)
	b.SetBytes(int64(len(testBody())))
	b.ReportAllocs()
	for b.Loop() {
		s := NewStream(c.contentEncoding, func([]byte) error { return nil })
		for p := enc; len(p) > 0; p = p[min(len(p), 32<<10):] {
			_ = s.Write(p[:min(len(p), 32<<10)])
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// Figures are in decoded bytes per second.
func BenchmarkStreamGzip(b *testing.B)    { benchmarkStream(b, encCases[0]) }
func BenchmarkStreamDeflate(b *testing.B) { benchmarkStream(b, encCases[2]) }
func BenchmarkStreamBrotli(b *testing.B)  { benchmarkStream(b, encCases[4]) }
func BenchmarkStreamZstd(b *testing.B)    { benchmarkStream(b, encCases[5]) }
