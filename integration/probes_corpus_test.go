package integration

// The probe corpus (detect/probes/testdata/corpus) replayed against the
// built gateway over loopback, in real time: scanner runs recorded from
// real tools, sources emulating CrowdSec's scenario families, and benign
// visitors (page loads with their assets, API clients with many 404s,
// cross-site embeds of a honeypot, an office behind NAT). Each source
// speaks from its own loopback address (127.0.0.x), so the gateway sees it
// as its own client. Benign sources must never be refused by the gateway;
// every scanner source must be, and blocked.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// probeWindow is how much of each source's timeline is replayed.
const probeWindow = 20 * time.Second

type probeReq struct {
	at                   time.Duration
	method, target       string
	status               int
	site, mode, dest, ua string
}

type probeSource struct {
	id   string
	reqs []probeReq
}

// loadProbeCorpus reads the corpus files (format: detect/probes/testdata/README.md).
func loadProbeCorpus(t *testing.T) map[string]*probeSource {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "detect", "probes", "testdata", "corpus", "*.tsv"))
	if len(files) == 0 {
		t.Fatal("no probe corpus files")
	}
	out := map[string]*probeSource{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || line[0] == '#' {
				continue
			}
			fs := strings.Split(line, "\t")
			if len(fs) != 9 {
				t.Fatalf("%s: bad line %q", name, line)
			}
			sec, err1 := strconv.ParseFloat(fs[1], 64)
			status, err2 := strconv.Atoi(fs[4])
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: bad line %q", name, line)
			}
			dash := func(s string) string {
				if s == "-" {
					return ""
				}
				return s
			}
			s := out[fs[0]]
			if s == nil {
				s = &probeSource{id: fs[0]}
				out[fs[0]] = s
			}
			s.reqs = append(s.reqs, probeReq{time.Duration(sec * float64(time.Second)), fs[2], fs[3], status, dash(fs[5]), dash(fs[6]), dash(fs[7]), dash(fs[8])})
		}
		_ = f.Close()
	}
	return out
}

// replayUpstream answers each request with the status the corpus recorded
// (sent along in X-Replay-Status) and marks its answers, so that a 403 of
// the gateway is told apart from one of the app.
func replayUpstream(t *testing.T) *upstream {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if s, err := strconv.Atoi(r.Header.Get("X-Replay-Status")); err == nil {
			status = s
		}
		w.Header().Set("X-Replay-App", "1")
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return &upstream{srv: srv}
}

// probeOutcome is what one source saw.
type probeOutcome struct {
	sent, refused int
	firstRefusal  int // 1-based index of the first gateway refusal; 0: none
	errs          int
}

// replaySource sends a source's requests within the window at their
// recorded times, from its own loopback address, until the gateway blocks
// it (a scanner gets nothing more once blocked; the rest is not sent).
func replaySource(ctx context.Context, g *gateway, s *probeSource, from net.IP, start time.Time) probeOutcome {
	tr := &http.Transport{
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:    2,
		IdleConnTimeout: 5 * time.Second,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var o probeOutcome
	first := s.reqs[0].at // an office's first user may come late
	for _, r := range s.reqs {
		if r.at-first > probeWindow {
			break
		}
		if d := time.Until(start.Add(r.at - first)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return o
			}
		}
		req, err := http.NewRequestWithContext(ctx, r.method, g.base+r.target, nil)
		if err != nil {
			o.errs++
			continue
		}
		for k, v := range map[string]string{"User-Agent": r.ua, "Sec-Fetch-Site": r.site, "Sec-Fetch-Mode": r.mode, "Sec-Fetch-Dest": r.dest} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		if r.ua == "" {
			req.Header["User-Agent"] = nil // as recorded: none
		}
		req.Header.Set("X-Replay-Status", strconv.Itoa(r.status))
		resp, err := client.Do(req)
		if err != nil {
			o.errs++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o.sent++
		if resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-Replay-App") == "" {
			o.refused++
			if o.firstRefusal == 0 {
				o.firstRefusal = o.sent
			}
			return o
		}
	}
	return o
}

