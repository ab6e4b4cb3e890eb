package proxy

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/protocols/dubbo"
)

// silent is an upstream on 127.0.0.1 that accepts connections, reads
// what it is sent and never answers.
type silent struct {
	addr string
	mu   sync.Mutex
	read int64 // bytes
	shut int   // connections the proxy closed
}

func (s *silent) counts() (read int64, shut int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read, s.shut
}

func startSilent(t *testing.T) *silent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silent{addr: ln.Addr().String()}
	var (
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			conns = append(conns, nc)
			s.mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					k, err := nc.Read(buf)
					s.mu.Lock()
					s.read += int64(k)
					if err != nil {
						s.shut++
					}
					s.mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, nc := range conns {
			_ = nc.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

// pending is what the proxy still holds for requests in flight: the
// active gauge, the client connections' counts and the hosts' counts.
func pending(srv *Server) (gauge float64, inflight, hosts int64) {
	gauge = testutil.ToFloat64(srv.Metrics().Active.WithLabelValues("dubbo"))
	for _, cl := range srv.Snapshot().Clusters {
		for _, e := range cl.Endpoints {
			hosts += e.Host.Active()
		}
	}
	return gauge, srv.inflight(), hosts
}

// An upstream that accepts and never answers: with the route setting no
// timeout, the proxy's default timeout answers the client (Dubbo status
// 31) and lets go of the request. A route with a timeout of its own
// longer than the default keeps it.
func TestDefaultTimeoutAnswersForASilentUpstream(t *testing.T) {
	up := startSilent(t)
	srv, addr := startProxy(t, setup{V1: []string{up.addr}})
	srv.SetDefaultTimeout(100 * time.Millisecond)
	c := dial(t, addr)
	const n = 3
	for i := range n {
		c.send(dubbo.AppendRequest(nil, dubbo.Request{ID: uint64(i + 1), TwoWay: true, Service: svc, Method: "hang"}))
	}
	for range n {
		_, id, status, value, err := c.read()
		if err != nil || status != 31 || !strings.Contains(value, "default timeout") {
			t.Fatalf("reply %d: status %d %q err %v; want 31 (SERVER_TIMEOUT) naming the default timeout", id, status, value, err)
		}
	}
	waitUntil(t, 3*time.Second, "no request held", func() bool {
		g, in, h := pending(srv)
		return g == 0 && in == 0 && h == 0
	})
	if got := testutil.ToFloat64(srv.Metrics().LocalReplies.WithLabelValues("dubbo", "timeout")); got != n {
		t.Fatalf("local_replies{reason=timeout} = %v, want %d", got, n)
	}
}

// A route's own timeout governs its requests, even when it is longer than
// the default.
func TestRouteTimeoutOutlastsTheDefault(t *testing.T) {
	up := startEcho(t, "v1")
	up.delay.Store(int64(300 * time.Millisecond))
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, Policy: "timeout: 30s"})
	srv.SetDefaultTimeout(20 * time.Millisecond)
	if status, value := dial(t, addr).call(1, svc, "slow"); status != 20 || !strings.HasPrefix(value, "v1|slow") {
		t.Fatalf("status %d %q; want v1's reply: the route's 30s timeout, not the default, applies", status, value)
	}
}

// A client that goes away with requests in flight: they are released at
// once, without waiting for the upstream (which never answers) or a
// timeout (off here); the upstream connection stays for other clients.
func TestDepartedClientReleasesItsRequests(t *testing.T) {
	for _, tc := range []struct{ name, policy string }{
		{"no policy", ""},
		{"route timeout", "timeout: 60s"},
		{"retries", "retry_policy: {retry_on: reset, num_retries: 1}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startSilent(t)
			srv, addr := startProxy(t, setup{V1: []string{up.addr}, Policy: tc.policy})
			srv.SetDefaultTimeout(0)
			c := dial(t, addr)
			var sent int64
			const n = 3
			for i := range n {
				frame := dubbo.AppendRequest(nil, dubbo.Request{ID: uint64(i + 1), TwoWay: true, Service: svc, Method: "hang"})
				sent += int64(len(frame))
				c.send(frame)
			}
			waitUntil(t, 3*time.Second, "the upstream to get the requests", func() bool {
				_, in, h := pending(srv)
				read, _ := up.counts()
				return in == n && h == n && read == sent
			})
			// Reset, not FIN: a client that half-closes may still read
			// its replies, and is waited for.
			_ = c.nc.(*net.TCPConn).SetLinger(0)
			_ = c.nc.Close()
			waitUntil(t, 3*time.Second, "the departed client's requests released", func() bool {
				g, in, h := pending(srv)
				return g == 0 && in == 0 && h == 0
			})
			gone := testutil.ToFloat64(srv.Metrics().Requests.WithLabelValues("dubbo", svc, "default", "v1", statusClientGone))
			if gone != n {
				t.Fatalf("requests_total{status=%s} = %v, want %d", statusClientGone, gone, n)
			}
			if _, shut := up.counts(); shut != 0 {
				t.Fatalf("%d upstream connections closed; withdrawing requests must not close shared ones", shut)
			}
		})
	}
}

// A client that goes away while its blocking command (a request on a
// connection of its own, let go once answered) waits for a reply that may
// never come: the request is released at once and that connection
// closed. The default timeout never applies to a client's own
// connection, so nothing else would end them.
func TestDepartedClientReleasesItsOwnConnection(t *testing.T) {
	srv, nc := startLines(t, "test-line-session")
	if _, err := fmt.Fprint(nc, "s-once hang\n"); err != nil {
		t.Fatal(err)
	}
	cl := srv.Snapshot().Clusters["slow"]
	host := cl.Endpoints[0].Host
	active := srv.Metrics().Active.WithLabelValues("test-line-session")
	waitUntil(t, 3*time.Second, "the request in flight", func() bool {
		return cl.Load.Active() == 1 && host.Active() == 1
	})
	_ = nc.(*net.TCPConn).SetLinger(0) // reset: a half-closed client is waited for
	_ = nc.Close()
	waitUntil(t, 3*time.Second, "the departed client's request released", func() bool {
		return cl.Load.Active() == 0 && host.Active() == 0 && testutil.ToFloat64(active) == 0
	})
	waitUntil(t, 3*time.Second, "its connection closed", func() bool {
		return testutil.ToFloat64(srv.Metrics().UpstreamCx.WithLabelValues(host.Addr)) == 0
	})
}
