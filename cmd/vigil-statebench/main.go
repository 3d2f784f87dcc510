// Command vigil-statebench measures what a flood of distinct attackers
// costs Vigil's state: N distinct addresses, each failing one login on a
// username of its own, counted with a typical login policy's windows
// (lockout 5 within 15m, block_ip 50 within 10m, stuffing 20 within 10m).
// It reports the keys held, the evictions, the Go heap, the process RSS
// and the bytes per key for the memory store, then the same flood against
// Redis (used_memory, bytes per key, and a sample of keys checked for a
// TTL). The figures are published in docs/bounds.md.
//
//	go run ./cmd/vigil-statebench -n 1000000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/login"
	"github.com/vigilsec/vigil/internal/store"
	"github.com/vigilsec/vigil/respond"
)

func main() {
	n := flag.Int("n", 1_000_000, "distinct attacking addresses (one distinct username each)")
	decisions := flag.Int("decisions", 200_000, "distinct automatic blocks imposed on the memory store (0: skip)")
	redisN := flag.Int("redis-n", -1, "attackers sent to Redis (-1: same as -n, 0: skip Redis)")
	addr := flag.String("redis", "", "a Redis to use (empty: start a private redis-server)")
	workers := flag.Int("workers", 16, "concurrent Redis clients")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *redisN < 0 {
		*redisN = *n
	}
	fmt.Printf("vigil-statebench: %d CPUs, %s, GOMAXPROCS %d\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOMAXPROCS(0))
	memoryCounters(*n)
	if *decisions > 0 {
		memoryDecisions(*decisions)
	}
	if *redisN > 0 {
		if err := redisCounters(*addr, *redisN, *workers); err != nil {
			fmt.Fprintln(os.Stderr, "redis:", err)
			os.Exit(1)
		}
	}
}

// policyWindows are the counter windows of the typical policy.
func policyWindows() detect.LoginWindows {
	return login.Policy{
		Lockout:          detect.Ban{Failures: 5, Within: 15 * time.Minute, Base: 15 * time.Minute},
		BlockIP:          detect.Ban{Failures: 50, Within: 10 * time.Minute, Base: time.Hour},
		StuffingAccounts: 20, StuffingWithin: 10 * time.Minute,
	}.Windows()
}

// attacker i: an address of 10.0.0.0/8 (16 M of them) and a username.
func attacker(i int) detect.LoginKeys {
	a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return detect.KeysFor("user"+strconv.Itoa(i), a.String())
}

// attackAt spaces the attempts 100 µs apart (10,000 a second): the whole
// flood stays inside every window, the worst case for the bounds.
func attackAt(base time.Time, i int) time.Time {
	return base.Add(time.Duration(i) * 100 * time.Microsecond)
}

// evictions counts what the store reports, by state.
type evictions struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *evictions) hooks() respond.Hooks {
	e.m = map[string]int{}
	return respond.Hooks{Evicted: func(state string, n int) {
		e.mu.Lock()
		e.m[state] += n
		e.mu.Unlock()
	}}
}

func (e *evictions) get(state string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[state]
}

// memoryCounters floods the memory store's login counter.
func memoryCounters(n int) {
	var ev evictions
	st := respond.NewMemoryStore(respond.MemoryOptions{}, ev.hooks())
	defer st.Close()
	counter := st.Counter.(*store.MemoryCounter)
	w, ctx, base := policyWindows(), context.Background(), time.Now()
	heap0, rss0 := heapInuse(), procKB("VmRSS")
	start := time.Now()
	peakHeap := uint64(0)
	for i := 0; i < n; i++ {
		if _, _, err := counter.Reserve(ctx, attacker(i), w, attackAt(base, i)); err != nil {
			fmt.Fprintln(os.Stderr, "reserve:", err)
			os.Exit(1)
		}
		if i%50_000 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
	}
	took := time.Since(start)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peakHeap = max(peakHeap, ms.HeapInuse)
	keys := counter.Len()
	heap1, rss1 := heapInuse(), procKB("VmRSS")
	fmt.Printf("memory store, login counters: %d attackers (4 counters each: account, address, pair, address's accounts) in %v\n", n, took.Round(time.Millisecond))
	fmt.Printf("  counters held      %d (bound 1,000,000)\n", keys)
	fmt.Printf("  evictions          %d (label counters)\n", ev.get(respond.StateCounters))
	fmt.Printf("  Go heap in use     %s before, %s after GC, %s peak (sampled before GC)\n", mb(heap0), mb(heap1), mb(peakHeap))
	fmt.Printf("  process RSS        %s before, %s after, %s peak (VmHWM)\n", mb(rss0*1024), mb(rss1*1024), mb(procKB("VmHWM")*1024))
	if keys > 0 {
		fmt.Printf("  bytes per counter  %d (heap growth / counters held)\n\n", int64(heap1-heap0)/int64(keys))
	}
	runtime.KeepAlive(st)
}

