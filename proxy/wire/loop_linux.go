//go:build linux

package wire

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Loop is one event loop: a goroutine that waits in epoll_wait
// (level-triggered) for the sockets given to it (Enroll), reads each ready
// one once, handles its frames, and at the end of the turn flushes every
// Batch the turn's frames touched: the requests of all the clients one
// epoll_wait returned go to a shared upstream connection in one write,
// with no goroutine woken for it. Where the kernel allows io_uring, the
// reads of a poll's sockets and the writes of a turn are made in one
// io_uring_enter each (prefetch, turnWrites). Writes still go through each
// connection's Writer (a slow peer's wait for room is the loop's EPOLLOUT,
// loopconn_linux.go), so codecs and writers see no difference
// (docs/proxy-config.md, "I/O mode").
//
// Frames are handled on the loop, so a handler that waits (a dial, a
// dedicated connection, a rate-limit service) would stall the loop's other
// connections. A watchdog looks at the loop every stealAfter: when it finds
// the loop serving the same connection as at its last look, it takes that
// connection off the epoll set and starts a new goroutine as the loop; the
// old one finishes the connection's frames alone, as in goroutine mode,
// and gives the connection back (loopConn.detachLocked, reattach).
type Loop struct {
	epfd, wakefd int

	mu      sync.Mutex
	conns   map[uint64]*loopConn
	nextID  uint64
	expired []*loopConn // read deadlines that fired (queueExpired)
	woken   bool        // wakefd was written and not read yet

	// gate is the owner's sequence number of the serve in progress
	// (serving: bit 0) and the watchdog's mark that it took the loop over
	// (stolen: bit 1). cur is the connection being served.
	gate atomic.Uint64
	cur  atomic.Pointer[loopConn]
	idle atomic.Bool // the owner waits in epoll_wait
	// parked: the watchdog sleeps until the owner leaves epoll_wait.
	parked atomic.Bool
	wake   chan struct{}
	// handoffs counts the watchdog's steals (Handoffs).
	handoffs atomic.Uint64

	// The owner's state: the goroutine running as the loop.
	seq     uint64
	events  []unix.EpollEvent
	pending []*Reader   // readers whose batch waits for the end of the turn
	ending  []*loopConn // connections that ended this turn
	writes  *turnWrites // the turn's batches, sent at its end
	ring    *ioRing     // reads ahead and sends writes; nil: none
	// ready is what the last poll found readable; those before next are
	// served (serveReady).
	ready []*loopConn
	next  int
	reads []ringOp // prefetch's
}

// stealAfter is how often the watchdog looks at a busy loop: a handler
// that waits longer than one or two of these gets the loop taken from it.
const stealAfter = time.Millisecond

// idleLooks is how many looks find the loop waiting in epoll_wait before
// the watchdog sleeps until the loop wakes (an idle proxy costs nothing).
const idleLooks = 16

// wakeID is the epoll data of the loop's eventfd; connections count from 1.
const wakeID = 0

// DefaultLoopCount is how many event loops run when not told: half of
// GOMAXPROCS, at least one. A loop does its connections' reads, writes and
// request handling on one thread; the other processors are left to the
// runtime, goroutine-mode connections and, on a machine shared with the
// application, the application: one loop of two processors used less CPU
// per request than two in every shape measured (docs/benchmarks.md,
// "Fewer event loops than processors").
func DefaultLoopCount() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Loops is a set of event loops (DefaultLoopCount by default).
type Loops struct{ loops []*Loop }

var (
	sharedMu sync.Mutex
	shared   = map[LoopOptions]*Loops{}
)

// SharedLoops returns the process's set of event loops made as o says,
// started on first use: every caller asking for the same gets the same
// loops, which run for the life of the process.
func SharedLoops(o LoopOptions) (*Loops, error) {
	if o.Count <= 0 {
		o.Count = DefaultLoopCount()
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if ls := shared[o]; ls != nil {
		return ls, nil
	}
	ls, err := NewLoops(o)
	if err != nil {
		return nil, err
	}
	shared[o] = ls
	return ls, nil
}

// NewLoops starts o.Count event loops (at least one). They run for the
// life of the process.
func NewLoops(o LoopOptions) (*Loops, error) {
	ls := &Loops{}
	for range max(o.Count, 1) {
		lp, err := newLoop(!o.NoIORing)
		if err != nil {
			return nil, err
		}
		ls.loops = append(ls.loops, lp)
	}
	return ls, nil
}

// Len returns how many loops there are.
func (ls *Loops) Len() int { return len(ls.loops) }

// Pick returns loop hint modulo Len: the same hint, the same loop. The
// proxy gives a client connection its affinity and an upstream connection
// its slot, so a client and the connection its requests go to share a
// loop when the pool's connections are a multiple of Len.
func (ls *Loops) Pick(hint uint64) *Loop {
	if ls == nil {
		return nil
	}
	return ls.loops[hint%uint64(len(ls.loops))]
}

func newLoop(ring bool) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wire: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("wire: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, fmt.Errorf("wire: epoll_ctl: %w", err)
	}
	lp := &Loop{epfd: epfd, wakefd: wakefd, conns: map[uint64]*loopConn{}, wake: make(chan struct{}, 1),
		events: make([]unix.EpollEvent, 128)}
	if ring {
		// Without one (an old kernel, io_uring not allowed) the loop reads
		// and writes each socket with a system call of its own.
		lp.ring, _ = newIORing()
	}
	lp.writes = newTurnWrites(lp.ring)
	go lp.run()
	go lp.watch()
	return lp, nil
}

