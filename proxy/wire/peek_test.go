package wire_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/wire"
)

// TestPeek: the first byte is seen and left for the next reader; a client
// that closes without sending gives io.EOF.
func TestPeek(t *testing.T) {
	for _, first := range []string{"\xda\xbb\xc2", "PRI * HTTP/2.0\r\n", "\x16\x03\x01", ""} {
		t.Run("", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err == nil {
					_, _ = c.Write([]byte(first))
					_ = c.(*net.TCPConn).CloseWrite()
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
				}
			}()
			nc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			b, err := wire.Peek(nc.(*net.TCPConn), time.Now().Add(10*time.Second))
			if first == "" {
				if err != io.EOF {
					t.Fatalf("Peek = %#x, %v; want io.EOF", b, err)
				}
				return
			}
			if err != nil || b != first[0] {
				t.Fatalf("Peek = %#x, %v; want %#x", b, err, first[0])
			}
			got, err := io.ReadAll(nc)
			if err != nil || string(got) != first {
				t.Fatalf("read after the peek: %q, %v; want %q", got, err, first)
			}
		})
	}
}
