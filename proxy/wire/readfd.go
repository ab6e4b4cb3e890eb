package wire

import (
	"io"
	"os"
	"syscall"
)

// runFD is the loop of a reader on a socket. It spends its life inside
// one syscall.RawConn.Read call, whose callback (serveFD) reads, handles
// the frames and reads again; it leaves only when a deadline fires or the
// loop ends.
//
// Why inside one call: Go's poller clears a socket's readiness when a
// RawConn.Read (or a net.Conn.Read) begins, so a loop that began a new
// call after each read would have to read until EAGAIN before waiting,
// lest bytes that came meanwhile go unnoticed: one wasted syscall per
// request at pipeline depth 1. Within one call the readiness is never
// cleared: bytes that arrive after a read, while its frames are handled,
// mark the socket ready (edge-triggered epoll reports each arrival), and
// the wait that follows returns at once. So after a short read (the
// socket gave less than the room there was, so it had no more) the
// callback waits without reading again; TestReaderWakesForBytesSentWhileHandling
// holds it to that. One thing a short read does not say: whether the
// peer's FIN came too. A FIN arriving with the last bytes, before the
// poller collected their event, shares that event, and the read that
// took the bytes does not report it (the next one would). Such a wait is
// unsure: it ends within verifyTick or two, and one read looks
// (TestReaderSeesFINThatCameWithBytes).

func (l *Reader) runFD() error {
	for {
		if err := l.arm(); err != nil {
			return err
		}
		l.err = nil
		err := l.raw.Read(l.readFn)
		if l.err != nil {
			return l.err
		}
		if err != nil {
			if err = l.classify(err); err != nil {
				return err
			}
		}
	}
}

// serveFD is the RawConn callback of runFD: it returns false to wait for
// the socket to be readable, true (with l.err set) when the loop ends. On
// an event loop it is also the loop's serve, and its first read may be
// one the loop made ahead (Loop.prefetch, l.pre).
func (l *Reader) serveFD(fd uintptr) bool {
	for {
		var n int
		var err error
		if l.pre.ok {
			// The event loop read the socket already (Loop.prefetch), into
			// the buffer as it still is.
			n, err = l.pre.n, l.pre.err
			l.pre = prefetched{}
		} else {
			if l.err = l.ensure(); l.err != nil {
				return true
			}
			n, err = sysRead(int(fd), l.buf[l.end:])
		}
		room := len(l.buf) - l.end // what the read had room for
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			l.unsure = false
			if !l.incomplete() && l.draining() {
				l.err = ErrDrained
				return true
			}
			return l.wait()
		case err != nil:
			l.err = os.NewSyscallError("read", err)
			return true
		case n == 0:
			l.err = io.EOF
			return true
		}
		if l.err = l.consume(n); l.err != nil {
			return true
		}
		// A drain reads until EAGAIN: it must see all the peer sent.
		if n < room && !l.draining() {
			l.unsure = l.lc == nil // a loop's epoll is level-triggered: it reports a FIN still unread
			return l.wait()
		}
	}
}

// wait prepares the loop to wait for the socket: the buffer goes back to
// the pool and the deadline the state calls for is set.
func (l *Reader) wait() bool {
	l.park()
	if l.err = l.arm(); l.err != nil {
		return true
	}
	return false
}
