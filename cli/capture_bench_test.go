package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/capture/iptables"
	"github.com/metamesh/metamesh/proxy/capture/netnstest"
)

// meshBench is a client host whose outbound TCP is captured (port
// directPort excluded) and served by `metamesh run` with both the capture
// port and its bound listeners (127.0.0.1:20880, the greeter service), and
// a server host with a Dubbo provider on 20880 and byte sinks on
// passthroughPort and directPort. Root only; it skips, saying why,
// otherwise.
type meshBench struct {
	client, server *netnstest.Host
}

const passthroughPort, directPort = "9000", "9001"

func newMeshBench(b *testing.B) *meshBench {
	n := netnstest.New(b)
	needIPTables(b)
	m := &meshBench{client: n.Host("client"), server: n.Host("server")}
	startProviderOn(b, m.server, "server", net.JoinHostPort(m.server.Addr.String(), "20880"))
	for _, port := range []string{passthroughPort, directPort} {
		startSink(b, m.server, port)
	}
	cfg := iptables.DefaultConfig()
	cfg.ExcludeOutboundPorts = []uint16{9001}
	if err := m.client.Do(func() error { _, err := iptables.Apply(context.Background(), cfg, iptables.Options{}); return err }); err != nil {
		b.Fatalf("iptables in client: %v", err)
	}
	mesh := configDir(b, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%s]
  ports:
  - {number: 20880, name: dubbo, protocol: dubbo}
  endpoints:
  - {address: %s}
`, greeter, m.server.Addr))
	sidecar(b, m.client, sidecarBinary(b), "--config", mesh, "--log-level", "warn", "--capture-outbound", "127.0.0.1:15001",
		"--bind-listeners=true", "--listen-address", "127.0.0.1")
	return m
}

// startSink reads each connection to its end, then closes it.
func startSink(b *testing.B, h *netnstest.Host, port string) {
	ln := h.Listen(b, "tcp", net.JoinHostPort(h.Addr.String(), port))
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, nc); _ = nc.Close() }()
		}
	}()
}

// BenchmarkMeshDubboEcho: the same Dubbo echo load (8 connections, one
// call in flight on each) through one proxy's bound listener and through
// its outbound capture port (the client dials the provider's address), in
// alternating rounds of 4000 calls; each b.N is one pair of rounds. It
// reports the median ns per call of each and the median ratio
// capture/listener (1.0: capture costs nothing).
func BenchmarkMeshDubboEcho(b *testing.B) {
	m := newMeshBench(b)
	const conns, calls = 8, 4000
	round := func(addr string) time.Duration {
		ncs := make([]net.Conn, conns)
		for i := range ncs {
			nc, err := m.client.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			ncs[i] = nc
		}
		errs := make(chan error, conns)
		var wg sync.WaitGroup
		start := time.Now()
		for _, nc := range ncs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := uint64(1); id <= calls/conns; id++ {
					if _, err := call(nc, id); err != nil {
						errs <- fmt.Errorf("%s: %w", addr, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		return elapsed
	}
	listener, captured := "127.0.0.1:20880", net.JoinHostPort(m.server.Addr.String(), "20880")
	round(listener) // warm the pools
	round(captured)
	var plain, capture, ratio []float64
	for b.Loop() {
		p, c := round(listener), round(captured)
		plain, capture = append(plain, float64(p)/calls), append(capture, float64(c)/calls)
		ratio = append(ratio, float64(c)/float64(p))
	}
	b.ReportMetric(median(plain), "listener-ns/call")
	b.ReportMetric(median(capture), "capture-ns/call")
	b.ReportMetric(median(ratio), "capture/listener")
}

// BenchmarkMeshPassthrough: a 64 MiB transfer to a port no service has,
// relayed by the proxy's outbound capture (passthrough), against the same
// transfer to an excluded port (direct), alternating; each b.N is one
// pair. It reports the median MB/s of each and the median ratio
// capture/direct of the throughputs.
func BenchmarkMeshPassthrough(b *testing.B) {
	m := newMeshBench(b)
	const size = 64 << 20
	chunk := make([]byte, 256<<10)
	transfer := func(port string) float64 {
		nc, err := m.client.Dial("tcp", net.JoinHostPort(m.server.Addr.String(), port))
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		start := time.Now()
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := nc.Write(chunk); err != nil {
				b.Fatalf("port %s: %v", port, err)
			}
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		// The sink closes once it has read everything.
		if _, err := io.Copy(io.Discard, nc); err != nil {
			b.Fatalf("port %s: %v", port, err)
		}
		return size / time.Since(start).Seconds() / 1e6
	}
	transfer(passthroughPort)
	var direct, capture, ratio []float64
	for b.Loop() {
		d, c := transfer(directPort), transfer(passthroughPort)
		direct, capture, ratio = append(direct, d), append(capture, c), append(ratio, c/d)
	}
	b.ReportMetric(median(direct), "direct-MB/s")
	b.ReportMetric(median(capture), "capture-MB/s")
	b.ReportMetric(median(ratio), "capture/direct")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
