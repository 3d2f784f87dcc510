package integration

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/internal/poll"
)

// exportApp is an app with data to take: a CSV export of any number of
// rows (with quoted fields holding commas and newlines), a JSON array, a
// users API, a payroll report and an event stream.
type exportApp struct {
	sse chan struct{} // the SSE handler sends its next event on each receive
}

// csvRow is row i of the export: 10 columns, a quoted one with a comma and
// a newline inside every 7th row.
func csvRow(i int) string {
	note := "ok"
	if i%7 == 0 {
		note = "\"line one,\nline two\""
	}
	return fmt.Sprintf("%d,cust-%d,%s,alice%d@example.com,DE,%d.%02d,2026-11-%02d,active,%d,%s\n", i, i, note, i, i%1000, i%100, i%28+1, i*31, "z")
}

func (a *exportApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/export/customers.csv":
		n, _ := strconv.Atoi(r.URL.Query().Get("rows"))
		w.Header().Set("Content-Type", "text/csv")
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString("id,name,note,email,country,amount,date,status,score,flag\n")
		for i := 1; i <= n; i++ {
			bw.WriteString(csvRow(i))
		}
		bw.Flush()
	case r.URL.Path == "/export/broken.csv":
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, "id,name\n1,\"unterminated\n2,x\n")
	case r.URL.Path == "/export/orders.json":
		n, _ := strconv.Atoi(r.URL.Query().Get("rows"))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "[")
		for i := 0; i < n; i++ {
			if i > 0 {
				io.WriteString(w, ",")
			}
			fmt.Fprintf(w, `{"id":%d,"items":[1,2,3],"note":"a,b]"}`, i)
		}
		io.WriteString(w, "]")
	case r.URL.Path == "/export/liar.csv":
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Length", "1000000")
		io.WriteString(w, "id\n1\n2\n")
	case strings.HasPrefix(r.URL.Path, "/api/users/"):
		fmt.Fprintf(w, `{"id":%q}`, strings.TrimPrefix(r.URL.Path, "/api/users/"))
	case r.URL.Path == "/reports/payroll":
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, "name,salary\nalice,1\nbob,2\n")
	case r.URL.Path == "/events":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := 0; i < 3; i++ {
			<-a.sse
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	default:
		io.WriteString(w, "ok")
	}
}

func newExportUpstream(t testing.TB) (*upstream, *exportApp) {
	t.Helper()
	app := &exportApp{sse: make(chan struct{})}
	u := &upstream{srv: httptest.NewServer(app), hitsFn: func() int64 { return 0 }}
	t.Cleanup(u.srv.Close)
	return u, app
}

// get fetches path from the gateway as a client at ip.
func (g *gateway) getFrom(path, ip string, h http.Header) reply {
	g.t.Helper()
	hh := http.Header{"X-Forwarded-For": {ip}}
	for k, v := range h {
		hh[k] = v
	}
	return g.do(http.MethodGet, path, nil, hh)
}

const dataGlobal = "store memory\n\t}\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict"

// TestBulkExportCountsExactly: bytes and rows of CSV and JSON exports are
// counted exactly as they stream, with and without compression, and a
// subject that passes a limit gets BULK_EXPORT with the figures.
func TestBulkExportCountsExactly(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			t.Parallel()
			up, _ := newExportUpstream(t)
			cfg := gatewayConfig{Global: dataGlobal, Upstream: up, Policy: `export /export/* {
			rows 1000 within 1h
			bytes 1GB within 1h
		}`}
			if gz {
				cfg.Site = "encode gzip"
			}
			g := startGateway(t, cfg)
			h := http.Header{}
			if gz {
				h.Set("Accept-Encoding", "gzip")
			}
			r := g.getFrom("/export/customers.csv?rows=1500", "198.51.100.20", h)
			body := r.Body
			if gz {
				if r.Header.Get("Content-Encoding") != "gzip" {
					t.Fatalf("encode gzip did not compress: %v", r.Header)
				}
				zr, err := gzip.NewReader(strings.NewReader(string(body)))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			evs := g.waitEvents(q("type", "BULK_EXPORT"), "BULK_EXPORT", func(evs []event) bool { return len(evs) == 1 })
			d := evs[0].Details
			if d["measure"] != "rows" || d["observed"] != float64(1500) || d["answer_rows"] != float64(1500) || d["answer_bytes"] != float64(len(body)) {
				t.Fatalf("want 1500 rows and %d bytes (uncompressed):\n%s", len(body), dumpEvents(evs))
			}
			if evs[0].IP != "198.51.100.20" || evs[0].Severity != "HIGH" {
				t.Fatalf("BULK_EXPORT: %s", dumpEvents(evs))
			}
		})
	}
}

