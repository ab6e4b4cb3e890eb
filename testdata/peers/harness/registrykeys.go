package harness

import (
	"context"
	"path"
	"sort"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Keys lists what is registered in the server: every ZooKeeper node's path
// (but /zookeeper's), or every etcd key, with its data, by path. It
// is how a test sees what the providers wrote.
func (s *RegistryServer) Keys(t testing.TB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]string{}
	switch s.Kind {
	case "zookeeper":
		conn, _, err := zk.Connect([]string{s.Addr}, 4*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietZK{}))
		if err != nil {
			t.Fatalf("harness: zookeeper %s: %v", s.Addr, err)
		}
		defer conn.Close()
		if err := walkZK(ctx, conn, "/", out); err != nil {
			t.Fatalf("harness: zookeeper %s: %v", s.Addr, err)
		}
	case "etcd":
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Addr}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("harness: etcd %s: %v", s.Addr, err)
		}
		defer cli.Close()
		resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey())
		if err != nil {
			t.Fatalf("harness: etcd %s: %v", s.Addr, err)
		}
		for _, kv := range resp.Kvs {
			out[string(kv.Key)] = string(kv.Value)
		}
	}
	return out
}

// SortedKeys are the paths of Keys, sorted.
func SortedKeys(keys map[string]string) []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func walkZK(ctx context.Context, conn *zk.Conn, p string, out map[string]string) error {
	if p == "/zookeeper" || ctx.Err() != nil {
		return ctx.Err()
	}
	data, _, err := conn.Get(p)
	if err == zk.ErrNoNode {
		return nil // gone while walking
	}
	if err != nil {
		return err
	}
	out[p] = string(data)
	kids, _, err := conn.Children(p)
	if err != nil && err != zk.ErrNoNode {
		return err
	}
	for _, k := range kids {
		if err := walkZK(ctx, conn, path.Join(p, k), out); err != nil {
			return err
		}
	}
	return nil
}

// quietZK drops the ZooKeeper client's connection chatter.
type quietZK struct{}

func (quietZK) Printf(string, ...any) {}
