package interop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// pubsubConfig fronts one redis-server with a codec that answers HELLO 3.
func pubsubConfig(listen, upstream string) string {
	return redisProtocolConfig("redis-resp3", "{resp3: true}", listen, upstream)
}

// redisProtocolConfig is the config of a proxy on listen for one
// redis-server at upstream, through an ApplicationProtocol named name
// whose Redis codec has codecConfig.
func redisProtocolConfig(name, codecConfig, listen, upstream string) string {
	return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ApplicationProtocol
metadata: {name: %[1]s}
spec: {codec: redis, codecConfig: %[2]s}
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  ports: [{number: %[3]s, name: redis, protocol: %[1]s}]
  endpoints: [{address: 127.0.0.1, ports: {redis: %[4]s}}]
`, name, codecConfig, portOf(listen), portOf(upstream))
}

// TestRedisPubSub: go-redis subscribers through the proxy, RESP2 and
// RESP3, each get every message published through the proxy, in order;
// a pattern subscriber gets them with its pattern.
func TestRedisPubSub(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	applyConfigDir(t, pubsubConfig(listen, up.Addr))
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := redis.NewClient(&redis.Options{Addr: listen, Protocol: proto, MaxRetries: -1, PoolSize: 2, DisableIdentity: true})
			t.Cleanup(func() { _ = c.Close() })
			channel := fmt.Sprintf("news%d", proto)
			const subscribers, messages = 100, 50
			subs := make([]*redis.PubSub, subscribers)
			for i := range subs {
				if i == 0 {
					subs[i] = c.PSubscribe(ctx, channel[:3]+"*")
				} else {
					subs[i] = c.Subscribe(ctx, channel)
				}
				t.Cleanup(func() { _ = subs[i].Close() })
				if _, err := subs[i].Receive(ctx); err != nil { // the confirmation
					t.Fatalf("subscriber %d: %v", i, err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, subscribers)
			for i, ps := range subs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range messages {
						m, err := ps.ReceiveMessage(ctx)
						switch {
						case err != nil:
							errs <- fmt.Errorf("subscriber %d, message %d: %w", i, n, err)
							return
						case m.Channel != channel || m.Payload != fmt.Sprint("m", n):
							errs <- fmt.Errorf("subscriber %d got %q on %q, want m%d on %q", i, m.Payload, m.Channel, n, channel)
							return
						case i == 0 && m.Pattern != channel[:3]+"*":
							errs <- fmt.Errorf("pattern subscriber got pattern %q", m.Pattern)
							return
						}
					}
				}()
			}
			for n := range messages {
				got, err := c.Publish(ctx, channel, fmt.Sprint("m", n)).Result()
				noErr(t, err)
				if got != subscribers {
					t.Fatalf("PUBLISH reached %d subscribers, want %d", got, subscribers)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestRedisSubscriberMode: a RESP2 client that subscribes may send only
// what redis-server allows in subscriber mode; once it has unsubscribed
// from everything its commands work again, on the shared connections.
func TestRedisSubscriberMode(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	applyConfigDir(t, pubsubConfig(listen, up.Addr))
	nc, err := net.Dial("tcp", listen)
	noErr(t, err)
	defer nc.Close()
	rd := bufio.NewReader(nc)
	exchange := func(req, want string) {
		t.Helper()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		_, err := io.WriteString(nc, req)
		noErr(t, err)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(rd, got); err != nil || string(got) != want {
			t.Fatalf("%q: got %q (%v), want %q", req, got, err, want)
		}
	}
	exchange("SET k v\r\n", "+OK\r\n")
	exchange("UNSUBSCRIBE\r\n", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
	exchange("SUBSCRIBE a b\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
	exchange("GET k\r\n", "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
	exchange("PING\r\n", "*2\r\n$4\r\npong\r\n$0\r\n\r\n")
	direct := redis.NewClient(&redis.Options{Addr: up.Addr})
	defer direct.Close()
	noErr(t, direct.Publish(context.Background(), "b", "hi").Err())
	exchange("PSUBSCRIBE p*\r\n", "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$2\r\nhi\r\n*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n")
	exchange("UNSUBSCRIBE a b\r\n", "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n")
	exchange("PUNSUBSCRIBE\r\n", "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n")
	exchange("GET k\r\n", "$1\r\nv\r\n")
	// RESET leaves subscriber mode too.
	exchange("SUBSCRIBE a\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
	exchange("RESET\r\n", "+RESET\r\n")
	exchange("GET k\r\n", "$1\r\nv\r\n")
	if n := val(t, direct.PubSubNumSub(context.Background(), "a")); n["a"] != 0 {
		t.Errorf("after RESET, channel a has %d subscribers on the server, want 0", n["a"])
	}
}

// clusterPubSub: on a Redis Cluster, shard channels of slots on every
// primary (SSUBSCRIBE on the slot's node, SPUBLISH by the slot) and a
// plain channel (SUBSCRIBE and PUBLISH on any node: the cluster
// broadcasts) each deliver every message to a plain client: a shard
// channel's in order (one node publishes them all); a plain channel's
// PUBLISHes go to any node, and Redis Cluster keeps the order of one
// node's messages only.
func clusterPubSub(t *testing.T, p *clusterProxy) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := p.client(t, 2)
	const messages = 20
	channels := []string{"{a}ch", "{b}ch", "{c}ch", "plain"} // slots 15495, 3300, 7365: one per primary
	subs := make([]*redis.PubSub, len(channels))
	for i, ch := range channels {
		if ch == "plain" {
			subs[i] = c.Subscribe(ctx, ch)
		} else {
			subs[i] = c.SSubscribe(ctx, ch)
		}
		t.Cleanup(func() { _ = subs[i].Close() })
		if _, err := subs[i].Receive(ctx); err != nil {
			t.Fatalf("subscribing to %s: %v", ch, err)
		}
	}
	for n := range messages {
		for _, ch := range channels {
			var got int64
			var err error
			if ch == "plain" {
				got, err = c.Publish(ctx, ch, fmt.Sprint("m", n)).Result()
			} else {
				got, err = c.SPublish(ctx, ch, fmt.Sprint("m", n)).Result()
			}
			noErr(t, err)
			if got != 1 && ch != "plain" { // PUBLISH counts the receiving node's subscribers only
				t.Fatalf("SPUBLISH %s reached %d subscribers, want 1", ch, got)
			}
		}
	}
	for i, ps := range subs {
		seen := map[string]bool{}
		for n := range messages {
			m, err := ps.ReceiveMessage(ctx)
			noErr(t, err)
			want := fmt.Sprint("m", n)
			if channels[i] == "plain" {
				want = m.Payload // any order, each once
			}
			if m.Channel != channels[i] || m.Payload != want || seen[m.Payload] {
				t.Fatalf("subscriber of %s got %q on %q (message %d), want m%d", channels[i], m.Payload, m.Channel, n, n)
			}
			seen[m.Payload] = true
		}
	}
}
