package proxy

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols/dubbo"
)

// TestShutdownAnswersWhatWasSent: requests a client wrote before the drain
// began all get their replies (none is dropped unread from the socket),
// the client gets Dubbo's readonly event, then the connection closes.
func TestShutdownAnswersWhatWasSent(t *testing.T) {
	const n = 2000
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	c := dial(t, addr)
	if status, _ := c.call(1, svc, "warm"); status != 20 {
		t.Fatalf("warm-up: status %d", status)
	}
	var batch []byte
	for id := uint64(100); id < 100+n; id++ {
		batch = dubbo.AppendRequest(batch, dubbo.Request{ID: id, TwoWay: true, Service: svc, Method: "m", Args: []string{"x"}})
	}
	c.send(batch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(ctx) }()

	seen := map[uint64]bool{}
	for {
		_, id, status, _, err := c.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		if status != 20 || id < 100 || id >= 100+n || seen[id] {
			t.Fatalf("reply id %d status %d", id, status)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d of %d requests sent before the drain were answered", len(seen), n)
	}
	if c.events != 1 {
		t.Fatalf("got %d readonly events, want 1", c.events)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
