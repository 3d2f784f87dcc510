package caddymodule

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/encode"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/gzip"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/zstd"
	"github.com/klauspost/compress/zstd"

	"github.com/vigilsec/vigil/detect"
)

// recordingTap is a ResponseTap that keeps what it saw.
type recordingTap struct {
	status   int
	encoding string
	n        int
	sum      [sha256.Size]byte
	h        interface {
		io.Writer
		Sum([]byte) []byte
	}
	done, complete bool
	cutAfter       int // >0: refuse bytes past this many
}

func (t *recordingTap) Header(status int, h http.Header) {
	t.status, t.encoding, t.h = status, h.Get("Content-Encoding"), sha256.New()
}

func (t *recordingTap) Write(p []byte) error {
	if t.cutAfter > 0 && t.n+len(p) > t.cutAfter {
		return errors.New("over the cap")
	}
	t.n += len(p)
	_, _ = t.h.Write(p)
	return nil
}

func (t *recordingTap) Done(complete bool) {
	t.done, t.complete = true, complete
	copy(t.sum[:], t.h.Sum(nil))
}

// tapAll watches every answer with one tap.
type tapAll struct{ t *recordingTap }

func (a tapAll) Tap(*detect.Request) detect.ResponseTap { return a.t }

// csvBody is a CSV export of n rows.
func csvBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("id,name,email\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,user %d,user%d@example.com\n", i, i, i)
	}
	return b.Bytes()
}

// tappedHandler is a handler whose pipeline carries tap.
func tappedHandler(t *testing.T, tap *recordingTap) *Handler {
	t.Helper()
	app := testApp(t)
	h := testHandler(t, app, newClock())
	h.pipeline.Taps = append(h.pipeline.Taps, tapAll{tap})
	return h
}

// TestTapSeesTheAppsBytesThroughEncode: with Caddy's encode (gzip, zstd)
// after the vigil handler, the client gets compressed bytes and the tap the
// app's own, byte for byte, as they stream.
func TestTapSeesTheAppsBytesThroughEncode(t *testing.T) {
	body := csvBody(50000)
	want := sha256.Sum256(body)
	for _, enc := range []string{"gzip", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			e := &encode.Encode{EncodingsRaw: caddy.ModuleMap{"gzip": json.RawMessage(`{}`), "zstd": json.RawMessage(`{}`)}}
			if err := e.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", "text/csv")
				for rest := body; len(rest) > 0; {
					n := min(len(rest), 7000)
					if _, err := w.Write(rest[:n]); err != nil {
						return err
					}
					if err := http.NewResponseController(w).Flush(); err != nil {
						return fmt.Errorf("flush through the tap: %w", err)
					}
					rest = rest[n:]
				}
				return nil
			})
			tap := &recordingTap{}
			h := tappedHandler(t, tap)
			r := newRequest("GET", "/export.csv", "", "198.51.100.1")
			r.Header.Set("Accept-Encoding", enc)
			w := httptest.NewRecorder()
			err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				return e.ServeHTTP(w, r, app)
			}))
			if err != nil {
				t.Fatal(err)
			}
			if got := w.Header().Get("Content-Encoding"); got != enc {
				t.Fatalf("client got Content-Encoding %q, want %q", got, enc)
			}
			if w.Body.Len() >= len(body)/2 {
				t.Fatalf("client got %d bytes for a %d-byte body: not compressed", w.Body.Len(), len(body))
			}
			if got := decompress(t, enc, w.Body.Bytes()); !bytes.Equal(got, body) {
				t.Fatal("the client's answer does not decompress to the app's body")
			}
			if !tap.done || !tap.complete || tap.status != http.StatusOK || tap.encoding != enc {
				t.Fatalf("tap: done=%v complete=%v status=%d encoding=%q", tap.done, tap.complete, tap.status, tap.encoding)
			}
			if tap.n != len(body) || tap.sum != want {
				t.Fatalf("tap saw %d bytes (want %d, the app's), digest match %v", tap.n, len(body), tap.sum == want)
			}
		})
	}
}

// TestTapDecodesTheAppsOwnCompression: an app that compresses its answer
// itself (brotli here) is decoded for the tap, the client gets it as sent.
func TestTapDecodesTheAppsOwnCompression(t *testing.T) {
	body := csvBody(20000)
	var br bytes.Buffer
	bw := brotli.NewWriter(&br)
	_, _ = bw.Write(body)
	_ = bw.Close()
	tap := &recordingTap{}
	h := tappedHandler(t, tap)
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, newRequest("GET", "/export.csv", "", "198.51.100.1"), caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Encoding", "br")
		_, err := w.Write(br.Bytes())
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Body.Bytes(), br.Bytes()) {
		t.Fatal("the client's bytes changed")
	}
	if tap.n != len(body) || tap.sum != sha256.Sum256(body) || !tap.complete {
		t.Fatalf("tap saw %d bytes, want %d decoded; complete=%v", tap.n, len(body), tap.complete)
	}
}

// TestTapSeesReadFrom: an upstream that copies a file (sendfile when
// nothing watches) still hands every byte to a tap.
func TestTapSeesReadFrom(t *testing.T) {
	body := csvBody(30000)
	file := filepath.Join(t.TempDir(), "export.csv")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	serveFile := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	tap := &recordingTap{}
	h := tappedHandler(t, tap)
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, newRequest("GET", "/export.csv", "", "198.51.100.1"), serveFile); err != nil {
		t.Fatal(err)
	}
	if w.Body.Len() != len(body) || tap.n != len(body) || tap.sum != sha256.Sum256(body) {
		t.Fatalf("client %d bytes, tap %d bytes, want %d", w.Body.Len(), tap.n, len(body))
	}
}

// TestTapCutsTheAnswer: a tap that refuses more bytes ends the answer: the
// upstream's write fails and the connection is aborted (never a
// complete-looking answer).
func TestTapCutsTheAnswer(t *testing.T) {
	body := csvBody(30000)
	tap := &recordingTap{cutAfter: 64 << 10}
	h := tappedHandler(t, tap)
	w := httptest.NewRecorder()
	var upstreamErr error
	aborted := func() (p any) {
		defer func() { p = recover() }()
		_ = h.ServeHTTP(w, newRequest("GET", "/export.csv", "", "198.51.100.1"), caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			for rest := body; len(rest) > 0; rest = rest[min(len(rest), 4096):] {
				if _, err := w.Write(rest[:min(len(rest), 4096)]); err != nil {
					upstreamErr = err
					return err
				}
			}
			return nil
		}))
		return nil
	}()
	if aborted != http.ErrAbortHandler {
		t.Fatalf("ServeHTTP did not abort the connection: %v", aborted)
	}
	if upstreamErr == nil || !strings.Contains(upstreamErr.Error(), "cut") {
		t.Fatalf("the upstream's write did not fail: %v", upstreamErr)
	}
	if !tap.done || tap.complete || w.Body.Len() >= len(body) {
		t.Fatalf("tap done=%v complete=%v; client got %d of %d bytes", tap.done, tap.complete, w.Body.Len(), len(body))
	}
}

func decompress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