// memoryDecisions imposes n distinct automatic blocks on the memory store:
// the decision cache and the strike book hold their bounds.
func memoryDecisions(n int) {
	var ev evictions
	st := respond.NewMemoryStore(respond.MemoryOptions{}, ev.hooks())
	defer st.Close()
	ctx, base := context.Background(), time.Now()
	heap0 := heapInuse()
	start := time.Now()
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		d := respond.Decision{Kind: respond.Block, Target: a.String(), Reason: "failed_logins", Source: "auto", Site: "example.com"}
		// later blocks run longer, as doubling would make them
		if _, _, err := st.Decisions.Impose(ctx, d, time.Hour+time.Duration(i)*time.Millisecond, 24*time.Hour, attackAt(base, i)); err != nil {
			fmt.Fprintln(os.Stderr, "impose:", err)
			os.Exit(1)
		}
	}
	took := time.Since(start)
	held := len(st.Cache.List(attackAt(base, n)))
	heap1 := heapInuse()
	fmt.Printf("memory store, decisions: %d distinct automatic blocks in %v\n", n, took.Round(time.Millisecond))
	fmt.Printf("  blocks held        %d (bound %d per kind)\n", held, respond.DefaultMaxDecisions)
	fmt.Printf("  evictions          %d decisions, %d strikes\n", ev.get(respond.StateDecisions), ev.get(respond.StateStrikes))
	fmt.Printf("  Go heap in use     %s before, %s after GC\n", mb(heap0), mb(heap1))
	if held > 0 {
		fmt.Printf("  bytes per block    %d (heap growth / blocks held, strike records included)\n\n", int64(heap1-heap0)/int64(held))
	}
	runtime.KeepAlive(st)
}

// redisCounters sends the same flood to Redis through store.RedisCounter.
func redisCounters(addr string, n, workers int) error {
	private := addr == ""
	if private {
		srv, err := startRedis()
		if err != nil {
			return err
		}
		defer srv.stop()
		addr = srv.addr
	}
	client := redis.NewClient(&redis.Options{Addr: addr, PoolSize: workers})
	defer client.Close()
	ctx := context.Background()
	prefix := "vigilbench:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	used0, err := redisMemory(ctx, client, "used_memory")
	if err != nil {
		return err
	}
	counter := store.NewRedisCounter(store.NewKeyspace(client, prefix))
	w, base := policyWindows(), time.Now()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if _, _, err := counter.Reserve(ctx, attacker(i), w, attackAt(base, i)); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	used1, err := redisMemory(ctx, client, "used_memory")
	if err != nil {
		return err
	}
	rss, _ := redisMemory(ctx, client, "used_memory_rss")
	keys, sampled, noTTL, err := countKeys(ctx, client, prefix, private)
	if err != nil {
		return err
	}
	fmt.Printf("redis, login counters: %d attackers in %v (%d workers, %d failed)\n", n, took.Round(time.Millisecond), workers, failed.Load())
	fmt.Printf("  keys               %d\n", keys)
	fmt.Printf("  used_memory        %s before, %s after (used_memory_rss %s)\n", mb(used0), mb(used1), mb(rss))
	if keys > 0 {
		fmt.Printf("  bytes per key      %d\n", int64(used1-used0)/keys)
	}
	fmt.Printf("  TTL                %d of %d sampled keys without one\n", noTTL, sampled)
	if !private {
		deleteKeys(ctx, client, prefix)
	}
	if noTTL > 0 {
		return fmt.Errorf("%d keys without a TTL", noTTL)
	}
	return nil
}

// countKeys counts the prefix's keys (DBSIZE on a private server) and checks
// up to 10,000 of them for a TTL.
func countKeys(ctx context.Context, c *redis.Client, prefix string, private bool) (keys int64, sampled, noTTL int, err error) {
	var sample []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys++
		if len(sample) < 10_000 {
			sample = append(sample, iter.Val())
		} else if private {
			break
		}
	}
	if err := iter.Err(); err != nil {
		return 0, 0, 0, err
	}
	if private {
		if keys, err = c.DBSize(ctx).Result(); err != nil {
			return 0, 0, 0, err
		}
	}
	pipe := c.Pipeline()
	ttls := make([]*redis.DurationCmd, len(sample))
	for i, k := range sample {
		ttls[i] = pipe.PTTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, 0, err
	}
	for _, t := range ttls {
		if t.Val() <= 0 {
			noTTL++
		}
	}
	return keys, len(sample), noTTL, nil
}

// deleteKeys removes the run's keys from a Redis the program did not start.
func deleteKeys(ctx context.Context, c *redis.Client, prefix string) {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			c.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Unlink(ctx, batch...)
	}
}

// redisMemory reads one field of INFO memory.
func redisMemory(ctx context.Context, c *redis.Client, field string) (uint64, error) {
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no %s", field)
}

type redisServer struct {
	addr string
	cmd  *exec.Cmd
	dir  string
}

// startRedis runs a private redis-server without persistence on a free port.
func startRedis() (*redisServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "vigil-statebench")
	if err != nil {
		return nil, err
	}
	s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return s, nil
		}
	}
	s.stop()
	return nil, fmt.Errorf("redis-server did not answer on %s", s.addr)
}

func (s *redisServer) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// heapInuse is the Go heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// procKB reads a field of /proc/self/status, in kB (0 when unavailable).
func procKB(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func mb(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
