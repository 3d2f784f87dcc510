package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/detect"
	"github.com/vigilsec/vigil/detect/data/query"
	"github.com/vigilsec/vigil/internal/redistest"
)

// TestRedisCluster runs every state family on a real Redis Cluster (three
// masters, three replicas), then moves slots and kills a master while a
// load runs. One cluster serves the subtests, the destructive ones last.
func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	ks, err := RedisOptions{Addrs: c.Addrs(), Cluster: true, Prefix: "vigil:"}.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Client.Close() })
	if !ks.Cluster {
		t.Fatal("the keyspace does not know it talks to a cluster")
	}
	t.Run("families", func(t *testing.T) { clusterFamilies(t, ks) })
	t.Run("reshard under load", func(t *testing.T) {
		l := startLoad(t, ks)
		time.Sleep(300 * time.Millisecond)
		m := c.Masters()
		start := time.Now()
		c.Reshard(m[0], m[1], 1000)
		took := time.Since(start)
		time.Sleep(300 * time.Millisecond)
		ops, errs := l.stop()
		t.Logf("1000 slots moved in %v under load: %d operations, %d errors", took, ops, len(errs))
		if len(errs) > 0 {
			t.Fatalf("errors while slots moved: %d, first %v: %s", len(errs), errs[0], errKinds(errs))
		}
	})
	t.Run("master killed under load", func(t *testing.T) {
		ctx := context.Background()
		rc := NewRedisCounter(ks)
		w := detect.LoginWindows{Account: time.Hour, IP: time.Hour, Pair: time.Hour, Stuffing: time.Hour}
		k := detect.KeysFor("survivor", "198.51.100.1")
		for range 3 {
			if _, _, err := rc.Reserve(ctx, k, w, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		c.Sync() // what WAIT 1 gives: the counts are on the replicas
		l := startLoad(t, ks)
		time.Sleep(300 * time.Millisecond)
		old, promoted := c.KillMaster(rc.key(detect.AccountCounter, k.Account))
		killed := time.Now().Add(-promoted)
		last, recovered := l.recovery(killed, promoted+5*time.Second)
		ops, errs := l.stop()
		t.Logf("killed %s: replica promoted after %v; operations succeed again %v after the kill; %d operations, %d errors: %s",
			old, promoted, last.Sub(killed), ops, len(errs), errKinds(errs))
		if !recovered {
			t.Fatalf("operations on the dead master's slots still fail %v after the kill (promotion took %v): "+
				"go-redis re-reads the slot map on MOVED, or only every ClusterStateReloadInterval (60 s by default) "+
				"when a node refuses connections; store.RedisOptions.Client should set it to about 1 s", time.Since(killed), promoted)
		}
		_, counts, err := rc.Reserve(ctx, k, w, time.Now())
		if err != nil || counts.Account != 4 {
			t.Errorf("counts written before the kill: %+v, %v; want the account's 4th failure", counts, err)
		}
	})
}

// clusterFamilies runs each family on the cluster and in memory side by
// side, over subjects spread across the slots: same answers, no CROSSSLOT.
func clusterFamilies(t *testing.T, ks Keyspace) {
	ctx := context.Background()
	now := time.Now()
	rc, mc := NewRedisCounter(ks), NewMemoryCounter(nil)
	rw, mw := NewRedisWindows(ks), NewMemoryWindows()
	rb, mb := NewRedisBuckets(ks), NewMemoryBuckets(nil)
	rs, ms := NewRedisSums(ks), NewMemorySums(nil)
	rp, mp := NewRedisProfiles(ks), NewMemoryProfiles(nil)
	rd, md := NewRedisDistinct(ks), NewMemoryDistinct(nil)
	rr, mr := NewRedisRisk(ks), NewMemoryRisk(0, nil)
	lw := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute, Stuffing: time.Minute}
	win := detect.Window{Kind: detect.ProbePaths, Within: time.Minute}
	bucket := detect.Bucket{Kind: testBucket, Capacity: 5, Leak: time.Minute}
	sum := detect.Sum{Kind: testSum, Within: time.Minute}
	span := query.Span{Kind: "enum", Within: time.Hour}
	tab := riskTables()
	same := func(what string, i int, a, b any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s #%d: %v", what, i, err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("%s #%d: cluster %v, memory %v", what, i, a, b)
		}
	}
	for i := range 40 {
		user, ip := "user"+strconv.Itoa(i%7), "203.0.113."+strconv.Itoa(i%5)
		k := detect.KeysFor(user, ip)
		at := now.Add(time.Duration(i) * time.Millisecond)
		ra, rcnt, err := rc.Reserve(ctx, k, lw, at)
		ma, mcnt, _ := mc.Reserve(ctx, k, lw, at)
		same("reserve", i, rcnt, mcnt, err)
		switch i % 4 {
		case 1:
			same("release", i, nil, nil, rc.Release(ctx, ra))
			_ = mc.Release(ctx, ma)
		case 2:
			same("success", i, nil, nil, rc.RecordSuccess(ctx, ra))
			_ = mc.RecordSuccess(ctx, ma)
		}
		if i%13 == 12 {
			same("hold", i, nil, nil, rc.Hold(ctx, detect.IPCounter, k.IP, at.Add(time.Minute)))
			_ = mc.Hold(ctx, detect.IPCounter, k.IP, at.Add(time.Minute))
		}
		member := detect.HashID("path", strconv.Itoa(i%9))
		rn, err := rw.Add(ctx, win, k.IP, member, at)
		mn, _ := mw.Add(ctx, win, k.IP, member, at)
		same("window", i, rn, mn, err)
		rl, rover, err := rb.Pour(ctx, bucket, k.IP, detect.Drop{Weight: 1, Member: member}, at)
		ml, mover, _ := mb.Pour(ctx, bucket, k.IP, detect.Drop{Weight: 1, Member: member}, at)
		same("bucket", i, [2]any{rl, rover}, [2]any{ml, mover}, err)
		rsum, err := rs.Add(ctx, sum, k.Account, int64(i), at)
		msum, _ := ms.Add(ctx, sum, k.Account, int64(i), at)
		same("sum", i, rsum, msum, err)
		grow := func(cur []byte) []byte { return append(cur, byte('a'+i%26)) }
		rprof, err := rp.Update(ctx, testProfile, k.Account, time.Hour, grow)
		mprof, _ := mp.Update(ctx, testProfile, k.Account, time.Hour, grow)
		same("profile", i, string(rprof), string(mprof), err)
		rdn, err := rd.Add(ctx, span, k.IP, member, at)
		mdn, _ := md.Add(ctx, span, k.IP, member, at)
		same("distinct", i, rdn, mdn, err)
		q := riskQuery(tab, user, uint64(i%3), at)
		same("risk learn", i, nil, nil, rr.Learn(ctx, q))
		_ = mr.Learn(ctx, q)
		rcounts, err := rr.Read(ctx, q)
		mcounts, _ := mr.Read(ctx, q)
		if err != nil || !sameCounts(rcounts, mcounts) {
			t.Fatalf("risk read #%d: %v\ncluster %+v\nmemory  %+v", i, err, rcounts, mcounts)
		}
	}
	for i := range 7 {
		acct := detect.AccountKey("user" + strconv.Itoa(i))
		rg, err := rp.Get(ctx, testProfile, acct)
		mg, _ := mp.Get(ctx, testProfile, acct)
		same("profile get", i, string(rg), string(mg), err)
		same("forget", i, nil, nil, rc.Forget(ctx, detect.AccountCounter, acct))
		rt, err := rs.Sum(ctx, sum, acct, now.Add(time.Second))
		mt, _ := ms.Sum(ctx, sum, acct, now.Add(time.Second))
		same("sum read", i, rt, mt, err)
	}
}

