//go:build linux

package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/wire"
)

// TestLoopHandoffsCounted: a handler that waits on one of the epoll
// mode's event loops is handed off the loop by its watchdog, and the
// proxy's metamesh_event_loop_handoffs_total counts it.
func TestLoopHandoffsCounted(t *testing.T) {
	srv := New(zap.NewNop(), metrics.NewProxy())
	if err := srv.SetIOMode(IOEpoll); err != nil {
		t.Fatal(err)
	}
	handoffs := func() float64 {
		t.Helper()
		n, err := testutil.GatherAndCount(srv.Metrics().Registry, "metamesh_event_loop_handoffs_total")
		if err != nil || n != 1 {
			t.Fatalf("metamesh_event_loop_handoffs_total: %d series, %v", n, err)
		}
		return testutil.ToFloat64(srv.loopHandoffs())
	}
	before := handoffs()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	codec, err := redis.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := srv.loopFor(accepted, codec, 0).Enroll(accepted)
	if nc == accepted {
		t.Fatal("the connection was not enrolled on a loop")
	}
	release := make(chan struct{})
	done := make(chan error, 1)
	w := wire.NewWriter(nc, 0)
	go func() {
		done <- wire.NewReader(nc, codec, wire.ReadOptions{}).Run(func(*protocols.Message) error {
			<-release // the handler waits, holding the loop
			return nil
		}, func() {})
		w.Close()
	}()
	if _, err := client.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); handoffs() == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("metamesh_event_loop_handoffs_total stayed at %v while a handler waited", before)
		}
	}
	close(release)
	_ = client.Close()
	<-done // the read loop ends at the client's close
}
