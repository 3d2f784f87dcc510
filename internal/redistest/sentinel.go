package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelDownAfter is the down-after-milliseconds of a test Sentinel: a
// master unreachable this long is subjectively down.
const SentinelDownAfter = 1000 * time.Millisecond

// Sentinel is one master, one replica and three Sentinels (quorum 2) on
// loopback, started by a test.
type Sentinel struct {
	tb        testing.TB
	mu        sync.Mutex
	data      []*node // master and replica, in start order
	sentinels []*node
	// Master is the name the Sentinels monitor.
	Master string
}

// StartSentinel starts the master, its replica and three Sentinels (run as
// redis-server --sentinel, which is what redis-sentinel is) and waits
// until the replica is in sync and every Sentinel knows the replica and
// the other Sentinels. It is stopped at the end of the test.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	server, _ := ToolsOrSkip(tb)
	s := &Sentinel{tb: tb, Master: "vigil-master"}
	tb.Cleanup(s.Stop)
	master := startNode(tb, server, tb.TempDir())
	host, port, _ := net.SplitHostPort(master.addr)
	replica := startNode(tb, server, tb.TempDir(), "--replicaof", host, port)
	s.data = []*node{master, replica}
	for i := 0; i < 3; i++ {
		dir := tb.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 2\n"+
			"sentinel down-after-milliseconds %[1]s %[4]d\n"+
			"sentinel failover-timeout %[1]s 5000\n"+
			"sentinel parallel-syncs %[1]s 1\n", s.Master, host, port, SentinelDownAfter/time.Millisecond)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		s.sentinels = append(s.sentinels, startNode(tb, server, dir, conf, "--sentinel"))
	}
	s.wait(20*time.Second, "replica in sync and Sentinels acquainted", func() bool {
		return s.linkUp(replica.addr) && s.acquainted()
	})
	return s
}

// Addrs are the Sentinels' addresses.
func (s *Sentinel) Addrs() []string {
	var out []string
	for _, n := range s.sentinels {
		out = append(out, n.addr)
	}
	return out
}

// MasterAddr is the master's address as the first Sentinel knows it.
func (s *Sentinel) MasterAddr() string {
	s.tb.Helper()
	var addr []string
	err := nodeClient(s.sentinels[0].addr, func(cl *redis.Client) (err error) {
		addr, err = redis.NewSentinelClient(cl.Options()).GetMasterAddrByName(context.Background(), s.Master).Result()
		return err
	})
	if err != nil || len(addr) != 2 {
		s.tb.Fatalf("SENTINEL get-master-addr-by-name: %v %v", addr, err)
	}
	return net.JoinHostPort(addr[0], addr[1])
}

// Stop kills every process (idempotent).
func (s *Sentinel) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range append(append([]*node{}, s.sentinels...), s.data...) {
		n.kill()
	}
}

// Failover asks a Sentinel for a failover (SENTINEL FAILOVER) and waits
// until every Sentinel names the new master and it accepts writes. The old
// master would take writes until the Sentinels turn it into a replica (at
// their next INFO, up to 10 s later): Failover does that at once, waits
// until it is in sync, and returns the new master and the time to it. It
// returns the new master's address and how long that took.
func (s *Sentinel) Failover() (string, time.Duration) {
	s.tb.Helper()
	old := s.MasterAddr()
	start := time.Now()
	err := nodeClient(s.sentinels[0].addr, func(cl *redis.Client) error {
		return redis.NewSentinelClient(cl.Options()).Failover(context.Background(), s.Master).Err()
	})
	if err != nil {
		s.tb.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	now, took := s.awaitNewMaster(old, start)
	host, port, _ := net.SplitHostPort(now)
	err = nodeClient(old, func(cl *redis.Client) error {
		return cl.Do(context.Background(), "REPLICAOF", host, port).Err()
	})
	if err != nil {
		s.tb.Fatalf("REPLICAOF on the old master: %v", err)
	}
	s.wait(20*time.Second, "old master in sync with the new one", func() bool { return s.linkUp(old) && s.acquainted() })
	return now, took
}

// KillMaster SIGKILLs the master and waits until the Sentinels have
// promoted the replica; it returns the new master's address and the time
// from the kill to the promotion.
func (s *Sentinel) KillMaster() (string, time.Duration) {
	s.tb.Helper()
	old := s.MasterAddr()
	start := time.Now()
	s.mu.Lock()
	for _, n := range s.data {
		if n.addr == old {
			n.kill()
		}
	}
	s.mu.Unlock()
	return s.awaitNewMaster(old, start)
}

func (s *Sentinel) awaitNewMaster(old string, start time.Time) (string, time.Duration) {
	s.tb.Helper()
	var now string
	s.wait(30*time.Second, "a new master named by every Sentinel", func() bool {
		now = ""
		for _, sn := range s.sentinels {
			var addr []string
			_ = nodeClient(sn.addr, func(cl *redis.Client) (err error) {
				addr, err = redis.NewSentinelClient(cl.Options()).GetMasterAddrByName(context.Background(), s.Master).Result()
				return err
			})
			if len(addr) != 2 || net.JoinHostPort(addr[0], addr[1]) == old {
				return false
			}
			now = net.JoinHostPort(addr[0], addr[1])
		}
		var info string
		_ = nodeClient(now, func(cl *redis.Client) (err error) {
			info, err = cl.Info(context.Background(), "replication").Result()
			return err
		})
		return strings.Contains(info, "role:master")
	})
	return now, time.Since(start)
}

// linkUp reports whether the replica at addr has its master link up.
func (s *Sentinel) linkUp(addr string) bool {
	var info string
	_ = nodeClient(addr, func(cl *redis.Client) (err error) {
		info, err = cl.Info(context.Background(), "replication").Result()
		return err
	})
	return strings.Contains(info, "master_link_status:up")
}

// acquainted reports whether every Sentinel knows one replica and two
// other Sentinels.
func (s *Sentinel) acquainted() bool {
	for _, sn := range s.sentinels {
		var m map[string]string
		_ = nodeClient(sn.addr, func(cl *redis.Client) (err error) {
			m, err = redis.NewSentinelClient(cl.Options()).Master(context.Background(), s.Master).Result()
			return err
		})
		if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
			return false
		}
	}
	return true
}

func (s *Sentinel) wait(limit time.Duration, what string, ok func() bool) {
	s.tb.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			s.tb.Fatalf("sentinel topology: no %s after %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicasCaughtUp waits until the replicas of the master at addr report
// an offset at least the master's offset when called.
func replicasCaughtUp(addr string, limit time.Duration) error {
	var target int64 = -1
	deadline := time.Now().Add(limit)
	for {
		var info string
		err := nodeClient(addr, func(cl *redis.Client) (err error) {
			info, err = cl.Info(context.Background(), "replication").Result()
			return err
		})
		if err != nil {
			return err
		}
		fields := map[string]string{}
		for _, line := range strings.Split(info, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				fields[k] = v
			}
		}
		off, _ := strconv.ParseInt(fields["master_repl_offset"], 10, 64)
		if target < 0 {
			target = off
		}
		behind := fields["connected_slaves"] == "0"
		for i := 0; fields["slave"+strconv.Itoa(i)] != ""; i++ {
			for _, kv := range strings.Split(fields["slave"+strconv.Itoa(i)], ",") {
				if v, ok := strings.CutPrefix(kv, "offset="); ok {
					if n, _ := strconv.ParseInt(v, 10, 64); n < target {
						behind = true
					}
				}
			}
		}
		if !behind {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replicas behind offset %d after %v", target, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
