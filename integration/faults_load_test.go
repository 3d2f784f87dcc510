package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The load generator of the fault tests: a bounded number of Go workers on
// loopback sending non-login GETs through a gateway (closed loop, each
// pausing loadPace between requests), and a login form sent every
// loginEvery (open loop). Every request's outcome is kept.
//
// The client is net/http's Transport with keep-alives for the GETs. It
// retries a request on its own only when the request is replayable (a GET
// without a body is) and it was sent on a reused keep-alive connection that
// failed before any byte of a response came back: the connection the
// server closed while it sat idle (a reload shuts the old server down).
// That is what every HTTP/1.1 client with a connection pool does. Logins
// are POSTs, which no client may replay, so they go on a fresh connection
// each (keep-alives off): there is no idle connection for a reload to close
// under them, and a login that fails counts as failed.

const (
	loadWorkers = 8
	loadPace    = 4 * time.Millisecond // each worker's pause between requests
	loginEvery  = 100 * time.Millisecond
	loadPath    = "/healthz"
)

// outcome is one request as the client saw it.
type outcome struct {
	at     time.Time // when it was sent
	lat    time.Duration
	status int
	err    error
	login  bool
	user   string // the login's username
}

// failed is a transport error or a 5xx.
func (o outcome) failed() bool { return o.err != nil || o.status >= 500 }

type loadGen struct {
	g     *gateway
	get   *http.Client
	post  *http.Client
	phase atomic.Value // string: the prefix of the next login's username
	stop  chan struct{}
	wg    sync.WaitGroup
	n     atomic.Int64

	mu   sync.Mutex
	outs []outcome
}

// startLoad starts the workers and the login loop; stopLoad ends them.
func startLoad(t *testing.T, g *gateway, logins bool) *loadGen {
	t.Helper()
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	l := &loadGen{
		g: g,
		get: &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirect,
			Transport: &http.Transport{MaxIdleConnsPerHost: loadWorkers, IdleConnTimeout: 30 * time.Second}},
		post: &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirect,
			Transport: &http.Transport{DisableKeepAlives: true}},
		stop: make(chan struct{}),
	}
	l.phase.Store("pre")
	for i := 0; i < loadWorkers; i++ {
		l.wg.Add(1)
		go l.worker()
	}
	if logins {
		l.wg.Add(1)
		go l.loginLoop()
	}
	t.Cleanup(l.stopLoad)
	return l
}

func (l *loadGen) stopLoad() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	l.wg.Wait()
	l.get.CloseIdleConnections()
}

func (l *loadGen) record(o outcome) {
	l.n.Add(1)
	l.mu.Lock()
	l.outs = append(l.outs, o)
	l.mu.Unlock()
}

func (l *loadGen) worker() {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		start := time.Now()
		o := outcome{at: start}
		resp, err := l.get.Get(l.g.base + loadPath)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			o.status = resp.StatusCode
		}
		o.err, o.lat = err, time.Since(start)
		l.record(o)
		time.Sleep(loadPace)
	}
}

func (l *loadGen) loginLoop() {
	defer l.wg.Done()
	tick := time.NewTicker(loginEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		// open loop: a login slower than loginEvery does not hold the next
		// one back, so a stalled store shows as logins in flight
		user := fmt.Sprintf("%s-%d", l.phase.Load().(string), i)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.record(l.login(user))
		}()
	}
}

// login sends one failed form login and times it.
func (l *loadGen) login(user string) outcome {
	body := url.Values{"username": {user}, "password": {"x"}}.Encode()
	start := time.Now()
	o := outcome{at: start, login: true, user: user}
	resp, err := l.post.Post(l.g.base+"/login", "application/x-www-form-urlencoded", strings.NewReader(body))
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o.status = resp.StatusCode
	}
	o.err, o.lat = err, time.Since(start)
	return o
}

