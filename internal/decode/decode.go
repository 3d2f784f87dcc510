// Package decode undoes HTTP content codings (gzip, deflate, br, zstd and
// chains of them) for Vigil.
//
// Response taps must judge what the application produced, not what the
// wire carried: a body compressed by Caddy's encode handler or by the app
// itself would otherwise hide every marker a tap looks for and make byte
// counts meaningless. Stream decodes such a body on the fly, next to the
// copy sent to the client, in constant memory.
//
// Login request bodies are attacker controlled, so Body decodes them with
// hard bounds on both the encoded input and the decoded output: a few
// kilobytes of gzip can expand to gigabytes, and a decompression bomb
// must cost no more than the caller's output bound.
package decode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

var (
	// ErrTooLarge reports a body past the encoded or decoded bound given
	// to Body.
	ErrTooLarge = errors.New("body too large")
	// ErrUnsupported reports a Content-Encoding Vigil cannot undo.
	ErrUnsupported = errors.New("unsupported content encoding")
)

// maxCodings bounds a coding chain: real servers apply one coding, rarely
// two, and every layer costs a decoder's worth of memory.
const maxCodings = 3

// Decoders allocate the whole window a stream declares before producing
// any output, so the window bound, not the body's size, sets a decoder's
// memory. zstdMaxWindow keeps a zstd frame header from asking for the
// library's 512 MiB default; browsers cap at 8 MiB too (RFC 8878 section
// 3.1.1.1.2). streamMaxWindow is brotli's largest standard window, which
// response streams accept: the app is not the adversary there.
const (
	zstdMaxWindow   = 8 << 20
	streamMaxWindow = 16 << 20
)

// layerBufSize is the read buffer in front of each decoder. The decoders
// read byte by byte when given an io.ByteReader, so a buffer is needed
// anyway; a fixed size keeps per-stream memory constant.
const layerBufSize = 16 << 10

type coding uint8

const (
	codingGzip coding = iota + 1
	codingDeflate
	codingBrotli
	codingZstd
)

// codings is a parsed Content-Encoding in the order the codings were
// applied. A fixed array keeps parsing allocation-free, which matters
// because NewStream runs for every response, encoded or not.
type codings struct {
	list [maxCodings]coding
	n    int
}

// parse reads a Content-Encoding list. Empty elements and "identity" are
// skipped, as the HTTP list syntax allows; n == 0 means nothing to undo.
func parse(contentEncoding string) (codings, error) {
	var cs codings
	rest := contentEncoding
	for rest != "" {
		var tok string
		tok, rest, _ = strings.Cut(rest, ",")
		tok = strings.TrimSpace(tok)
		var c coding
		switch {
		case tok == "" || strings.EqualFold(tok, "identity"):
			continue
		case strings.EqualFold(tok, "gzip"), strings.EqualFold(tok, "x-gzip"):
			c = codingGzip
		case strings.EqualFold(tok, "deflate"):
			c = codingDeflate
		case strings.EqualFold(tok, "br"):
			c = codingBrotli
		case strings.EqualFold(tok, "zstd"):
			c = codingZstd
		default:
			return codings{}, unsupported(contentEncoding)
		}
		if cs.n == maxCodings {
			return codings{}, unsupported(contentEncoding)
		}
		cs.list[cs.n] = c
		cs.n++
	}
	return cs, nil
}

func unsupported(contentEncoding string) error {
	return wrap(contentEncoding, ErrUnsupported)
}

// wrap gives err the Content-Encoding it came from; with chains, which
// layer failed is rarely worth more than the whole header value.
func wrap(contentEncoding string, err error) error {
	return fmt.Errorf("decoding %q: %w", strings.TrimSpace(contentEncoding), err)
}

// Supported reports whether Vigil can decode this Content-Encoding value.
func Supported(contentEncoding string) bool {
	_, err := parse(contentEncoding)
	return err == nil
}

// chain is a stack of decoders reading from one source. It must be
// closed: zstd and gzip hold buffers (and zstd possibly goroutines) until
// then.
type chain struct {
	r       io.Reader
	closers []func()
}

func (c *chain) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *chain) close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	c.closers = nil
}

// newChain builds the decoders for cs on top of src, refusing br and zstd
// streams that declare a window over maxWindow. The last coding applied
// is the first to undo, so layers are stacked in reverse. Some decoders
// read their header here, so this blocks on src.
func newChain(cs codings, src io.Reader, maxWindow int64) (*chain, error) {
	c := &chain{r: src}
	for i := cs.n - 1; i >= 0; i-- {
		r, closer, err := newLayer(cs.list[i], bufio.NewReaderSize(c.r, layerBufSize), maxWindow)
		if err != nil {
			c.close()
			return nil, err
		}
		c.r = r
		if closer != nil {
			c.closers = append(c.closers, closer)
		}
	}
	return c, nil
}

func newLayer(c coding, br *bufio.Reader, maxWindow int64) (io.Reader, func(), error) {
	switch c {
	case codingGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { _ = zr.Close() }, nil
	case codingDeflate:
		return newDeflate(br)
	case codingBrotli:
		// The brotli package has no window bound of its own.
		if head, _ := br.Peek(1); len(head) == 1 {
			if w := brotliWindow(head[0]); w > maxWindow {
				return nil, nil, fmt.Errorf("br window of %d bytes: %w", w, ErrTooLarge)
			}
		}
		return brotli.NewReader(br), nil, nil
	case codingZstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderMaxWindow(uint64(min(maxWindow, zstdMaxWindow))),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("coding %d: %w", c, ErrUnsupported)
}

// newDeflate accepts both forms servers send for "deflate": the zlib
// wrapper RFC 9110 asks for, and the raw deflate data that some servers
// (and old IIS) send instead. Browsers sniff the same way.
func newDeflate(br *bufio.Reader) (io.Reader, func(), error) {
	head, _ := br.Peek(2)
	if len(head) == 2 && isZlibHeader(head[0], head[1]) {
		zr, err := zlib.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { _ = zr.Close() }, nil
	}
	fr := flate.NewReader(br)
	return fr, func() { _ = fr.Close() }, nil
}

// isZlibHeader applies RFC 1950's checks: method 8 (deflate), a window of
// at most 32 KiB, and the header check bits. Raw deflate data could only
// match with a stored block whose padding bits are set, which encoders do
// not write; a misfire would cost a tap its view of one response, never
// the client's answer.
func isZlibHeader(cmf, flg byte) bool {
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// brotliWindow returns the ring buffer size a brotli stream declares in
// its first bits (RFC 7932 section 9.1), which is what the decoder
// allocates. The reserved value, used by the large-window extension, gives
// 0 so the decoder itself rejects it.
func brotliWindow(b byte) int64 {
	if b&1 == 0 {
		return 1 << 16
	}
	if n := b >> 1 & 7; n != 0 {
		return 1 << (17 + n)
	}
	switch m := b >> 4 & 7; m {
	case 0:
		return 1 << 17
	case 1:
		return 0
	default:
		return 1 << (8 + m)
	}
}
