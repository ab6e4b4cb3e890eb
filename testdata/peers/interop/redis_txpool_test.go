package interop

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// connectionsReceived is the server's total_connections_received (INFO
// stats): every connection it ever accepted.
func connectionsReceived(t *testing.T, direct *redis.Client) int {
	t.Helper()
	info, err := direct.Info(context.Background(), "stats").Result()
	noErr(t, err)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			noErr(t, err)
			return n
		}
	}
	t.Fatalf("no total_connections_received in INFO stats:\n%s", info)
	return 0
}

// TestRedisTxConnectionReuse: go-redis runs 2,000 TxPipelined through the
// proxy, paced at up to 1,000/s by 4 clients, and every result is right;
// the server accepts at most the idle pool's bound of new connections
// over the run, where it accepted one per transaction when each
// transaction dialed its own.
func TestRedisTxConnectionReuse(t *testing.T) {
	const total, workers = 2000, 4
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	applyConfigDir(t, redisPolicyConfig(listen, "", "", up.Addr))
	c := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1, PoolSize: workers, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	for i := range 10 { // the shared upstream connections are up
		noErr(t, c.Set(ctx, fmt.Sprintf("warm:%d", i), i, 0).Err())
	}
	before := connectionsReceived(t, up.Client)

	tokens := make(chan int)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := range total {
			<-tick.C
			tokens <- i
		}
		close(tokens)
	}()
	var failed atomic.Int32
	var firstErr sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range tokens {
				key := fmt.Sprintf("tx:%d", i)
				cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, key, i, 0)
					p.IncrBy(ctx, key, 1000)
					p.Get(ctx, key)
					p.Incr(ctx, "tx:count")
					return nil
				})
				if err == nil && cmds[2].(*redis.StringCmd).Val() != strconv.Itoa(i+1000) {
					err = fmt.Errorf("GET %s = %q in the transaction, want %d", key, cmds[2].(*redis.StringCmd).Val(), i+1000)
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("transaction %d: %v", i, err) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	grew := connectionsReceived(t, up.Client) - before
	t.Logf("%d transactions in %v (%.0f/s), %d failed; the server accepted %d connections",
		total, elapsed.Round(time.Millisecond), total/elapsed.Seconds(), failed.Load(), grew)
	if n := val(t, up.Client.Get(ctx, "tx:count")); n != strconv.Itoa(total) {
		t.Errorf("tx:count = %s on the server, want %d", n, total)
	}
	if grew > upstream.DefaultMaxIdleDedicated {
		t.Fatalf("the server accepted %d connections for %d transactions, want at most %d (the idle pool's bound)",
			grew, total, upstream.DefaultMaxIdleDedicated)
	}
}

// TestRedisTxAbandonedMultiDoesNotLeak: a client opens a transaction,
// queues a SET and disconnects; the next client's transaction, on the
// same upstream connection reused, neither runs that SET nor sees the
// MULTI it left.
func TestRedisTxAbandonedMultiDoesNotLeak(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	applyConfigDir(t, redisPolicyConfig(listen, "", "", up.Addr))
	ctx := context.Background()
	b := redisClient(t, listen)
	noErr(t, b.Ping(ctx).Err()) // b's own connection to the proxy is up

	// Each attempt reuses the connection when the proxy has put it back
	// by the time b asks: the server runs the reset first, and the proxy
	// reads its reply a moment later, so an attempt may find it not back
	// yet (b's transaction then dials a connection of its own).
	reused := 0
	for attempt := 0; attempt < 5 && reused == 0; attempt++ {
		leak := fmt.Sprintf("leak:%d", attempt)
		id := abandonMulti(t, listen, up, leak)
		waitFor(t, 5*time.Second, "the proxy to reset the abandoned connection, not close it", func() bool {
			line := clientLine(t, up, id)
			return line != "" && !strings.Contains(line, " cmd=set ")
		})
		before := connectionsReceived(t, up.Client)
		cmds, err := b.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Get(ctx, leak)
			p.Incr(ctx, "b:count")
			return nil
		})
		if err != nil && err != redis.Nil {
			t.Fatalf("attempt %d: the next client's transaction: %v", attempt, err)
		}
		if err := cmds[0].Err(); err != redis.Nil {
			t.Fatalf("attempt %d: GET %s in the next transaction: %v, want nil (the abandoned SET ran)", attempt, leak, err)
		}
		if n := cmds[1].(*redis.IntCmd).Val(); n != int64(attempt+1) {
			t.Fatalf("attempt %d: INCR b:count = %d, want %d", attempt, n, attempt+1)
		}
		if n := val(t, up.Client.Exists(ctx, leak)); n != 0 {
			t.Fatalf("attempt %d: %s exists on the server: the abandoned transaction ran", attempt, leak)
		}
		grew := connectionsReceived(t, up.Client) - before
		t.Logf("attempt %d: the server accepted %d connections for the next transaction", attempt, grew)
		if grew == 0 {
			reused++
		}
	}
	if reused == 0 {
		t.Fatal("no attempt reused the abandoned connection: each transaction dialed its own")
	}
}