// probeSelection picks the replayed sources: benign ones of every kind,
// and per scanner family the first source whose whole run fits the window.
func probeSelection(t *testing.T, all map[string]*probeSource) (benign, scanners []*probeSource) {
	for _, id := range []string{
		"benign/visitor-01", "benign/visitor-02", "benign/visitor-03", "benign/visitor-04", "benign/visitor-05",
		"benign/searcher-01", "benign/downloader-01", "benign/downloader-02", "benign/api-client-01", "benign/api-client-02",
		"benign/cross-site-embed-01", "benign/cross-site-embed-02", "benign/cross-site-embed-03", "benign/cross-site-embed-04",
		"benign/office-nat-1", "benign/broken-spa-01", "benign/bookmarks-01", "benign/curious-02", "benign/xss-demo-link-01",
	} {
		s := all[id]
		if s == nil {
			t.Fatalf("corpus has no source %s", id)
		}
		benign = append(benign, s)
	}
	for _, id := range []string{"tool/gobuster-browser-agent", "tool/ffuf-css-suffix", "tool/dirb-default", "tool/sqlmap-random-agent", "tool/sqlmap-own-agent"} {
		if all[id] == nil {
			t.Fatalf("corpus has no source %s", id)
		}
		scanners = append(scanners, all[id])
	}
	for _, fam := range []string{"admin", "cve", "wordpress", "traversal", "sensitive", "probing", "sqli", "xss", "badagent"} {
		var pick *probeSource
		for i := 1; i <= 99 && pick == nil; i++ {
			s := all[fmt.Sprintf("crowdsec/%s-%02d", fam, i)]
			if s == nil {
				continue
			}
			// the whole run inside half the window; a bad agent is banned
			// on its second request at the latest
			last := s.reqs[len(s.reqs)-1].at
			if fam == "badagent" && len(s.reqs) > 1 {
				last = s.reqs[1].at
			}
			if last <= probeWindow/2 {
				pick = s
			}
		}
		if pick == nil {
			t.Fatalf("no crowdsec/%s source fits the window", fam)
		}
		scanners = append(scanners, pick)
	}
	return benign, scanners
}

// TestProbeCorpusThroughGateway: benign sources are never refused, every
// scanner source is refused and blocked, against the real gateway with the
// memory store and with Redis.
func TestProbeCorpusThroughGateway(t *testing.T) {
	t.Parallel()
	all := loadProbeCorpus(t)
	benign, scanners := probeSelection(t, all)
	eachStore(t, func(t *testing.T, st storeCase) {
		g := startGateway(t, gatewayConfig{Global: st.global, Policy: "site shop\n\t\thoneypot /wp-admin*", Upstream: replayUpstream(t)})
		sources := append(append([]*probeSource(nil), benign...), scanners...)
		outcomes := make([]probeOutcome, len(sources))
		ctx, cancel := context.WithTimeout(context.Background(), probeWindow+30*time.Second)
		defer cancel()
		start := time.Now().Add(200 * time.Millisecond)
		var wg sync.WaitGroup
		for i, s := range sources {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outcomes[i] = replaySource(ctx, g, s, net.IPv4(127, 0, 0, byte(2+i)), start)
			}()
		}
		wg.Wait()

		var report strings.Builder
		for i, s := range sources {
			o := outcomes[i]
			fmt.Fprintf(&report, "  %-32s 127.0.0.%-3d sent %3d, refused at %d, errors %d\n", s.id, 2+i, o.sent, o.firstRefusal, o.errs)
			isBenign := strings.HasPrefix(s.id, "benign/")
			switch {
			case o.errs > 0:
				t.Errorf("%s: %d requests failed", s.id, o.errs)
			case isBenign && o.refused > 0:
				t.Errorf("benign %s refused by the gateway at its request %d", s.id, o.firstRefusal)
			case !isBenign && o.refused == 0:
				t.Errorf("scanner %s (%d requests) never refused", s.id, o.sent)
			case !isBenign:
				g.mustDecision("block", fmt.Sprintf("127.0.0.%d", 2+i))
			}
		}
		t.Logf("replay of %d benign and %d scanner sources (%s):\n%s", len(benign), len(scanners), st.name, report.String())
		// the cross-site embeds of the honeypot were recorded, not blocked
		evs := g.waitEvents(q("type", "SYSTEM_INTRUSION"), "a cross-site honeypot hit", func(evs []event) bool {
			for _, e := range evs {
				if e.Details["cross_site"] == true {
					return true
				}
			}
			return false
		})
		for _, e := range evs {
			if e.Details["cross_site"] == true && (e.Severity != "LOW" || e.Details["kind"] != "honeypot") {
				t.Fatalf("cross-site honeypot event: %+v", e)
			}
		}
	})
}
