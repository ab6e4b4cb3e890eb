//go:build linux

package wire

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// loopConn is a socket moved onto a Loop (Enroll): the net.Conn its
// Reader and Writer use instead of Go's. Go's poller no longer watches
// the socket (each arrival would otherwise also wake a thread sleeping in
// the runtime's own epoll_wait, for nothing); the loop reads it, and a
// write that finds the socket full waits for the loop to see room
// (EPOLLOUT), so a slow peer costs a parked goroutine, not a thread.
type loopConn struct {
	lp           *Loop
	rd           *Reader // its read loop (NewReader)
	laddr, raddr net.Addr
	id           uint64
	done         chan struct{} // closed when the read loop has ended
	ended        bool          // the owner queued it to end (loop owner only)

	mu         sync.Mutex
	fd         int  // -1 once closed
	refs       int  // the user's, until Close; the loop's, from register to finish
	closed     bool // Close was called
	registered bool // in the epoll set (not while detached)
	finished   bool // its read loop has ended (Loop.finish)
	detached   bool // a goroutine the loop was taken from serves it (Loop.steal)
	missed     bool // its read deadline fired while detached
	wantOut    bool // a write waits for room
	wdl        time.Time
	writable   chan struct{} // wakes a waiting write: room, a close, a new deadline

	tmu   sync.Mutex
	timer *time.Timer // the read deadline (SetReadDeadline)
	dead  bool        // ended: no more read deadlines
}