// load runs counter, window, sum and distinct operations on many subjects
// from two goroutines until stopped, and records every error.
type load struct {
	stopped chan struct{}
	wg      sync.WaitGroup
	ops     atomic.Int64
	mu      sync.Mutex
	errs    []loadErr
	oks     []time.Time // the time of every 64th success
}

type loadErr struct {
	at  time.Time
	err error
}

func (e loadErr) String() string { return e.at.Format("15:04:05.000") + " " + e.err.Error() }

func startLoad(t *testing.T, ks Keyspace) *load {
	l := &load{stopped: make(chan struct{})}
	rc, rw, rs, rd := NewRedisCounter(ks), NewRedisWindows(ks), NewRedisSums(ks), NewRedisDistinct(ks)
	lw := detect.LoginWindows{Account: time.Minute, IP: time.Minute, Pair: time.Minute, Stuffing: time.Minute}
	for g := range 2 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			ctx := context.Background()
			for i := g; ; i += 2 {
				select {
				case <-l.stopped:
					return
				default:
				}
				k := detect.KeysFor("load"+strconv.Itoa(i%1000), "192.0.2."+strconv.Itoa(i%250))
				now := time.Now()
				var err error
				switch i % 4 {
				case 0:
					var a detect.Attempt
					if a, _, err = rc.Reserve(ctx, k, lw, now); err == nil {
						err = rc.Release(ctx, a)
					}
				case 1:
					_, err = rw.Add(ctx, detect.Window{Kind: detect.ProbePaths, Within: time.Minute}, k.IP, k.Pair, now)
				case 2:
					_, err = rs.Add(ctx, detect.Sum{Kind: testSum, Within: time.Minute}, k.Account, 10, now)
				default:
					_, err = rd.Add(ctx, query.Span{Kind: "enum", Within: time.Hour}, k.Account, k.IP, now)
				}
				l.record(err)
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *load) record(err error) {
	n := l.ops.Add(1)
	if err == nil && n%64 != 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, loadErr{time.Now(), err})
		time.Sleep(time.Millisecond) // a failing store fails fast: do not spin
		return
	}
	l.oks = append(l.oks, time.Now())
}

