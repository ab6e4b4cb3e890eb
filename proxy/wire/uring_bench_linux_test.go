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
func BenchmarkTurnSend(b *testing.B) { benchTurn(b, false) }

// BenchmarkTurnRecv reads 64 bytes from each of k loopback TCP sockets, as
// a loop's read-ahead does (prefetch): one read(2) each, or all k in one
// io_uring_enter. One op is one socket's read; the peers send between
// turns, outside the timer.
func BenchmarkTurnRecv(b *testing.B) { benchTurn(b, true) }

func benchTurn(b *testing.B, recv bool) {
	for _, k := range []int{1, 2, 4, 32} {
		for _, how := range []string{"syscall", "ring"} {
			b.Run(fmt.Sprintf("sockets=%d/%s", k, how), func(b *testing.B) {
				benchTurnIO(b, k, recv, how == "ring")
			})
		}
	}
}

func benchTurnIO(b *testing.B, k int, recv, ring bool) {
	var r *ioRing
	if ring {
		var err error
		if r, err = newIORing(); err != nil {
			b.Skipf("no io_uring here: %v", err)
		}
		defer r.close()
	}
	// Each turn does its k operations on ours; the peers' side, outside
	// the timer, drains (recv false) or fills (recv true) them.
	local, remote := tcpPairs(b, k)
	ours, peers := make([]int, k), make([]int, k)
	for i := range k {
		ours[i], peers[i] = rawFD(b, local[i]), rawFD(b, remote[i])
	}
	p := make([]byte, 64)
	bufs := make([][]byte, k)
	for i := range bufs {
		bufs[i] = make([]byte, 4096)
	}
	spare := make([]byte, 64<<10)
	ops := make([]ringOp, k)
	peerTurn := func() {
		for _, fd := range peers {
			if recv {
				_, _ = sysWrite(fd, p)
			} else {
				_, _ = syscall.Read(fd, spare)
			}
		}
	}
	if recv {
		peerTurn()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += k {
		if ring {
			for j, fd := range ours {
				ops[j] = ringOp{fd: fd, p: p, recv: recv}
				if recv {
					ops[j].p = bufs[j]
				}
			}
			r.submit(ops)
			for _, o := range ops {
				if o.err != nil || o.n != len(p) {
					b.Fatalf("an operation did %d of %d bytes: %v", o.n, len(p), o.err)
				}
			}
		} else {
			for j, fd := range ours {
				var n int
				var err error
				if recv {
					n, err = sysRead(fd, bufs[j])
				} else {
					n, err = sysWrite(fd, p)
				}
				if err != nil || n != len(p) {
					b.Fatalf("an operation did %d of %d bytes: %v", n, len(p), err)
				}
			}
		}
		b.StopTimer()
		peerTurn()
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
