package decode

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Body decodes a whole (request) body read from r, given its
// Content-Encoding. It reads at most maxIn encoded bytes and produces at
// most maxOut decoded bytes; a body past either bound gives ErrTooLarge.
// Decoding stops one byte past maxOut, so a decompression bomb costs the
// CPU to produce maxOut bytes and memory in proportion to maxOut: the
// output buffer, and a decoder window Body keeps within maxOut (see
// bodyMaxWindow). An unsupported encoding gives ErrUnsupported, corrupt or
// truncated data an error wrapping the decoder's. An empty body decodes
// to an empty one whatever its Content-Encoding.
//
// Bytes after the end of a complete deflate stream are not read, as
// browsers ignore them; gzip, br and zstd treat them as corrupt data.
func Body(contentEncoding string, r io.Reader, maxIn, maxOut int64) ([]byte, error) {
	cs, err := parse(contentEncoding)
	if err != nil {
		return nil, err
	}
	in := &boundedReader{r: r, left: max(maxIn, 0)}
	var src io.Reader = in
	if cs.n > 0 {
		br := bufio.NewReaderSize(in, layerBufSize)
		if _, err := br.Peek(1); err == io.EOF {
			return []byte{}, nil // nothing was encoded, so nothing to undo
		}
		c, err := newChain(cs, br, bodyMaxWindow(maxOut))
		if err != nil {
			return nil, bodyError(contentEncoding, in, err)
		}
		defer c.close()
		src = c
	}
	out, err := readAtMost(src, max(maxOut, 0))
	if err != nil {
		return nil, bodyError(contentEncoding, in, err)
	}
	return out, nil
}

// bodyMaxWindow is the largest decoder window Body accepts for maxOut.
// Since a window is allocated whole before any output, a few bytes of br
// or zstd could otherwise cost megabytes however small maxOut is. No body
// within maxOut needs more history than maxOut bytes, but streaming
// encoders declare big windows anyway (brotli's default is 4 MiB): such
// a body is refused as too large unless maxOut covers its window. The
// floor keeps the small windows one-shot encoders pick for short inputs.
func bodyMaxWindow(maxOut int64) int64 {
	return min(max(maxOut, 64<<10), zstdMaxWindow)
}

// bodyError reports the input bound rather than whatever the decoder made
// of the cut-off input, which is usually a truncation error, and reports
// zstd's window refusals as the bound they are.
func bodyError(contentEncoding string, in *boundedReader, err error) error {
	switch {
	case in.exceeded:
		err = ErrTooLarge
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		err = fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return wrap(contentEncoding, err)
}

// readAtMost reads r to its end, or fails with ErrTooLarge once more than
// limit bytes came out. Decoding stops one byte past the limit. The
// buffer doubles up to limit and no further, so the output costs at most
// about twice limit in allocations.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(limit, 512))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) == limit {
				if err := probeEnd(r); err != nil {
					return nil, err
				}
				return buf, nil
			}
			grown := make([]byte, len(buf), min(limit, 2*int64(cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// probeEnd tells a body that ends at the limit from a longer one by
// asking for one more byte.
func probeEnd(r io.Reader) error {
	var one [1]byte
	for range 100 {
		n, err := r.Read(one[:])
		switch {
		case n > 0:
			return ErrTooLarge
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
	return io.ErrNoProgress
}

// boundedReader fails with ErrTooLarge once its source yields more than
// left bytes. It reads at most one byte past the bound, which is how it
// tells a body of exactly left bytes from a longer one.
type boundedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.exceeded {
		return 0, ErrTooLarge
	}
	if int64(len(p))-1 > b.left {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		b.exceeded = true
		return 0, ErrTooLarge
	}
	b.left -= int64(n)
	return n, err
}