// stop ends the load (idempotent) and returns the operations and errors.
func (l *load) stop() (int64, []loadErr) {
	select {
	case <-l.stopped:
	default:
		close(l.stopped)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops.Load(), l.errs
}

// okAfter counts the sampled successes after t.
func (l *load) okAfter(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.oks {
		if at.After(t) {
			n++
		}
	}
	return n
}

// recovery waits until no operation has failed for 700 ms, with
// successes since, or until limit after since; it returns the time of the
// last error and whether the load recovered.
func (l *load) recovery(since time.Time, limit time.Duration) (time.Time, bool) {
	for {
		l.mu.Lock()
		last := since
		if n := len(l.errs); n > 0 && l.errs[n-1].at.After(since) {
			last = l.errs[n-1].at
		}
		l.mu.Unlock()
		if time.Since(last) > 700*time.Millisecond && l.okAfter(last) > 10 {
			return last, true
		}
		if time.Since(since) > limit {
			return last, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// errKinds summarises errors by message, for logs.
func errKinds(errs []loadErr) string {
	seen := map[string]int{}
	for _, e := range errs {
		msg := e.err.Error()
		if i := strings.Index(msg, "127.0.0.1:"); i >= 0 {
			msg = msg[:i]
		}
		seen[msg]++
	}
	return fmt.Sprint(seen)
}

// TestRedisSentinelFailover writes without pause through a Sentinel
// failover and then through the kill of the new master: Vigil's client
// follows the new master, and no write acknowledged after a failover has
// completed is lost.
func TestRedisSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t)
	ks, err := RedisOptions{Addrs: s.Addrs(), SentinelMaster: s.Master, Prefix: "vigil:"}.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Client.Close() })
	sums := NewRedisSums(ks)
	sw := detect.Sum{Kind: testSum, Within: time.Hour}
	var (
		mu    sync.Mutex
		acked = map[int]time.Time{}
		nerr  int
		gap   time.Duration // the longest time without a successful write
		stop  = make(chan struct{})
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		last := time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := sums.Add(context.Background(), sw, detect.HashID("w", strconv.Itoa(i)), 1, time.Now())
			now := time.Now()
			mu.Lock()
			if err != nil {
				nerr++
			} else {
				acked[i] = now
				gap = max(gap, now.Sub(last))
				last = now
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	newMaster, took := s.Failover()
	safe1 := time.Now()
	t.Logf("SENTINEL FAILOVER: %s promoted after %v", newMaster, took)
	time.Sleep(time.Second)
	killAt := time.Now()
	newMaster, took = s.KillMaster()
	t.Logf("master killed: %s promoted after %v", newMaster, took)
	safe2 := time.Now()
	time.Sleep(time.Second)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d writes acknowledged, %d failed; longest time without a successful write: %v", len(acked), nerr, gap)
	// generous: the bound is "follows the new master in seconds, not at
	// the next minute's reload", on a host that may be busy
	if gap > took+5*time.Second {
		t.Errorf("the client took %v to follow the new master (promotion %v)", gap, took)
	}
	lost, checked, early, lateKill := 0, 0, 0, 0
	for i, at := range acked {
		n, err := sums.Sum(context.Background(), sw, detect.HashID("w", strconv.Itoa(i)), time.Now())
		gone := err != nil || n != 1
		// before a failover has completed, a write may have gone to the old
		// master after the promotion, or not reached the replica before
		// the kill (asynchronous replication): counted, not failed
		if at.Before(safe1) || (at.After(killAt.Add(-50*time.Millisecond)) && at.Before(safe2)) {
			if gone && at.Before(safe1) {
				early++
			} else if gone {
				lateKill++
			}
			continue
		}
		checked++
		if gone {
			lost++
		}
	}
	t.Logf("acknowledged writes lost: %d around SENTINEL FAILOVER, %d around the kill", early, lateKill)
	if lost > 0 {
		t.Errorf("%d of %d writes acknowledged after a failover were lost", lost, checked)
	}
	if checked < 100 {
		t.Errorf("only %d writes checked", checked)
	}
}