// TestExportOverActions: throttle answers 429 once a limit is passed; cut
// ends the answer that crosses the cap, and the client sees a truncated
// transfer, not a complete one.
func TestExportOverActions(t *testing.T) {
	t.Parallel()
	up, _ := newExportUpstream(t)
	g := startGateway(t, gatewayConfig{Global: dataGlobal, Upstream: up, Policy: `export /export/orders.json {
			rows 100 within 1h
			over throttle
		}
		export /export/customers.csv {
			rows 5000 within 1h
			over cut
		}`})
	if r := g.getFrom("/export/orders.json?rows=150", "198.51.100.30", nil); r.Status != http.StatusOK {
		t.Fatalf("the first export: %s", r)
	}
	poll.Until(t, 5*time.Second, "the throttle", func() (bool, string) {
		r := g.getFrom("/export/orders.json?rows=1", "198.51.100.30", nil)
		return r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") != "", r.String()
	})
	if r := g.getFrom("/export/orders.json?rows=1", "198.51.100.31", nil); r.Status != http.StatusOK {
		t.Fatalf("another subject is not throttled: %s", r)
	}

	resp, err := http.Get(g.base + "/export/customers.csv?rows=200000")
	if err != nil {
		t.Fatal(err)
	}
	got, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if readErr == nil {
		t.Fatalf("a cut answer read as complete (%d bytes)", len(got))
	}
	if lines := strings.Count(string(got), "\n"); lines > 8000 {
		t.Fatalf("the cut came late: %d lines after a cap of 5000 rows", lines)
	}
	evs := g.waitEvents(q("type", "BULK_EXPORT", "ip", "127.0.0.1"), "the cut", func(evs []event) bool { return len(evs) == 1 })
	if evs[0].Details["cut"] != true {
		t.Fatalf("the event does not say the answer was cut:\n%s", dumpEvents(evs))
	}
}

// TestEnumeration: walking /api/users/1..300 is DATA_ACCESS_ANOMALY with
// kind enumeration; 30 ids are not.
func TestEnumeration(t *testing.T) {
	t.Parallel()
	up, _ := newExportUpstream(t)
	g := startGateway(t, gatewayConfig{Global: dataGlobal, Upstream: up, Policy: `enumeration /api/users/{id} 100 within 10m`})
	for i := 1; i <= 30; i++ {
		g.getFrom("/api/users/"+strconv.Itoa(i), "198.51.100.40", nil)
	}
	for i := 1; i <= 300; i++ {
		g.getFrom("/api/users/"+strconv.Itoa(i), "198.51.100.41", nil)
	}
	evs := g.waitEvents(q("type", "DATA_ACCESS_ANOMALY"), "the enumeration", func(evs []event) bool { return len(evs) >= 1 })
	if len(evs) != 1 || evs[0].IP != "198.51.100.41" || evs[0].Details["kind"] != "enumeration" {
		t.Fatalf("want one enumeration by the walker:\n%s", dumpEvents(evs))
	}
}

// TestSensitiveOffHours: every access to a sensitive route is recorded;
// the first access outside the configured hours is raised to HIGH.
func TestSensitiveOffHours(t *testing.T) {
	t.Parallel()
	up, _ := newExportUpstream(t)
	h := time.Now().UTC().Hour()
	hours := fmt.Sprintf("%02d-%02d", (h+2)%24, (h+4)%24) // now is outside
	g := startGateway(t, gatewayConfig{Global: dataGlobal, Upstream: up, Policy: "sensitive /reports/* {\n\t\t\thours " + hours + "\n\t\t}"})
	g.getFrom("/reports/payroll", "198.51.100.50", nil)
	g.getFrom("/reports/payroll", "198.51.100.50", nil)
	evs := g.waitEvents(q("type", "SENSITIVE_DATA_ACCESS"), "the accesses", func(evs []event) bool { return len(evs) == 2 })
	first, second := evs[1], evs[0] // newest first
	if first.Severity != "HIGH" || !containsAll(fmt.Sprint(first.Details["reasons"]), "first_access", "off_hours") {
		t.Fatalf("the first off-hours access:\n%s", dumpEvents(evs))
	}
	if second.Severity != "MEDIUM" || first.Details["bytes"] != float64(len("name,salary\nalice,1\nbob,2\n")) {
		t.Fatalf("the second off-hours access:\n%s", dumpEvents(evs))
	}
}

