package interop

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// silentProvider accepts connections on 127.0.0.1, reads what it is sent
// and never answers.
func silentProvider(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, nc) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, nc := range conns {
			_ = nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestPolicyDefaultTimeout: a provider that accepts and never answers,
// behind a route with no timeout: a dubbo-go client (its own timeout 10 s)
// gets the proxy's default-timeout reply (SERVER_TIMEOUT, shortened to 1 s
// here) and the proxy holds nothing for the request afterwards.
func TestPolicyDefaultTimeout(t *testing.T) {
	silent := silentProvider(t)
	r := routes{Listen: harness.FreeAddr(t), V1: silent, V2: silent, W1: 100}
	srv := startProxy(t, r)
	srv.SetDefaultTimeout(time.Second)
	c := newClient(t, r.Listen, dubboclient.Options{Timeout: 10 * time.Second})

	reply, err := c.SayHello(context.Background(), "anyone")
	t.Logf("SayHello to a silent provider: %q, %v", reply, err)
	if err == nil || dubboclient.IsTimeout(err) || !strings.Contains(err.Error(), "default timeout") {
		t.Fatalf("SayHello = %q, %v; want the proxy's default-timeout reply, not the client's own timeout", reply, err)
	}
	active := srv.Metrics().Active.WithLabelValues("dubbo")
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(active) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(active); n != 0 {
		t.Fatalf("requests_active = %v after the timeout reply, want 0", n)
	}
	if n := testutil.ToFloat64(srv.Metrics().LocalReplies.WithLabelValues("dubbo", "timeout")); n != 1 {
		t.Fatalf("local_replies{reason=timeout} = %v, want 1", n)
	}
}