// Enroll moves nc, a plaintext TCP connection, onto the loop and returns
// the connection to use in its place (nc itself when it is not one, or
// lp is nil): its socket's descriptor is duplicated and nc closed. A
// Reader of the returned connection runs on the loop. Close it through
// its Writer, as any socket of a Reader (Reader.Run).
func (lp *Loop) Enroll(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if lp == nil || !ok {
		return nc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || dupErr != nil {
		return nc // out of descriptors: it stays a goroutine's
	}
	c := &loopConn{lp: lp, laddr: tc.LocalAddr(), raddr: tc.RemoteAddr(), fd: fd, refs: 1,
		done: make(chan struct{}), writable: make(chan struct{}, 1)}
	_ = tc.Close() // Go's poller lets go of the socket; the duplicate keeps it open
	return c
}

// runLoop is Run on a Loop: the read loop's deadline set, its socket
// given to the loop, and this goroutine waits for the end.
func (l *Reader) runLoop() error {
	if err := l.arm(); err != nil {
		return err
	}
	if err := l.lc.register(); err != nil {
		return err
	}
	<-l.lc.done
	return l.err
}

// register adds c to the loop's epoll set (level-triggered: bytes not
// read in one turn are reported again in the next, so a loop never loses
// readiness).
func (c *loopConn) register() error {
	lp := c.lp
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.fd < 0 {
		return net.ErrClosed
	}
	lp.mu.Lock()
	lp.nextID++
	c.id = lp.nextID
	lp.conns[c.id] = c
	lp.mu.Unlock()
	if err := c.ctlLocked(unix.EPOLL_CTL_ADD); err != nil {
		lp.mu.Lock()
		delete(lp.conns, c.id)
		lp.mu.Unlock()
		return err
	}
	c.refs++
	c.registered = true
	return nil
}

// ctlLocked adds c to the epoll set or changes what it waits for: its
// bytes, and room when a write waits. Called with c.mu held.
func (c *loopConn) ctlLocked(op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if c.wantOut {
		ev.Events |= unix.EPOLLOUT
	}
	setID(&ev, c.id)
	if err := unix.EpollCtl(c.lp.epfd, op, c.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// releaseLocked drops one reference; the last closes the descriptor.
func (c *loopConn) releaseLocked() {
	if c.refs--; c.refs == 0 && c.fd >= 0 {
		_ = unix.Close(c.fd)
		c.fd = -1
	}
}

// serve reads the socket once and handles its frames (or, when its
// deadline fired, enforces the bound first): serveFD, the callback of the
// goroutine mode, returning false to wait for the next readiness and true
// when the read loop ends (with rd.err set).
func (c *loopConn) serve(expired bool) bool {
	l := c.rd
	if expired {
		if l.err = l.classify(os.ErrDeadlineExceeded); l.err != nil {
			return true
		}
	}
	return l.serveFD(uintptr(c.fd))
}

// roomReported is the loop's: the socket has room (or an error) for the
// write that waits.
func (c *loopConn) roomReported() {
	c.mu.Lock()
	if c.wantOut && c.registered {
		c.wantOut = false
		_ = c.ctlLocked(unix.EPOLL_CTL_MOD)
	}
	c.mu.Unlock()
	c.wake()
}

func (c *loopConn) wake() {
	select {
	case c.writable <- struct{}{}:
	default:
	}
}

// detachLocked takes c out of the epoll set for the goroutine the loop is
// taken from. Called with c.mu held.
func (c *loopConn) detachLocked() {
	c.detached = true
	if c.registered {
		_ = unix.EpollCtl(c.lp.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.registered = false
	}
}

// reattach runs in the goroutine the loop was taken from, once it is done
// with c: it flushes what c's frames queued and gives c back to the loop
// (or ends it).
func (c *loopConn) reattach(ended bool) {
	l := c.rd
	l.touched = false
	l.endReads()
	if ended {
		c.lp.finish(c)
		return
	}
	c.mu.Lock()
	l.queued = false
	missed := c.missed
	c.missed = false
	// Under the loop's lock, which the owner takes to find the connection
	// of an event: what this goroutine did to the reader happens before
	// the owner serves it again.
	c.lp.mu.Lock()
	err := c.ctlLocked(unix.EPOLL_CTL_ADD)
	c.lp.mu.Unlock()
	c.registered = err == nil
	// One that could not go back (epoll_ctl out of memory) stays this
	// goroutine's while finish ends it: the owner leaves a detached
	// connection's reader alone (endTurn), as it would not be its.
	c.detached = err != nil
	c.mu.Unlock()
	if err != nil {
		l.err = err
		c.lp.finish(c)
		return
	}
	if missed {
		c.lp.queueExpired(c)
	}
}

// unregister is finish's: c leaves the epoll set, the loop's reference
// goes, and its read deadline stops.
func (c *loopConn) unregister() {
	c.mu.Lock()
	if c.registered {
		_ = unix.EpollCtl(c.lp.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.registered = false
	}
	c.finished = true
	c.releaseLocked()
	c.mu.Unlock()
	c.wake() // a write waiting for room learns the end from the socket
	c.tmu.Lock()
	c.dead = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.tmu.Unlock()
}

// skipExpiry reports whether the owner must not handle c's fired deadline
// now: c has ended (or is about to), or is detached (its deadline is
// queued again when it comes back).
func (c *loopConn) skipExpiry() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.finished || c.fd < 0 {
		return true
	}
	if c.detached {
		c.missed = true
		return true
	}
	return false
}

func (c *loopConn) isDetached() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.detached
}

// SetReadDeadline sets the read loop's deadline: a timer that queues c to
// its loop when it fires (deadline.go's arm and Drain call it, as they call
// a socket's own in goroutine mode).
func (c *loopConn) SetReadDeadline(t time.Time) error {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	switch {
	case c.dead:
	case t.IsZero():
		if c.timer != nil {
			c.timer.Stop()
		}
	case c.timer == nil:
		c.timer = time.AfterFunc(time.Until(t), func() { c.lp.queueExpired(c) })
	default:
		c.timer.Reset(time.Until(t))
	}
	return nil
}

// SetWriteDeadline bounds the writes in progress and to come.
func (c *loopConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	c.wake()
	return nil
}

func (c *loopConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// Write writes all of p, waiting for room as long as the write deadline
// allows (Writer's flushing goroutine: the slow path).
func (c *loopConn) Write(p []byte) (int, error) {
	n := 0
	for {
		c.mu.Lock()
		if c.closed || c.fd < 0 {
			c.mu.Unlock()
			return n, net.ErrClosed
		}
		if !c.wdl.IsZero() && !time.Now().Before(c.wdl) {
			c.mu.Unlock()
			return n, os.ErrDeadlineExceeded
		}
		m, err := writeFD(c.fd, p[n:])
		n += m
		if n == len(p) || err != nil {
			c.mu.Unlock()
			return n, err
		}
		// Full: the loop reports room (EPOLLOUT) while a write waits.
		if !c.wantOut {
			c.wantOut = true
			if c.registered {
				_ = c.ctlLocked(unix.EPOLL_CTL_MOD)
			}
		}
		wdl := c.wdl
		c.mu.Unlock()
		if !c.awaitRoom(wdl) {
			continue // the deadline passed: the check above says so
		}
	}
}

// awaitRoom waits for a wake-up, or until dl (if set); false at dl.
func (c *loopConn) awaitRoom(dl time.Time) bool {
	if dl.IsZero() {
		<-c.writable
		return true
	}
	t := time.NewTimer(time.Until(dl))
	defer t.Stop()
	select {
	case <-c.writable:
		return true
	case <-t.C:
		return false
	}
}

// writeFD writes what the socket takes of p without waiting.
func writeFD(fd int, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := sysWrite(fd, p[n:])
		if m > 0 {
			n += m
		}
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return n, nil
		case err != nil:
			return n, os.NewSyscallError("write", err)
		}
	}
	return n, nil
}

// Read is not for callers: the loop reads (Reader).
func (c *loopConn) Read([]byte) (int, error) { return 0, errLoopRead }

var errLoopRead = errors.New("wire: a connection on an event loop is read by its Reader")

// Close shuts the socket down (the peer sees the end, the read loop ends)
// and drops the user's reference to it.
func (c *loopConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	if c.fd >= 0 {
		_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
	c.releaseLocked()
	c.mu.Unlock()
	c.wake()
	return nil
}

func (c *loopConn) LocalAddr() net.Addr  { return c.laddr }
func (c *loopConn) RemoteAddr() net.Addr { return c.raddr }

// SyscallConn gives Writer its non-blocking writes and shutdown.
func (c *loopConn) SyscallConn() (syscall.RawConn, error) { return loopRaw{c}, nil }

type loopRaw struct{ c *loopConn }

func (r loopRaw) Control(f func(fd uintptr)) error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.c.fd < 0 {
		return net.ErrClosed
	}
	f(uintptr(r.c.fd))
	return nil
}

func (r loopRaw) Read(func(fd uintptr) bool) error { return errLoopRead }

// Write runs f once: Writer's never waits (it leaves a full socket to its
// flushing goroutine, which calls Write), and waiting here is not offered.
func (r loopRaw) Write(f func(fd uintptr) bool) error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.c.fd < 0 {
		return net.ErrClosed
	}
	if !f(uintptr(r.c.fd)) {
		return errRawWait
	}
	return nil
}

var errRawWait = errors.New("wire: RawConn.Write cannot wait for room on an event loop")