// outcomes returns the outcomes of requests sent in [from, to) (zero
// times: unbounded), logins or not.
func (l *loadGen) outcomes(from, to time.Time, login bool) []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []outcome
	for _, o := range l.outs {
		if o.login == login && !o.at.Before(from) && (to.IsZero() || o.at.Before(to)) {
			out = append(out, o)
		}
	}
	return out
}

// waitRequests waits until n more requests have completed: the load goes
// on for a while without a fixed sleep.
func (l *loadGen) waitRequests(t *testing.T, n int64) {
	t.Helper()
	target := l.n.Load() + n
	for l.n.Load() < target {
		select {
		case <-l.stop:
			t.Fatal("load stopped")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stats are the latency figures of a set of outcomes.
type stats struct {
	n, failed     int
	p50, p99, max time.Duration
	firstFailure  string
}

func statsOf(outs []outcome) stats {
	s := stats{n: len(outs)}
	lats := make([]time.Duration, 0, len(outs))
	for _, o := range outs {
		lats = append(lats, o.lat)
		if o.failed() {
			if s.failed == 0 {
				s.firstFailure = fmt.Sprintf("status %d, error %v, at %s", o.status, o.err, o.at.Format("15:04:05.000"))
			}
			s.failed++
		}
	}
	if len(lats) == 0 {
		return s
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	s.p50, s.p99, s.max = pct(0.50), pct(0.99), lats[len(lats)-1]
	return s
}

func (s stats) String() string {
	return fmt.Sprintf("%d requests, %d failed, p50 %s, p99 %s, max %s", s.n, s.failed,
		s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.max.Round(10*time.Microsecond))
}

// goroutines reads go_goroutines from the gateway's metrics endpoint.
func (g *gateway) goroutines() float64 {
	g.t.Helper()
	v, ok := metricValue(g.scrape(), "go_goroutines", "")
	if !ok {
		g.t.Fatal("no go_goroutines in /metrics")
	}
	return v
}

// childRedisPID finds the redis-server a test started on port: a child of
// this process (so never the shared Redis) whose command line names it.
func childRedisPID(t *testing.T, port int) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !redisOnPort(string(cmdline), port) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so split after ')'
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no redis-server child of this process on port %d", port)
	return 0
}

// redisOnPort tells whether a command line is redis-server's on port: as
// started ("redis-server --port N …") or as it renames itself
// ("redis-server 127.0.0.1:N").
func redisOnPort(cmdline string, port int) bool {
	f := strings.FieldsFunc(cmdline, func(r rune) bool { return r == 0 || r == ' ' })
	if len(f) == 0 || filepath.Base(f[0]) != "redis-server" {
		return false
	}
	for i, a := range f {
		if a == "127.0.0.1:"+strconv.Itoa(port) || (a == "--port" && i+1 < len(f) && f[i+1] == strconv.Itoa(port)) {
			return true
		}
	}
	return false
}

func signalPID(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("kill -%d %d: %v", sig, pid, err)
	}
}

// delayProxy is a loopback TCP proxy to Redis that holds every chunk of
// bytes for its delay in each direction (a delay line, not a throttle:
// chunks in flight overlap), like a network with that one-way latency.
type delayProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64 // nanoseconds, each way

	mu    sync.Mutex
	conns []net.Conn
}

func startDelayProxy(t *testing.T, target string) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *delayProxy) addr() string { return p.ln.Addr().String() }

func (p *delayProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		r, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, r)
		p.mu.Unlock()
		go p.pipe(r, c)
		go p.pipe(c, r)
	}
}

// pipe copies src to dst, each chunk written its delay after it was read.
func (p *delayProxy) pipe(dst, src net.Conn) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(time.Duration(p.delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	broken := false
	for c := range ch {
		if broken {
			continue // drain, so the reader never blocks
		}
		if w := time.Until(c.due); w > 0 {
			time.Sleep(w)
		}
		if _, err := dst.Write(c.b); err != nil {
			broken = true
			src.Close()
		}
	}
	dst.Close()
}
