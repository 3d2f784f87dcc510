package probes

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/internal/store"
)

// corpusReq is one line of the corpus (testdata/README.md).
type corpusReq struct {
	t                    float64
	method, target       string
	status               int
	site, mode, dest, ua string
}

// corpusSource is one client: a tool run, an emulated scanner, a visitor,
// an office behind NAT.
type corpusSource struct {
	id, family string
	benign     bool
	reqs       []corpusReq
}

// loadCorpus reads every testdata/corpus/*.tsv file.
func loadCorpus(tb testing.TB) []*corpusSource {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.tsv"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no corpus files: %v", err)
	}
	sort.Strings(files)
	byID := map[string]*corpusSource{}
	var sources []*corpusSource
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			if text == "" || text[0] == '#' {
				continue
			}
			r, id, err := parseCorpusLine(text)
			if err != nil {
				tb.Fatalf("%s:%d: %v", name, line, err)
			}
			s := byID[id]
			if s == nil {
				s = &corpusSource{id: id, family: corpusFamily(id), benign: strings.HasPrefix(id, "benign/")}
				byID[id] = s
				sources = append(sources, s)
			}
			s.reqs = append(s.reqs, r)
		}
		_ = f.Close()
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	return sources
}

func parseCorpusLine(text string) (corpusReq, string, error) {
	fs := strings.Split(text, "\t")
	if len(fs) != 9 {
		return corpusReq{}, "", fmt.Errorf("%d fields, want 9", len(fs))
	}
	t, err := strconv.ParseFloat(fs[1], 64)
	if err != nil {
		return corpusReq{}, "", err
	}
	status, err := strconv.Atoi(fs[4])
	if err != nil {
		return corpusReq{}, "", err
	}
	dash := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	return corpusReq{t: t, method: fs[2], target: fs[3], status: status,
		site: dash(fs[5]), mode: dash(fs[6]), dest: dash(fs[7]), ua: dash(fs[8])}, fs[0], nil
}

// corpusFamily is a source id without its number, and a tool run's id
// without its settings: "crowdsec/admin-07", "benign/office-nat-2" and
// "tool/gobuster-slow" are "crowdsec/admin", "benign/office-nat" and
// "tool/gobuster".
func corpusFamily(id string) string {
	if strings.HasPrefix(id, "tool/") {
		if j := strings.IndexByte(id[5:], '-'); j >= 0 {
			return id[:5+j]
		}
		return id
	}
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		if _, err := strconv.Atoi(id[i+1:]); err == nil {
			return id[:i]
		}
	}
	return id
}

// corpusActor stands in for the responder: a BlockAddress finding blocks
// the net for an hour, and the replay skips the requests of a blocked net
// as the decision check in front of the probes would.
type corpusActor struct {
	mu       sync.Mutex
	blocked  map[string]time.Time
	findings []detect.Finding
}

func (a *corpusActor) Act(_ context.Context, f detect.Finding) detect.Outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.findings = append(a.findings, f)
	if f.Action != detect.BlockAddress {
		return detect.Outcome{}
	}
	until := f.Time.Add(time.Hour)
	a.blocked[f.Target] = until
	return detect.Outcome{Enforced: true, Fresh: true, Strike: 1, Until: until}
}

func (a *corpusActor) isBlocked(net string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.blocked[net]
	return ok && now.Before(until)
}

// replayResult says, per source, after how many of its requests it was
// banned (0: never), and holds every finding.
type replayResult struct {
	bannedAfter map[*corpusSource]int
	findings    []detect.Finding
	nets        map[string]*corpusSource
	peaks       *peakBuckets
}

// peakBuckets records, per bucket, the highest level a pour reached as a
// fraction of the capacity: how close each source came to a ban.
type peakBuckets struct {
	detect.Buckets
	mu   sync.Mutex
	peak map[string]float64 // kind + " " + key
}

func (p *peakBuckets) Pour(ctx context.Context, b detect.Bucket, key string, d detect.Drop, now time.Time) (float64, bool, error) {
	level, over, err := p.Buckets.Pour(ctx, b, key, d, now)
	if err == nil && b.Capacity > 0 {
		p.mu.Lock()
		k := string(b.Kind) + " " + key
		p.peak[k] = max(p.peak[k], level/b.Capacity)
		p.mu.Unlock()
	}
	return level, over, err
}

