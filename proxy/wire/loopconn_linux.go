//go:build linux

package wire

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// loopConn is a Reader's socket on a Loop. The loop reads a duplicate of
// the socket's descriptor that it owns and closes once the read loop has
// ended, so the Go connection (its writes, its close) needs no change: a
// close of it never pulls a descriptor from under the loop, and the
// Writer's shutdown before it (writer.go) ends the read loop as it does a
// goroutine's.
type loopConn struct {
	lp    *Loop
	rd    *Reader
	id    uint64
	done  chan struct{} // closed when the read loop has ended
	ended bool          // the owner queued it to end (loop owner only)

	mu       sync.Mutex
	fd       int  // the loop's descriptor; -1 before registration and once closed
	detached bool // a goroutine the loop was taken from serves it (Loop.steal)
	missed   bool // its deadline fired while detached

	tmu   sync.Mutex
	timer *time.Timer // the read deadline (SetReadDeadline)
	dead  bool        // ended: no more deadlines
}

func newLoopConn(lp *Loop, rd *Reader) *loopConn {
	return &loopConn{lp: lp, rd: rd, fd: -1, done: make(chan struct{})}
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

// register duplicates the socket's descriptor and adds it to the loop's
// epoll set (level-triggered: bytes not read in one turn are reported
// again in the next, so a loop never loses readiness).
func (c *loopConn) register() error {
	var fd int
	var dupErr error
	if err := c.rd.raw.Control(func(sfd uintptr) {
		fd, dupErr = unix.FcntlInt(sfd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return err
	}
	if dupErr != nil {
		return os.NewSyscallError("fcntl", dupErr)
	}
	lp := c.lp
	c.mu.Lock()
	c.fd = fd
	c.mu.Unlock()
	lp.mu.Lock()
	lp.nextID++
	c.id = lp.nextID
	lp.conns[c.id] = c
	lp.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, c.id)
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		lp.mu.Lock()
		delete(lp.conns, c.id)
		lp.mu.Unlock()
		c.mu.Lock()
		_ = unix.Close(fd)
		c.fd = -1
		c.mu.Unlock()
		c.stopTimer()
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
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

// reattach runs in the goroutine the loop was taken from, once it is done
// with c: it flushes what c's frames queued and gives c back to the loop
// (or ends it).
func (c *loopConn) reattach(ended bool) {
	l := c.rd
	l.touched = false
	l.flush()
	if ended {
		c.lp.finish(c)
		return
	}
	c.mu.Lock()
	l.queued = false
	c.detached = false
	missed := c.missed
	c.missed = false
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, c.id)
	// Under the loop's lock, which the owner takes to find the connection
	// of an event: what this goroutine did to the reader happens before
	// the owner serves it again.
	c.lp.mu.Lock()
	err := unix.EpollCtl(c.lp.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
	c.lp.mu.Unlock()
	c.mu.Unlock()
	if err != nil {
		l.err = os.NewSyscallError("epoll_ctl", err)
		c.lp.finish(c)
		return
	}
	if missed {
		c.lp.queueExpired(c)
	}
}

// skipExpiry reports whether the owner must not handle c's fired deadline
// now: c has ended, or is detached (its deadline is queued again when it
// comes back).
func (c *loopConn) skipExpiry() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
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

func (c *loopConn) stopTimer() {
	c.tmu.Lock()
	c.dead = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.tmu.Unlock()
}