// setID and eventID keep a connection's ID in an event's 64 data bits.
func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// run is the loop, in whichever goroutine owns it now. It returns when the
// watchdog took the loop from it (a new goroutine runs it then).
//
// It waits the way a goroutine-mode read loop does (readfd.go): inside
// one RawConn.Read call on the epoll descriptor, registered with Go's own
// poller (nested epoll), so a loop with nothing to do parks its goroutine
// instead of blocking a thread in epoll_wait; a thread blocked in a
// system call would have its processor taken by the runtime every time
// and woken again. Each owner waits on a descriptor of its own (a
// duplicate), as Go lets one reader at a time into a file's RawConn.Read
// and the goroutine the loop was taken from may still be inside its own.
func (lp *Loop) run() {
	fd, err := unix.FcntlInt(uintptr(lp.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		panic(fmt.Sprintf("wire: event loop descriptor: %v", err)) // out of descriptors at a steal
	}
	f := os.NewFile(uintptr(fd), "epoll")
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		panic(fmt.Sprintf("wire: event loop descriptor: %v", err))
	}
	_ = raw.Read(func(uintptr) bool { return lp.turns() })
}

// turns runs turns until none has anything to do (false: wait for the
// epoll descriptor to be readable) or the watchdog took the loop (true).
func (lp *Loop) turns() (stolen bool) {
	lp.idle.Store(false)
	if lp.parked.Load() && lp.parked.CompareAndSwap(true, false) {
		lp.wake <- struct{}{}
	}
	for {
		// First, what a turn leaves (and what the goroutine this one took
		// over from left): the readable connections not served yet,
		// deadlines that fired, then the flushes.
		if !lp.serveReady() || !lp.expire() {
			return true
		}
		lp.endTurn()
		n, err := pollNow(lp.epfd, lp.events)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			panic(fmt.Sprintf("wire: epoll_wait: %v", err)) // only a bad descriptor fails it
		case n == 0:
			lp.idle.Store(true)
			return false
		}
		for i := range n {
			id := eventID(&lp.events[i])
			if id == wakeID {
				lp.drainWake()
				continue
			}
			lp.mu.Lock()
			c := lp.conns[id]
			lp.mu.Unlock()
			if c == nil {
				continue
			}
			ev := lp.events[i].Events
			if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				c.roomReported()
			}
			if ev&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				lp.ready = append(lp.ready, c)
			}
		}
		lp.prefetch()
		if !lp.serveReady() {
			return true
		}
	}
}

// serveReady serves the connections the last poll found readable, from
// where the owner before left off: a goroutine that takes the loop over
// (steal) begins here, as the sockets read ahead (prefetch) raise no
// event again. False when the watchdog took the loop meanwhile.
func (lp *Loop) serveReady() bool {
	for lp.next < len(lp.ready) {
		c := lp.ready[lp.next]
		lp.ready[lp.next] = nil
		lp.next++
		if !lp.serve(c, false) {
			return false
		}
	}
	lp.ready, lp.next = lp.ready[:0], 0
	return true
}

// serve reads c once (or handles its fired deadline) as the owner. It
// returns false when the watchdog took the loop meanwhile: the caller is
// no longer the loop and must leave it.
func (lp *Loop) serve(c *loopConn, expired bool) bool {
	if c.ended {
		return true
	}
	lp.seq += 4
	s := lp.seq | 1
	lp.cur.Store(c)
	lp.gate.Store(s)
	ended := c.serve(expired)
	if !lp.gate.CompareAndSwap(s, s-1) {
		c.reattach(ended)
		return false
	}
	rd := c.rd
	if rd.touched && !rd.queued {
		rd.queued = true
		lp.pending = append(lp.pending, rd)
	}
	rd.touched = false
	if ended {
		c.ended = true
		lp.ending = append(lp.ending, c)
	}
	return true
}

// endTurn flushes the batches of the readers the turn served, then ends
// the connections that ended.
func (lp *Loop) endTurn() {
	for i, rd := range lp.pending {
		lp.pending[i] = nil
		if rd.lc.isDetached() {
			continue // its detached goroutine flushes it (reattach)
		}
		rd.queued = false
		rd.flush()
		if rd.opts.Batch != nil {
			lp.writes.add(rd.opts.Batch)
		}
	}
	lp.pending = lp.pending[:0]
	lp.writes.flush()
	for i, c := range lp.ending {
		lp.ending[i] = nil
		lp.finish(c)
	}
	lp.ending = lp.ending[:0]
}

