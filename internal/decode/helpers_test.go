package decode

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// The tests encode with the standard library where it has an encoder, so
// the decoders under test (klauspost's) are checked against another
// implementation.

type encoder func(tb testing.TB, data []byte) []byte

func encodeWith(tb testing.TB, data []byte, open func(io.Writer) (io.WriteCloser, error)) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := open(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func encGzip(tb testing.TB, data []byte) []byte {
	return encodeWith(tb, data, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil })
}

func encZlib(tb testing.TB, data []byte) []byte {
	return encodeWith(tb, data, func(w io.Writer) (io.WriteCloser, error) { return zlib.NewWriter(w), nil })
}

func encRawDeflate(tb testing.TB, data []byte) []byte {
	return encodeWith(tb, data, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.DefaultCompression)
	})
}

func encBrotli(tb testing.TB, data []byte) []byte {
	return encodeWith(tb, data, func(w io.Writer) (io.WriteCloser, error) { return brotli.NewWriterLevel(w, 5), nil })
}

func encZstd(tb testing.TB, data []byte) []byte {
	return encodeWith(tb, data, func(w io.Writer) (io.WriteCloser, error) {
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	})
}

// encBrotliWindow and encZstdWindow declare a chosen window, where the
// defaults declare 4 MiB and 8 MiB whatever the input's size.
func encBrotliWindow(lgwin int) encoder {
	return func(tb testing.TB, data []byte) []byte {
		return encodeWith(tb, data, func(w io.Writer) (io.WriteCloser, error) {
			return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: 5, LGWin: lgwin}), nil
		})
	}
}

// encZstdWindow flushes before closing, as a streaming client would: a
// frame finished in one go declares its content size as its window.
func encZstdWindow(size int) encoder {
	return func(tb testing.TB, data []byte) []byte {
		return encodeWith(tb, data, func(w io.Writer) (io.WriteCloser, error) {
			zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(size))
			return flushingCloser{zw}, err
		})
	}
}

type flushingCloser struct{ *zstd.Encoder }

func (f flushingCloser) Close() error {
	if err := f.Flush(); err != nil {
		return err
	}
	return f.Encoder.Close()
}

// then applies first, then second, as a server listing "first, second"
// in Content-Encoding did.
func then(first, second encoder) encoder {
	return func(tb testing.TB, data []byte) []byte { return second(tb, first(tb, data)) }
}

type encCase struct {
	name, contentEncoding string
	encode                encoder
	checked               bool // a checksum catches corruption
}

var encCases = []encCase{
	{"gzip", "gzip", encGzip, true},
	{"x-gzip", " X-Gzip ", encGzip, true},
	{"deflate-zlib", "deflate", encZlib, true},
	{"deflate-raw", "Deflate", encRawDeflate, false},
	{"br", "br", encBrotli, false},
	{"zstd", "zstd", encZstd, true},
	{"gzip-then-br", "gzip, br", then(encGzip, encBrotli), true},
}

// testBody is a few megabytes of log-like text with incompressible runs,
// so encoders emit both compressed and stored blocks.
var testBody = sync.OnceValue(func() []byte {
	const size = 3 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("vigil caddy session token login user password GET POST /api/v1/items " +
		"200 302 401 403 <html> </div> Set-Cookie: Authorization: Bearer eyJhbGciOi {\"id\": null}")
	var b bytes.Buffer
	for b.Len() < size {
		if rng.IntN(400) == 0 {
			run := make([]byte, 1+rng.IntN(8<<10))
			for i := range run {
				run[i] = byte(rng.Uint32())
			}
			b.Write(run)
			continue
		}
		for range 4 + rng.IntN(12) {
			fmt.Fprintf(&b, "%s %d ", words[rng.IntN(len(words))], rng.IntN(100000))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()[:size]
})

var (
	encodedMu    sync.Mutex
	encodedCache = map[string][]byte{}
)

// encoded returns testBody encoded for c, computed once per test binary:
// brotli under the race detector is slow enough to matter.
func encoded(tb testing.TB, c encCase) []byte {
	tb.Helper()
	encodedMu.Lock()
	defer encodedMu.Unlock()
	if b, ok := encodedCache[c.name]; ok {
		return b
	}
	b := c.encode(tb, testBody())
	encodedCache[c.name] = b
	return b
}

// chunkSizes yields write sizes from 1 B to 64 KiB, spread evenly on a
// log scale so that tiny writes are common too.
func chunkSizes(seed uint64) func() int {
	rng := rand.New(rand.NewPCG(seed, 7))
	return func() int {
		return 1 + rng.IntN(1<<rng.IntN(17))
	}
}

// recorder is a sink that keeps what it saw and can refuse bytes past a
// quota.
type recorder struct {
	tb       testing.TB
	got      bytes.Buffer
	calls    int
	quota    int // refuse once got would pass it; 0 means no quota
	refusal  error
	refusals int
	anySize  bool // identity streams pass the caller's writes through
}

func (r *recorder) sink(p []byte) error {
	r.calls++
	if len(p) == 0 || len(p) > chunkSize && !r.anySize {
		r.tb.Errorf("sink got %d bytes, want 1..%d", len(p), chunkSize)
	}
	if r.quota > 0 && r.got.Len()+len(p) > r.quota {
		r.refusals++
		return r.refusal
	}
	r.got.Write(p)
	return nil
}

// feed writes data to s in random-size chunks and returns the Write
// errors in order (nil entries included).
func feed(s *Stream, data []byte, seed uint64) []error {
	next := chunkSizes(seed)
	var errs []error
	for len(data) > 0 {
		n := min(next(), len(data))
		errs = append(errs, s.Write(data[:n]))
		data = data[n:]
	}
	return errs
}

// waitGoroutines polls until the goroutine count is back to baseline, so
// a leaked decoder goroutine fails the test instead of hiding.
func waitGoroutines(tb testing.TB, baseline int, gc bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			tb.Fatalf("%d goroutines, want <= %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		if gc {
			runtime.GC()
		}
		runtime.Gosched()
	}
}