// TestStreamsPassUnchanged: an event stream through an export route
// reaches the client event by event, as the upstream flushes it; HEAD, a
// body shorter than its Content-Length and a broken CSV are counted
// without harm.
func TestStreamsPassUnchanged(t *testing.T) {
	t.Parallel()
	up, app := newExportUpstream(t)
	g := startGateway(t, gatewayConfig{Global: dataGlobal, Upstream: up, Policy: `export /events /export/* {
			rows 1 within 1h
			bytes 1B within 1h
		}`})
	resp, err := http.Get(g.base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		app.sse <- struct{}{} // the upstream sends one event and waits
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
	}
	resp.Body.Close()

	if r := g.do(http.MethodHead, "/export/customers.csv?rows=10", nil, nil); r.Status != http.StatusOK {
		t.Fatalf("HEAD: %s", r)
	}
	if _, err := http.Get(g.base + "/export/liar.csv"); err != nil {
		t.Fatal(err)
	}
	g.getFrom("/export/broken.csv", "198.51.100.60", nil)
	evs := g.waitEvents(q("type", "BULK_EXPORT", "ip", "198.51.100.60"), "the broken CSV", func(evs []event) bool { return len(evs) == 1 })
	if evs[0].Details["rows_error"] == nil {
		t.Fatalf("a broken CSV is counted in bytes with a note:\n%s", dumpEvents(evs))
	}
}

// TestLargeExportStreams: a large CSV (1 GB; 64 MB under the race
// detector) passes through the gateway intact (the client's SHA-256 is the
// upstream's), counted exactly, while the gateway's memory stays flat.
func TestLargeExportStreams(t *testing.T) {
	t.Parallel()
	rows := 11_600_000 // ≈ 1 GB
	if os.Getenv("VIGIL_CADDY_RACE") == "1" || testing.Short() {
		rows = 600_000
	}
	up, _ := newExportUpstream(t)
	g := startGateway(t, gatewayConfig{Global: dataGlobal, Upstream: up, Policy: `export /export/* {
			rows 1 within 1h
		}`})
	want := sha256.New()
	want.Write([]byte("id,name,note,email,country,amount,date,status,score,flag\n"))
	for i := 1; i <= rows; i++ {
		io.WriteString(want, csvRow(i))
	}
	before := g.peakRSS()
	resp, err := http.Get(g.base + "/export/customers.csv?rows=" + strconv.Itoa(rows))
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	if hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("the %d bytes the client got are not the upstream's", n)
	}
	evs := g.waitEvents(q("type", "BULK_EXPORT"), "the export", func(evs []event) bool { return len(evs) == 1 })
	if evs[0].Details["answer_rows"] != float64(rows) || evs[0].Details["answer_bytes"] != float64(n) {
		t.Fatalf("want %d rows and %d bytes:\n%s", rows, n, dumpEvents(evs))
	}
	if grew := g.peakRSS() - before; grew > 64<<20 {
		t.Fatalf("the gateway's peak RSS grew by %d MB streaming %d MB", grew>>20, n>>20)
	}
	t.Logf("%d MB streamed; peak RSS %d MB → %d MB", n>>20, before>>20, g.peakRSS()>>20)
}

// peakRSS is the gateway process's peak resident memory (VmHWM).
func (g *gateway) peakRSS() int64 {
	g.t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		g.t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	g.t.Fatal("no VmHWM in /proc status")
	return 0
}

// BenchmarkExportThroughput downloads a 100 MB CSV through the built
// gateway from a route with export accounting (bytes and rows counted as
// they stream) and from one without, interleaved, and reports MB/s of
// each: the cost of counting, as a client sees it.
//
//	go test ./integration -run XXX -bench ExportThroughput -benchtime 10x
func BenchmarkExportThroughput(b *testing.B) {
	up, _ := newExportUpstream(b)
	for _, c := range []struct{ name, policy string }{
		{"counted", "export /export/* {\n\t\t\trows 1 within 1h\n\t\t}"},
		{"uncounted", "export /other/* {\n\t\t\trows 1 within 1h\n\t\t}"},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchDownload(b, up, c.policy)
		})
	}
}

func benchDownload(b *testing.B, up *upstream, policy string) {
	g := startGateway(b, gatewayConfig{Global: dataGlobal, Upstream: up, Policy: policy})
	const rows = 1_150_000 // ≈ 100 MB
	url := g.base + "/export/customers.csv?rows=" + strconv.Itoa(rows)
	var n int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(n)
}