// pollNow is epoll_wait with a zero timeout: it never waits, so it is
// made without telling the scheduler that a system call began
// (syscall.RawSyscall6), as the loop's reads and writes are (rawio_linux.go
// says why): a system call the scheduler sees wakes its monitor from its
// deep sleep, and the monitor then polls every 20 µs for a while, a thread
// switch each time. epoll_pwait with no signal mask is epoll_wait on every
// architecture (arm64 has only the former).
func pollNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// expire handles the connections whose read deadline fired, one at a time
// so that the ones not reached stay queued for whoever owns the loop next.
func (lp *Loop) expire() bool {
	for {
		lp.mu.Lock()
		if len(lp.expired) == 0 {
			lp.mu.Unlock()
			return true
		}
		c := lp.expired[0]
		lp.expired[0] = nil
		lp.expired = lp.expired[1:]
		lp.mu.Unlock()
		if c.skipExpiry() {
			continue
		}
		if !lp.serve(c, true) {
			return false
		}
	}
}

// queueExpired queues c's fired deadline and wakes the loop.
func (lp *Loop) queueExpired(c *loopConn) {
	lp.mu.Lock()
	lp.expired = append(lp.expired, c)
	wake := !lp.woken
	lp.woken = true
	lp.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		_, _ = unix.Write(lp.wakefd, one[:])
	}
}

func (lp *Loop) drainWake() {
	lp.mu.Lock()
	lp.woken = false
	lp.mu.Unlock()
	var b [8]byte
	_, _ = unix.Read(lp.wakefd, b[:])
}

// watch is the loop's watchdog (see Loop).
func (lp *Loop) watch() {
	var last uint64
	idle := 0
	for {
		time.Sleep(stealAfter)
		s := lp.gate.Load()
		if s&3 == 1 && s == last {
			lp.steal(s)
			last = 0
			continue
		}
		last = s
		if !lp.idle.Load() {
			idle = 0
			continue
		}
		if idle++; idle < idleLooks {
			continue
		}
		idle = 0
		// Sleep until the owner leaves epoll_wait (run wakes us).
		lp.parked.Store(true)
		if lp.idle.Load() || !lp.parked.CompareAndSwap(true, false) {
			<-lp.wake
		}
	}
}

// steal takes the loop from an owner stuck in serve s: the connection it
// serves leaves the epoll set, and a new goroutine runs the loop.
func (lp *Loop) steal(s uint64) {
	c := lp.cur.Load()
	c.mu.Lock()
	if !lp.gate.CompareAndSwap(s, s|2) {
		c.mu.Unlock()
		return
	}
	c.detachLocked()
	c.mu.Unlock()
	lp.handoffs.Add(1)
	go lp.run()
}

// handOff gives the loop to a new goroutine at once when its owner is
// serving c: a handler about to wait (Reader.WillWait) goes on serving c
// alone, as after a watchdog's steal, without holding up the loop's other
// connections until the watchdog's next look.
func (c *loopConn) handOff() {
	lp := c.lp
	if s := lp.gate.Load(); s&3 == 1 && lp.cur.Load() == c {
		lp.steal(s)
	}
}

// Handoffs returns how many times the loop was given to a new goroutine
// because a handler waited, told (Reader.WillWait) or found by the
// watchdog (the proxy's metamesh_event_loop_handoffs_total).
func (lp *Loop) Handoffs() uint64 { return lp.handoffs.Load() }

// RingEnters returns how many io_uring_enter calls the loop made to read
// ahead (prefetch) and to send its turns' writes (turnWrites): system
// calls that /proc/PID/io's syscr and syscw do not count (the proxy's
// metamesh_event_loop_ring_enters_total).
func (lp *Loop) RingEnters() uint64 {
	if r := lp.ring; r != nil {
		return r.enters.Load()
	}
	return 0
}

// RingEnters returns the sum of the loops' RingEnters; 0 for nil.
func (ls *Loops) RingEnters() uint64 { return ls.sum((*Loop).RingEnters) }

// Handoffs returns the sum of the loops' Handoffs; 0 for nil.
func (ls *Loops) Handoffs() uint64 { return ls.sum((*Loop).Handoffs) }

// sum adds up count over the loops; 0 for nil.
func (ls *Loops) sum(count func(*Loop) uint64) uint64 {
	if ls == nil {
		return 0
	}
	var n uint64
	for _, lp := range ls.loops {
		n += count(lp)
	}
	return n
}

// finish ends c's read loop: out of the epoll set, the loop's reference
// to the socket dropped (closed once the Writer's Close dropped its own),
// its timer stopped, and its Run told.
func (lp *Loop) finish(c *loopConn) {
	lp.mu.Lock()
	delete(lp.conns, c.id)
	lp.mu.Unlock()
	c.unregister()
	close(c.done)
}