// abandonMulti sends MULTI and SET key through the proxy on a raw
// connection, reads +OK and +QUEUED, and disconnects; it returns the
// server's client id of the upstream connection the SET was queued on.
func abandonMulti(t *testing.T, listen string, up *redispeer.Server, key string) string {
	t.Helper()
	nc, err := net.Dial("tcp", listen)
	noErr(t, err)
	defer nc.Close()
	_, err = fmt.Fprintf(nc, "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n", len(key), key)
	noErr(t, err)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(nc)
	for _, want := range []string{"+OK\r\n", "+QUEUED\r\n"} {
		line, err := r.ReadString('\n')
		noErr(t, err)
		if line != want {
			t.Fatalf("MULTI; SET %s through the proxy: %q, want %q", key, line, want)
		}
	}
	list := val(t, up.Client.ClientList(context.Background()))
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " multi=1 ") {
			id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
			return id
		}
	}
	t.Fatalf("no client in MULTI on the server:\n%s", list)
	return ""
}

// clientLine is the CLIENT LIST line of the server's client id, or "".
func clientLine(t *testing.T, up *redispeer.Server, id string) string {
	t.Helper()
	for _, line := range strings.Split(val(t, up.Client.ClientList(context.Background())), "\n") {
		if strings.HasPrefix(line, "id="+id+" ") {
			return line
		}
	}
	return ""
}

// TestRedisTxReuseWithUpstreamAuth: RESET logs a connection out, so the
// reset of a reused connection logs it in again with the listener's
// upstream password: sequential transactions through a password-protected
// server all succeed on one reused connection.
func TestRedisTxReuseWithUpstreamAuth(t *testing.T) {
	up := redispeer.StartWith(t, "--requirepass", "s3cret")
	direct := redis.NewClient(&redis.Options{Addr: up.Addr, Password: "s3cret", MaxRetries: -1})
	t.Cleanup(func() { _ = direct.Close() })
	listen := harness.FreeAddr(t)
	applyConfigDir(t, redisProtocolConfig("redis-auth", "{upstreamPassword: s3cret}", listen, up.Addr))
	c := redisClient(t, listen)
	ctx := context.Background()
	before := connectionsReceived(t, direct)
	for i := range 20 {
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, "authed:count")
			return nil
		})
		noErr(t, err)
		if n := cmds[0].(*redis.IntCmd).Val(); n != int64(i+1) {
			t.Fatalf("transaction %d: INCR = %d", i, n)
		}
	}
	// One client, one transaction at a time: a connection in use and
	// another being reset (2) is the rule; dialing for half of them is not
	// reuse.
	if grew := connectionsReceived(t, direct) - before; grew >= 10 {
		t.Fatalf("the server accepted %d connections for 20 transactions one after another, want fewer than 10", grew)
	}
}