// corpusAddr gives source i an address of its own: IPv4 from 198.18/15,
// every fifth an IPv6 /64 of its own.
func corpusAddr(i int) netip.Addr {
	if i%5 == 4 {
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:%x:%x::%x", i/65536, i%65536, 1+i%200))
	}
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

// replay runs the corpus through a detector with a memory store on a
// synthetic clock: the sources start spread over two hours, and their
// requests are replayed in time order, checks before the answer, the
// answer observed (its background work waited for, so runs agree).
func replay(tb testing.TB, sources []*corpusSource, opt Options) replayResult {
	tb.Helper()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	type event struct {
		at  time.Time
		src *corpusSource
		r   corpusReq
		ip  netip.Addr
		n   int // index of the request in its source, from 1
	}
	var evs []event
	res := replayResult{bannedAfter: map[*corpusSource]int{}, nets: map[string]*corpusSource{}}
	for i, s := range sources {
		ip := corpusAddr(i)
		res.nets[detect.ClientNet(ip)] = s
		start := base.Add(time.Duration(i*37%7200) * time.Second)
		for j, r := range s.reqs {
			evs = append(evs, event{start.Add(time.Duration(r.t * float64(time.Second))), s, r, ip, j + 1})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })

	actor := &corpusActor{blocked: map[string]time.Time{}}
	res.peaks = &peakBuckets{Buckets: store.NewMemoryBuckets(nil), peak: map[string]float64{}}
	opt.Buckets, opt.Actor, opt.Pool = res.peaks, actor, detect.NewPool(4, nil)
	opt.Ban = detect.Ban{Failures: 1, Within: time.Second, Base: time.Hour}
	d := New(opt)
	for _, e := range evs {
		net := detect.ClientNet(e.ip)
		if actor.isBlocked(net, e.at) {
			continue
		}
		hr := httptest.NewRequest(e.r.method, e.r.target, nil)
		for k, v := range map[string]string{"User-Agent": e.r.ua, "Sec-Fetch-Site": e.r.site, "Sec-Fetch-Mode": e.r.mode, "Sec-Fetch-Dest": e.r.dest} {
			if v != "" {
				hr.Header.Set(k, v)
			}
		}
		req := &detect.Request{HTTP: hr, IP: e.ip, Start: e.at}
		if d.Check(req) == nil {
			d.Observe(req, detect.Answer{Status: e.r.status, Time: e.at})
			opt.Pool.Wait()
		}
		if _, done := res.bannedAfter[e.src]; !done && actor.isBlocked(net, e.at) {
			res.bannedAfter[e.src] = e.n
		}
	}
	res.findings = actor.findings
	return res
}

// defaultOptions are the detectors as a site gets them by default.
func defaultOptions() Options {
	return Options{SensitiveFiles: true, Signatures: true, ScannerAgents: true, ProbePaths: true, ScanPaths: 10, ScanWithin: time.Minute}
}

// TestCorpus replays recorded scanner runs, sources emulating CrowdSec's
// HTTP scenario families and benign browsing: at least 90 % of the
// scanner sources must be banned and no benign one.
func TestCorpus(t *testing.T) {
	sources := loadCorpus(t)
	res := replay(t, sources, defaultOptions())

	type tally struct {
		sources, banned int
		after           []int
	}
	fams := map[string]*tally{}
	var scanners, scannersBanned, benign, benignBanned int
	for _, s := range sources {
		ft := fams[s.family]
		if ft == nil {
			ft = &tally{}
			fams[s.family] = ft
		}
		ft.sources++
		n, banned := res.bannedAfter[s]
		if banned {
			ft.banned++
			ft.after = append(ft.after, n)
		}
		switch {
		case s.benign && banned:
			benign++
			benignBanned++
			t.Errorf("benign source %s banned after %d of its %d requests", s.id, n, len(s.reqs))
		case s.benign:
			benign++
		default:
			scanners++
			if banned {
				scannersBanned++
			} else {
				t.Logf("scanner source %s (%d requests) not banned", s.id, len(s.reqs))
			}
		}
	}
	names := make([]string, 0, len(fams))
	for f := range fams {
		names = append(names, f)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s %7s %6s %6s  %s\n", "family", "sources", "banned", "%", "requests until the ban (median, max)")
	for _, f := range names {
		ft := fams[f]
		sort.Ints(ft.after)
		until := "-"
		if len(ft.after) > 0 {
			until = fmt.Sprintf("%d, %d", ft.after[len(ft.after)/2], ft.after[len(ft.after)-1])
		}
		fmt.Fprintf(&b, "%-28s %7d %6d %5.0f%%  %s\n", f, ft.sources, ft.banned, 100*float64(ft.banned)/float64(ft.sources), until)
	}
	rate := float64(scannersBanned) / float64(scanners)
	fmt.Fprintf(&b, "scanner sources: %d of %d banned (%.1f %%); benign sources: %d of %d banned",
		scannersBanned, scanners, 100*rate, benignBanned, benign)
	t.Logf("corpus figures:\n%s", b.String())
	if rate < 0.9 {
		t.Errorf("%.1f %% of the scanner sources banned, want at least 90 %%", 100*rate)
	}
	byKind := map[string]int{}
	for _, f := range res.findings {
		byKind[fmt.Sprint(f.Details["kind"])]++
	}
	t.Logf("findings by kind: %v", byKind)

	// how close the benign sources came: their fullest buckets
	byKey := map[string]*corpusSource{}
	for net, s := range res.nets {
		byKey[detect.HashID("ip", net)] = s
	}
	type peak struct {
		src    *corpusSource
		bucket string
		level  float64
	}
	var peaks []peak
	for k, v := range res.peaks.peak {
		kind, key, _ := strings.Cut(k, " ")
		if s := byKey[key]; s != nil && s.benign {
			peaks = append(peaks, peak{s, kind, v})
		}
	}
	sort.Slice(peaks, func(i, j int) bool { return peaks[i].level > peaks[j].level })
	var p strings.Builder
	seen := map[string]bool{}
	for _, pk := range peaks {
		if !seen[pk.bucket] {
			seen[pk.bucket] = true
			fmt.Fprintf(&p, "  %-10s %3.0f%% of capacity (%s)\n", pk.bucket, 100*pk.level, pk.src.id)
		}
	}
	t.Logf("the fullest bucket of each kind among benign sources (a ban needs more than 100 %%):\n%s", p.String())
}

// TestCorpusCrossSiteHoneypot: with a honeypot on /wp-admin*, the
// cross-site embeds of /wp-admin/x.png are recorded (cross_site, no
// block) and still nobody benign is banned.
func TestCorpusCrossSiteHoneypot(t *testing.T) {
	sources := loadCorpus(t)
	opt := defaultOptions()
	opt.Honeypot = prefixMatcher{"/wp-admin"}
	res := replay(t, sources, opt)
	crossSite := 0
	for _, f := range res.findings {
		if f.Details["cross_site"] == true {
			crossSite++
			if f.Action != detect.NoAction || f.Severity != detect.Low || !res.nets[f.Facts.Net].benign {
				t.Fatalf("cross-site honeypot finding: %+v", f)
			}
		}
	}
	if crossSite == 0 {
		t.Fatal("no cross-site honeypot hit recorded")
	}
	// a visitor who types a honeypot path in the address bar is banned:
	// that is what a honeypot is for; nobody else benign is
	walkedIn := map[*corpusSource]bool{}
	for _, f := range res.findings {
		if f.Details["kind"] == "honeypot" && f.Details["cross_site"] == nil {
			walkedIn[res.nets[f.Facts.Net]] = true
		}
	}
	for s, n := range res.bannedAfter {
		if s.benign && (!walkedIn[s] || s.family == "benign/cross-site-embed") {
			t.Errorf("benign source %s banned after %d requests", s.id, n)
		}
	}
	t.Logf("%d cross-site honeypot hits recorded, none blocked", crossSite)
}
