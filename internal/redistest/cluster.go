package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of a test Cluster: a
// master unreachable this long is marked failed and its replica promoted.
const ClusterNodeTimeout = 1000 * time.Millisecond

// Cluster is a Redis Cluster of three masters and three replicas on
// loopback, started by a test from redis-server child processes.
type Cluster struct {
	tb    testing.TB
	mu    sync.Mutex
	nodes []*node
}

// node is one redis-server process of a topology.
type node struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// ToolsOrSkip skips (or fails under VIGIL_REQUIRE_REDIS=1) when the tools
// the topologies need are missing; it returns redis-server's and
// redis-cli's paths.
func ToolsOrSkip(tb testing.TB) (server, cli string) {
	tb.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "no redis-server in PATH (Debian: apt-get install redis-server redis-tools)")
	}
	cli, err = exec.LookPath("redis-cli")
	if err != nil {
		Unavailable(tb, "no redis-cli in PATH (Debian: apt-get install redis-tools)")
	}
	return server, cli
}

// startNode runs redis-server with args (after --port and the common
// settings) in dir and waits until it answers PING.
func startNode(tb testing.TB, server, dir string, args ...string) *node {
	tb.Helper()
	var why string
	for range 3 { // a port taken between FreePort and the bind: another one
		n, ok, log := tryNode(server, dir, FreePort(tb), args)
		if ok {
			return n
		}
		why = log
	}
	tb.Fatalf("redis-server did not start: %s", why)
	return nil
}

// tryNode starts redis-server on port and waits until it answers; when it
// does not, it returns the end of its log.
func tryNode(server, dir string, port int, args []string) (*node, bool, string) {
	n := &node{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	var all []string
	if len(args) > 0 && strings.HasSuffix(args[0], ".conf") {
		all, args = args[:1], args[1:] // a config file comes first
	}
	all = append(all, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--daemonize", "no", "--dir", dir,
		"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
	all = append(all, args...)
	n.cmd = exec.Command(server, all...)
	logPath := filepath.Join(dir, "redis.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, false, err.Error()
	}
	n.cmd.Stdout, n.cmd.Stderr = log, log
	if err := n.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, false, err.Error()
	}
	go func() { _ = n.cmd.Wait(); close(n.done); _ = log.Close() }()
	for deadline := time.Now().Add(10 * time.Second); !answers(n.addr); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || !n.alive() {
			n.kill()
			text, _ := os.ReadFile(logPath)
			if len(text) > 600 {
				text = text[len(text)-600:]
			}
			return nil, false, n.addr + ": " + string(text)
		}
	}
	return n, true, ""
}

// answers reports whether a Redis at addr answers PING (dialled by hand
// first, so that a server still starting logs nothing).
func answers(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return nodeClient(addr, func(cl *redis.Client) error { return cl.Ping(context.Background()).Err() }) == nil
}

// kill sends SIGKILL and waits for the process to exit (idempotent).
func (n *node) kill() {
	if n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-n.done
}

func (n *node) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// StartCluster starts three masters and three replicas on free loopback
// ports, joins them with redis-cli --cluster create and waits until every
// node reports cluster_state:ok. It is stopped at the end of the test.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	server, cli := ToolsOrSkip(tb)
	c := &Cluster{tb: tb}
	tb.Cleanup(c.Stop)
	for i := 0; i < 6; i++ {
		dir := tb.TempDir()
		c.nodes = append(c.nodes, startNode(tb, server, dir, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout/time.Millisecond)),
			"--cluster-replica-validity-factor", "0"))
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(30 * time.Second)
	return c
}

// Addrs are the addresses of the nodes still running.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		if n.alive() {
			out = append(out, n.addr)
		}
	}
	return out
}

// Stop kills every node (idempotent).
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		n.kill()
	}
}

