package interop

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// TestPolicyTimeout: a provider that takes 3 s gets the route's 1 s
// timeout reply (SERVER_TIMEOUT, naming the route) at 1 s ± 20%, and the
// same client's next call is served.
func TestPolicyTimeout(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, Policy: "timeout: 1s"}
	startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	ctx := context.Background()

	start := time.Now()
	reply, err := c.Sleep(ctx, 3000)
	took := time.Since(start)
	t.Logf("Sleep(3000) through a 1s route timeout: %q, %v after %v", reply, err, took)
	if err == nil || !strings.Contains(err.Error(), "route canary") || !strings.Contains(err.Error(), "no reply within 1s") {
		t.Fatalf("Sleep(3000) = %q, %v; want the timeout error naming route canary", reply, err)
	}
	if took < 800*time.Millisecond || took > 1200*time.Millisecond {
		t.Fatalf("timeout reply after %v, want 1s ± 20%%", took)
	}
	if reply, err := c.SayHello(ctx, "after"); err != nil || reply != "v1|after" {
		t.Fatalf("after the timeout: %q, %v", reply, err)
	}
}

// TestPolicyRetryConnectFailure: v1 lists a port nobody listens on before
// the real provider; with retries on connect-failure every call succeeds.
func TestPolicyRetryConnectFailure(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, V1Extra: harness.FreeAddr(t),
		Policy: "retry_policy: {retry_on: connect-failure, num_retries: 1}"}
	srv := startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	for i := range 50 {
		if reply, err := c.SayHello(context.Background(), payload(0, i)); err != nil || reply != "v1|"+payload(0, i) {
			t.Fatalf("call %d: %q, %v", i, reply, err)
		}
	}
	retries := testutil.ToFloat64(srv.Metrics().Retries.WithLabelValues("dubbo", iface, "canary", "outbound|20880|v1|"+iface))
	t.Logf("50 calls, %v retried", retries)
	if retries == 0 {
		t.Fatal("no retries counted: the dead endpoint was never picked")
	}
}

// TestPolicyMaxPending: 10,000 requests at once against a limit of 100
// in flight: 100 reach the provider (which sleeps 1 s), the rest get the
// overloaded reply (status 100) at once; the proxy's live heap is the same
// after a second such burst.
func TestPolicyMaxPending(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, Thresholds: "{max_requests: 100}"}
	srv := startProxy(t, r)
	burst := func() (served, overloaded int) {
		const conns, perConn = 10, 1000
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := range conns {
			wg.Go(func() {
				s, o := sleepBurst(t, r.Listen, g*perConn, perConn, 1000)
				mu.Lock()
				served, overloaded = served+s, overloaded+o
				mu.Unlock()
			})
		}
		wg.Wait()
		return served, overloaded
	}
	served, overloaded := burst()
	t.Logf("burst 1: %d served, %d overloaded", served, overloaded)
	if served+overloaded != 10000 || served < 100 || served > 200 {
		t.Fatalf("%d served and %d overloaded of 10,000; want about 100 served (the limit) and the rest overloaded", served, overloaded)
	}
	base := liveHeap()
	served, overloaded = burst()
	after := liveHeap()
	t.Logf("burst 2: %d served, %d overloaded; live heap %d KiB before, %d KiB after", served, overloaded, base>>10, after>>10)
	if int64(after)-int64(base) > 4<<20 {
		t.Fatalf("live heap grew %d KiB over a burst of 10,000", (int64(after)-int64(base))>>10)
	}
	if n := testutil.ToFloat64(srv.Metrics().Active.WithLabelValues("dubbo")); n != 0 {
		t.Fatalf("requests_active = %v after every reply", n)
	}
}

// sleepBurst writes n Sleep(ms) requests (IDs from first+1) on one
// connection at once and reads every reply, counting the provider's
// ("v1|slept") and the proxy's overloaded ones (status 100).
func sleepBurst(t *testing.T, addr string, first, n int, ms int32) (served, overloaded int) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	defer nc.Close()
	var out []byte
	for i := range n {
		out = appendSleep(out, uint64(first+i+1), ms)
	}
	go func() { _, _ = nc.Write(out) }()
	codec, _ := dubbo.New(nil)
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var buf []byte
	tmp := make([]byte, 64<<10)
	var m protocols.Message
	for served+overloaded < n {
		k, err := codec.Decode(buf, &m)
		if err != nil {
			t.Error(err)
			return served, overloaded
		}
		if k == 0 {
			r, err := nc.Read(tmp)
			if err != nil {
				t.Errorf("after %d replies: %v", served+overloaded, err)
				return served, overloaded
			}
			buf = append(buf, tmp[:r]...)
			continue
		}
		status, value, err := dubbo.ParseResponseValue(buf[:k])
		buf = buf[k:]
		switch {
		case err == nil && status == 20 && value == "v1|slept":
			served++
		case err == nil && status == 100 && strings.Contains(value, "limit"):
			overloaded++
		default:
			t.Errorf("reply %d: status %d %q, %v", m.ID, status, value, err)
			return served, overloaded
		}
	}
	return served, overloaded
}

// appendSleep appends a two-way Dubbo request GreetingsService.Sleep(ms)
// as dubbo-go writes it (see protocols/dubbo/testdata/captured).
func appendSleep(dst []byte, id uint64, ms int32) []byte {
	e := hessian.NewEncoder()
	for _, v := range []any{"2.0.2", iface, "", "Sleep", "I", ms,
		map[any]any{"path": iface, "interface": iface}} {
		_ = e.Encode(v)
	}
	body := e.Buffer()
	var h [16]byte
	h[0], h[1], h[2] = 0xda, 0xbb, 0xc2
	binary.BigEndian.PutUint64(h[4:], id)
	binary.BigEndian.PutUint32(h[12:], uint32(len(body)))
	return append(append(dst, h[:]...), body...)
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
