package redispeer

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of real redis-servers on loopback.
type Cluster struct {
	Nodes []*Server
	t     testing.TB
}

// StartCluster runs primaries×(1+replicas) redis-servers in cluster mode
// (each with its cluster bus on a free port of its own, node timeout
// 2 s so a failover takes seconds) and joins them with redis-cli
// --cluster create, replicas per primary; it returns once every node
// sees every slot served and every replica in sync.
func StartCluster(t testing.TB, primaries, replicas int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli is not installed (make test installs Debian's redis-tools): ", err)
	}
	dir := t.TempDir()
	c := &Cluster{t: t}
	var addrs []string
	for range primaries * (1 + replicas) {
		addr, bus := freePair(t)
		_, port, _ := net.SplitHostPort(addr)
		s := startAt(t, addr, "--cluster-enabled", "yes", "--cluster-port", bus,
			"--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"), "--cluster-node-timeout", "2000", "--dir", dir) // a replica's full sync writes an RDB there
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitStable(30 * time.Second)
	return c
}

// WaitStable waits until every running node reports the cluster ok, all
// slots assigned and no node failing or loading (CLUSTER SHARDS health).
func (c *Cluster) WaitStable(limit time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		why := c.unstable()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redis cluster not stable after %v: %s", limit, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) unstable() string {
	ctx := context.Background()
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		info, err := n.Client.ClusterInfo(ctx).Result()
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return n.Addr + ": " + strings.Fields(info)[0]
		}
		shards, err := n.Client.ClusterShards(ctx).Result()
		if err != nil {
			return err.Error()
		}
		for _, s := range shards {
			for _, sn := range s.Nodes {
				if sn.Health != "online" && c.running(sn.Port) {
					return fmt.Sprintf("%s sees %s:%d %s", n.Addr, sn.IP, sn.Port, sn.Health)
				}
			}
		}
	}
	return ""
}

// running reports whether the node on port is one of c's still running.
func (c *Cluster) running(port int64) bool {
	for _, n := range c.Nodes {
		if int64(n.PortNum()) == port {
			return n.cmd != nil
		}
	}
	return false
}

// Primaries returns the running nodes that are primaries, and Replicas
// those that are replicas.
func (c *Cluster) Primaries() []*Server { return c.byRole("master") }

// Replicas returns the running nodes that are replicas.
func (c *Cluster) Replicas() []*Server { return c.byRole("slave") }

func (c *Cluster) byRole(role string) []*Server {
	var out []*Server
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		info, err := n.Client.Info(context.Background(), "replication").Result()
		if err != nil {
			c.t.Fatalf("INFO replication on %s: %v", n.Addr, err)
		}
		if strings.Contains(info, "role:"+role+"\r\n") {
			out = append(out, n)
		}
	}
	return out
}

// ID returns a node's cluster ID.
func (s *Server) ID() string {
	id, err := s.Client.ClusterMyID(context.Background()).Result()
	if err != nil {
		s.t.Fatalf("CLUSTER MYID on %s: %v", s.Addr, err)
	}
	return id
}

// CommandCalls returns how many times the server ran cmd (INFO
// commandstats), and how many it rejected.
func (s *Server) CommandCalls(cmd string) (calls, rejected int) {
	info, err := s.Client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		s.t.Fatalf("INFO commandstats on %s: %v", s.Addr, err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.Atoi(v)
			switch k {
			case "calls":
				calls = n
			case "rejected_calls":
				rejected = n
			}
		}
	}
	return calls, rejected
}

// freePair returns a free 127.0.0.1 address and another free port: a
// node's and its cluster bus's.
func freePair(t testing.TB) (addr, bus string) {
	t.Helper()
	_ = freeAddr(t) // skips the test without redis-server
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, bus, _ = net.SplitHostPort(b.Addr().String())
	return a.Addr().String(), bus
}
