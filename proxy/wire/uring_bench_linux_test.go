//go:build linux

package wire

import (
	"fmt"
	"net"
	"syscall"
	"testing"
)

// BenchmarkTurnSend sends 64 bytes to each of k loopback TCP sockets, as a
// loop's turn does: one write(2) each, or all k in one io_uring_enter
// (ioRing). One op is one socket's send; the peers are drained between
// turns, outside the timer. The CPU of a send includes the receiver's TCP
// input, which loopback runs in the sender's call.
func BenchmarkTurnSend(b *testing.B) {
	for _, k := range []int{1, 2, 4, 32} {
		for _, how := range []string{"write", "ring"} {
			b.Run(fmt.Sprintf("sockets=%d/%s", k, how), func(b *testing.B) {
				benchTurnSend(b, k, how == "ring")
			})
		}
	}
}

func benchTurnSend(b *testing.B, k int, ring bool) {
	var r *ioRing
	if ring {
		var err error
		if r, err = newIORing(); err != nil {
			b.Skipf("no io_uring here: %v", err)
		}
		defer r.close()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	sends := make([]ringOp, k)
	peers := make([]int, k)
	p := make([]byte, 64)
	for i := range k {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		sends[i].fd, peers[i] = rawFD(b, c), rawFD(b, s)
	}
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += k {
		if ring {
			for j := range sends {
				sends[j] = ringOp{fd: sends[j].fd, p: p}
			}
			r.submit(sends)
			for _, s := range sends {
				if s.err != nil || s.n != len(p) {
					b.Fatalf("a send took %d of %d bytes: %v", s.n, len(p), s.err)
				}
			}
		} else {
			for _, s := range sends {
				if _, err := sysWrite(s.fd, p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		for _, fd := range peers {
			_, _ = syscall.Read(fd, buf)
		}
		b.StartTimer()
	}
}

// rawFD is c's descriptor, which stays open as long as c.
func rawFD(b *testing.B, c net.Conn) int {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var fd int
	_ = raw.Control(func(u uintptr) { fd = int(u) })
	return fd
}