// nodeClient runs fn with a plain client to addr.
func nodeClient(addr string, fn func(*redis.Client) error) error {
	cl := redis.NewClient(&redis.Options{Addr: addr, DialerRetries: 1, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	defer cl.Close()
	return fn(cl)
}

// slotOwners maps every slot to its master's address (an online master
// only), as node addr sees it.
func slotOwners(addr string) (map[int]string, error) {
	owners := make(map[int]string, 16384)
	err := nodeClient(addr, func(cl *redis.Client) error {
		shards, err := cl.ClusterShards(context.Background()).Result()
		if err != nil {
			return err
		}
		for _, sh := range shards {
			master := ""
			for _, n := range sh.Nodes {
				if n.Role == "master" && n.Health == "online" {
					master = net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
				}
			}
			if master == "" {
				continue
			}
			for _, r := range sh.Slots {
				for i := r.Start; i <= r.End; i++ {
					owners[int(i)] = master
				}
			}
		}
		return nil
	})
	return owners, err
}

// waitOK waits until every running node reports cluster_state:ok and all
// of them agree on who owns every slot.
func (c *Cluster) waitOK(limit time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, why := c.healthy()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("cluster not ok after %v: %s", limit, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) healthy() (bool, string) {
	var first map[int]string
	for _, addr := range c.Addrs() {
		var info string
		err := nodeClient(addr, func(cl *redis.Client) (err error) {
			info, err = cl.ClusterInfo(context.Background()).Result()
			return err
		})
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return false, fmt.Sprintf("%s: %v %q", addr, err, firstLine(info))
		}
		owners, err := slotOwners(addr)
		if err != nil || len(owners) != 16384 {
			return false, fmt.Sprintf("%s: %d slots covered (%v)", addr, len(owners), err)
		}
		if first == nil {
			first = owners
			continue
		}
		for s, o := range owners {
			if first[s] != o {
				return false, fmt.Sprintf("slot %d: owner %s or %s", s, first[s], o)
			}
		}
	}
	return true, ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// MasterOf is the address of the master that owns key's slot.
func (c *Cluster) MasterOf(key string) string {
	c.tb.Helper()
	addr := c.Addrs()[0]
	var slot int64
	err := nodeClient(addr, func(cl *redis.Client) (err error) {
		slot, err = cl.ClusterKeySlot(context.Background(), key).Result()
		return err
	})
	if err != nil {
		c.tb.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	owners, err := slotOwners(addr)
	if err != nil {
		c.tb.Fatalf("CLUSTER SLOTS: %v", err)
	}
	return owners[int(slot)]
}

// Masters are the addresses of the masters that own slots.
func (c *Cluster) Masters() []string {
	c.tb.Helper()
	owners, err := slotOwners(c.Addrs()[0])
	if err != nil {
		c.tb.Fatalf("CLUSTER SLOTS: %v", err)
	}
	seen := map[string]bool{}
	var out []string
	for s := 0; s < 16384; s++ {
		if o := owners[s]; o != "" && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

// KillMaster SIGKILLs the master owning key's slot and waits until its
// replica has been promoted and every surviving node agrees (cluster_state
// ok). It returns the old master's address and the time from the kill to
// the promotion.
func (c *Cluster) KillMaster(key string) (string, time.Duration) {
	c.tb.Helper()
	old := c.MasterOf(key)
	var victim *node
	c.mu.Lock()
	for _, n := range c.nodes {
		if n.addr == old {
			victim = n
		}
	}
	c.mu.Unlock()
	start := time.Now()
	victim.kill()
	deadline := start.Add(10*ClusterNodeTimeout + 10*time.Second)
	for {
		if m := c.MasterOf(key); m != old && m != "" {
			if ok, _ := c.healthy(); ok {
				return old, time.Since(start)
			}
		}
		if time.Now().After(deadline) {
			_, why := c.healthy()
			c.tb.Fatalf("no replica of %s promoted after %v: %s", old, time.Since(start), why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeID is the cluster node ID of the node at addr.
func nodeID(addr string) (string, error) {
	var id string
	err := nodeClient(addr, func(cl *redis.Client) (err error) {
		id, err = cl.Do(context.Background(), "CLUSTER", "MYID").Text()
		return err
	})
	return id, err
}

// Reshard moves slots slots from master from to master to (addresses) with
// redis-cli --cluster reshard, and waits until the nodes agree again.
func (c *Cluster) Reshard(from, to string, slots int) {
	c.tb.Helper()
	_, cli := ToolsOrSkip(c.tb)
	fromID, err := nodeID(from)
	if err != nil {
		c.tb.Fatalf("CLUSTER MYID %s: %v", from, err)
	}
	toID, err := nodeID(to)
	if err != nil {
		c.tb.Fatalf("CLUSTER MYID %s: %v", to, err)
	}
	out, err := exec.Command(cli, "--cluster", "reshard", from, "--cluster-from", fromID,
		"--cluster-to", toID, "--cluster-slots", strconv.Itoa(slots), "--cluster-yes",
		"--cluster-pipeline", "100").CombinedOutput()
	if err != nil {
		c.tb.Fatalf("redis-cli --cluster reshard: %v\n%s", err, out)
	}
	c.waitOK(30 * time.Second)
}

// Sync waits until every replica has acknowledged all that its master had
// written when Sync was called: what WAIT does for one connection, for the
// whole cluster (a write acknowledged before Sync survives a failover).
func (c *Cluster) Sync() {
	c.tb.Helper()
	for _, m := range c.Masters() {
		if err := replicasCaughtUp(m, 5*time.Second); err != nil {
			c.tb.Fatalf("replicas of %s: %v", m, err)
		}
	}
}
