package rediscluster

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// captured reads a reply captured from a real cluster (3 primaries on
// 127.0.0.1:17001-17003, a replica each on 17004-17006).
func captured(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "protocols", "redis", "testdata", "cluster", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTopology(policy string, seeds ...string) *Topology {
	t := &Topology{name: "c", hosts: map[hostKey]*cluster.Host{},
		ref: refresher{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}, read: make(chan struct{})}
	o := &Options{ReadPolicy: policy, RefreshInterval: time.Hour, ConnectTimeout: time.Second}
	for _, s := range seeds {
		o.Seeds = append(o.Seeds, cluster.NewHost(s))
	}
	t.opts.Store(o)
	return t
}

func TestPick(t *testing.T) {
	shards, err := redis.ParseShards(captured(t, "shards-resp2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	top := newTopology(Master, "127.0.0.1:9")
	if h := top.Pick(12182, false); h == nil || h.Addr != "127.0.0.1:9" {
		t.Fatalf("before a map: %v, want the seed", h)
	}
	if n := top.install(shards); n != redis.SlotCount {
		t.Fatalf("covered %d", n)
	}
	foo := redis.Slot([]byte("foo")) // 12182, on 17003 with replica 17004
	for _, tc := range []struct {
		policy   string
		readonly bool
		want     string
		replica  bool
	}{
		{Master, true, "127.0.0.1:17003", false},
		{PreferMaster, true, "127.0.0.1:17003", false},
		{Replica, true, "127.0.0.1:17004", true},
		{PreferReplica, true, "127.0.0.1:17004", true},
		{PreferReplica, false, "127.0.0.1:17003", false},
		{Replica, false, "127.0.0.1:17003", false},
	} {
		top.opts.Load().ReadPolicy = tc.policy
		h := top.Pick(foo, tc.readonly)
		if h == nil || h.Addr != tc.want || top.IsReplica(h) != tc.replica {
			t.Errorf("%s readonly=%v: %v", tc.policy, tc.readonly, h)
		}
	}
	top.opts.Load().ReadPolicy = Any
	seen := map[string]bool{}
	for range 200 {
		seen[top.Pick(foo, true).Addr] = true
	}
	if !seen["127.0.0.1:17003"] || !seen["127.0.0.1:17004"] || len(seen) != 2 {
		t.Errorf("ANY read from %v", seen)
	}
	if h := top.Pick(-1, false); h == nil || top.IsReplica(h) {
		t.Errorf("keyless: %v", h)
	}

	// MOVED corrects the slot at once; the shard of 17001 takes it.
	if h := top.Moved(foo, "127.0.0.1:17001"); h.Addr != "127.0.0.1:17001" || top.Pick(foo, false) != h {
		t.Errorf("after MOVED: %v", top.Pick(foo, false))
	}
	top.opts.Load().ReadPolicy = Replica
	if h := top.Pick(foo, true); h.Addr != "127.0.0.1:17005" {
		t.Errorf("replica after MOVED: %v", h)
	}
	v := top.view()
	if v.Covered != redis.SlotCount || len(v.Shards) != 3 {
		t.Errorf("view %+v", v)
	}
}

// fakeNode answers each request with the next of replies, on 127.0.0.1.
func fakeNode(t *testing.T, replies ...[]byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c, _ := redis.New(nil)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				var buf []byte
				chunk := make([]byte, 4096)
				for _, reply := range replies {
					for {
						var m protocols.Message
						n, err := c.Decode(buf, &m)
						if err != nil {
							return
						}
						if n > 0 {
							buf = buf[n:]
							break
						}
						k, err := nc.Read(chunk)
						if err != nil {
							return
						}
						buf = append(buf, chunk[:k]...)
					}
					if _, err := nc.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRefresh(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies [][]byte
	}{
		{"shards", [][]byte{captured(t, "shards-resp2.bin")}},
		{"slots after an error", [][]byte{[]byte("-ERR unknown subcommand 'SHARDS'\r\n"), captured(t, "slots-resp2.bin")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.NewProxy()
			reg := NewRegistry(zap.NewNop(), m.RedisCluster)
			defer reg.Stop()
			node := fakeNode(t, tc.replies...)
			c, _ := redis.New(nil)
			cl := &cluster.Cluster{Name: "c", ConnectTimeout: time.Second, Endpoints: []cluster.Endpoint{{Host: cluster.NewHost(node)}},
				Redis: &cluster.RedisCluster{ReadPolicy: Master, RefreshInterval: time.Hour}}
			top := reg.Get(cl, c.(*redis.Codec))
			// The gauge is set after the map is in force.
			for i := 0; testutil.ToFloat64(m.RedisCluster.Refreshes.WithLabelValues("c", "ok")) == 0; i++ {
				if i > 1000 {
					t.Fatal("no map after 10 s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if h := top.Pick(redis.Slot([]byte("foo")), false); h.Addr != "127.0.0.1:17003" {
				t.Errorf("foo on %v", h)
			}
			if got := testutil.ToFloat64(m.RedisCluster.SlotsCovered.WithLabelValues("c")); got != redis.SlotCount {
				t.Errorf("slots covered %v", got)
			}
			if !reg.Uses("127.0.0.1:17002", c.(*redis.Codec).Variant(true, 0), "") || reg.Uses("127.0.0.1:1", c, "") {
				t.Error("Uses")
			}
			reg.Retain(nil)
			if reg.Uses("127.0.0.1:17002", c, "") {
				t.Error("a retired topology is still used")
			}
		})
	}
}
