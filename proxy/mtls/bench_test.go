package mtls_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// BenchmarkMeshHandshake is one mutual TLS connection between two proxies
// over 127.0.0.1 TCP (not net.Pipe, whose unbuffered writes deadlock on
// TLS 1.3's session-ticket write): the server side as a proxy's inbound
// port runs it, the client side as a cluster's dial, both verifying the
// other's SPIFFE ID. "full" pays the certificate signatures; "resumed"
// is a reconnection with the cluster's session cache. Its rate is the
// handshakes a proxy sustains per core (docs/benchmarks.md).
func BenchmarkMeshHandshake(b *testing.B) {
	a := authority(b)
	srv, _ := mesh(b, a, greeter)
	cli, _ := mesh(b, a, batch)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				tc := tls.Server(nc, srv.Server())
				if tc.HandshakeContext(context.Background()) == nil {
					_, _ = tc.Write([]byte{1}) // the client reads it: the server accepted its certificate
				}
			}()
		}
	}()
	ids := []spiffeid.ID{spiffeid.RequireFromString(greeter)}
	for _, bc := range []struct {
		name    string
		resumed bool
	}{{"full", false}, {"resumed", true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := cli.Client("bench-"+bc.name, ids)
			if !bc.resumed {
				cfg = cfg.Clone()
				cfg.ClientSessionCache = nil
			}
			b.ReportAllocs()
			for b.Loop() {
				nc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				tc := tls.Client(nc, cfg)
				var one [1]byte
				if _, err := tc.Read(one[:]); err != nil {
					b.Fatal(err)
				}
				_ = nc.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}
