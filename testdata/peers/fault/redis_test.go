package fault

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/protocols"
	predis "github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// Each Redis call is INCRBY <prefix>:<n> <n> on a key never used before,
// so its own reply is n, whichever server answers it.
var redisSeq atomic.Int64

// redisFaults decodes commands with the project's codec and answers
// INCRBY bad:<n> with n (anything else: +OK).
func redisFaults(t testing.TB) *faultServer {
	codec, err := predis.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return startFaultServer(t, codec.Decode, func(m *protocols.Message) (reply, unknown, extra []byte) {
		key, _ := m.Headers.Get(predis.AttrKey)
		n, err := strconv.ParseInt(key[strings.IndexByte(key, ':')+1:], 10, 64)
		if err != nil {
			return []byte("+OK\r\n"), nil, []byte("+OK\r\n")
		}
		// The extra reply looks like another INCRBY's: the client must never get it.
		return []byte(":" + strconv.FormatInt(n, 10) + "\r\n"), nil, []byte(":999999999\r\n")
	})
}

// judgeRedis: the proxy's errors are "-ERR metamesh: …".
func judgeRedis(got int64, err error, want int64) (outcome, string) {
	switch {
	case err == nil && got == want:
		return own, ""
	case err != nil && strings.HasPrefix(err.Error(), "ERR metamesh:"):
		return native, ""
	}
	return wrong, fmt.Sprintf("want %d: got %d, %v", want, got, err)
}

// TestRedisUpstreamFaults: real go-redis clients on one listener routing by
// key prefix: good: → a redis-server, kill: → a redis-server killed and
// restarted, bad: → the fault server.
//
// The faulty route's client has one connection, so the proxy has at most
// one of its commands outstanding upstream: an extra reply nobody asked
// for can only be told from the next command's reply when no command is
// outstanding (Redis pairs replies by order), and the fault server sends
// it in the same write as the reply it follows.
func TestRedisUpstreamFaults(t *testing.T) {
	t.Parallel()
	good, killed := redispeer.Start(t), redispeer.Start(t)
	fs := redisFaults(t)
	c := &config{Codec: "redis", Clusters: map[string]string{"good": good.Addr, "kill": killed.Addr, "bad": fs.addr()},
		Hosts: []vhost{{Name: "cache", Domains: `["*"]`, Routes: []route{
			{Name: "bad", Attr: predis.AttrKey, Prefix: "bad:", Cluster: "bad", Timeout: "0.3s"},
			{Name: "kill", Attr: predis.AttrKey, Prefix: "kill:", Cluster: "kill"},
			{Name: "good", Cluster: "good"},
		}}}}
	srv := startProxy(t, c)
	client := func(conns int) *redis.Client {
		cl := redis.NewClient(&redis.Options{Addr: c.Listen, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
			PoolSize: conns, MinIdleConns: conns, ReadTimeout: 5 * time.Second, PoolTimeout: 30 * time.Second})
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	const callers = 4
	goodc, killc, badc := client(callers), client(callers), client(1)
	via := func(cl *redis.Client, prefix string) call {
		return func(g, i int) (outcome, string) {
			n := redisSeq.Add(1)
			got, err := cl.IncrBy(context.Background(), prefix+strconv.FormatInt(n, 10), n).Result()
			return judgeRedis(got, err, n)
		}
	}
	r := &rig{srv: srv, listener: "redis", fs: fs, callers: callers,
		good: via(goodc, "good:"), kill: via(killc, "kill:"), bad: via(badc, "bad:"),
		modes:           []mode{modeSilent, modeGarbage, modeHalf, modeExtra},
		killUpstream:    killed.Stop,
		restartUpstream: killed.Restart,
	}
	r.run(t)
}
