package caddymodule

import (
	"bytes"
	"net/http"
	"testing"
)

// csvUpstream answers with a CSV export of 64 KiB chunks: 1 MiB in all.
type csvUpstream struct{ chunk []byte }

func (u csvUpstream) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/csv")
	w.WriteHeader(http.StatusOK)
	for i := 0; i < 16; i++ {
		_, _ = w.Write(u.chunk)
	}
	return nil
}

func csvChunk() []byte {
	var b bytes.Buffer
	for b.Len() < 64<<10-100 {
		b.WriteString("42,cust-42,\"a, quoted\nnote\",alice@example.com,DE,12.50,2026-11-02,active,7\n")
	}
	return b.Bytes()
}

// dataHandler is a site with one export route (rows and bytes limits).
func dataHandler(b *testing.B) *Handler {
	app := testApp(b)
	h := testHandler(b, app, newClock())
	h.Lockout, h.BlockIP, h.Stuffing, h.now = nil, nil, nil, nil
	h.Export = []ExportConfig{{Paths: []string{"/export/*"}, Rows: &VolumeLimit{Max: 1 << 40, Within: 3600e9}, Bytes: &VolumeLimit{Max: 1 << 50, Within: 3600e9}}}
	if err := h.setup(app); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkExportRoute is a 1 MiB CSV answer on an export route: the
// bytes and rows counted as they pass (SetBytes: throughput of the whole
// handler, counting included).
func BenchmarkExportRoute(b *testing.B) { benchCSVAnswer(b, "/export/customers.csv") }

// BenchmarkExportRouteUnwatched is the same answer on a route no export
// line covers: the baseline the export route is compared with.
func BenchmarkExportRouteUnwatched(b *testing.B) { benchCSVAnswer(b, "/products.csv") }

func benchCSVAnswer(b *testing.B, path string) {
	h := dataHandler(b)
	up := csvUpstream{chunk: csvChunk()}
	r := benchRequest("GET", path, "")
	w := &nopWriter{h: http.Header{}}
	b.SetBytes(int64(16 * len(up.chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = h.ServeHTTP(w, r, up)
	}
	b.StopTimer()
	h.pool.Wait() // the export route's counting finishes off the request path
}

// BenchmarkNonLoginWithExports is the hot path on a site with an export
// line: a small request on another route.
func BenchmarkNonLoginWithExports(b *testing.B) {
	h := dataHandler(b)
	r := benchRequest("GET", "/products/42", "")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = h.ServeHTTP(w, r, nopUpstream{})
	}
}
