//go:build linux

package wire

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioRing is an io_uring used for one thing: doing several sockets'
// reads or writes in one system call. Each is non-blocking (MSG_DONTWAIT),
// so the kernel does it while the call submits it, and the completions
// are there when the call returns, with what read(2) or write(2) would
// have returned: the bytes, 0 at the end of a stream, or EAGAIN. On this
// project's machine a 64-byte loopback send or receive costs about 2 µs
// less this way when four or more go together, and a little more alone
// (docs/benchmarks.md, "Sending a turn's writes in one system call"). A
// ring belongs to one event loop; only its owner uses it.
type ioRing struct {
	fd             int
	mem, sqeMem    []byte
	sqTail, sqMask *uint32
	sqArray        []uint32
	sqes           []ringSQE
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []ringCQE
	broken         bool          // io_uring_enter failed: not to be used again
	enters         atomic.Uint64 // io_uring_enter calls (Loop.RingEnters)
}

// ringEntries is how many operations one submission takes at most.
const ringEntries = 128

// The kernel's io_uring ABI (include/uapi/linux/io_uring.h): system call
// numbers, mmap offsets, setup flags, the two opcodes used.
const (
	sysIOUringSetup  = 425
	sysIOUringEnter  = 426
	ringOffSQRing    = 0
	ringOffSQEs      = 0x10000000
	ringSetupSubmAll = 1 << 7 // IORING_SETUP_SUBMIT_ALL
	ringEnterGetEvts = 1      // IORING_ENTER_GETEVENTS
	ringFeatSingleMM = 1      // IORING_FEAT_SINGLE_MMAP
	ringOpSend       = 26     // IORING_OP_SEND
	ringOpRecv       = 27     // IORING_OP_RECV
)

// ringParams is struct io_uring_params with its two offset structs.
type ringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// ringSQE is struct io_uring_sqe (64 bytes), with the fields a send or a
// receive uses.
type ringSQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	msgFlags uint32
	userData uint64
	_        [3]uint64
}

// ringCQE is struct io_uring_cqe.
type ringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// newIORing sets up a ring, or says why the kernel would not (an old
// kernel, io_uring disabled by sysctl or a seccomp profile).
func newIORing() (*ioRing, error) {
	var p ringParams
	p.flags = ringSetupSubmAll
	fd, _, errno := unix.Syscall(sysIOUringSetup, ringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &ioRing{fd: int(fd)}
	if p.features&ringFeatSingleMM == 0 {
		r.close()
		return nil, fmt.Errorf("io_uring: the kernel lacks IORING_FEAT_SINGLE_MMAP (5.4)")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(ringCQE{})))
	mem, err := unix.Mmap(r.fd, ringOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("io_uring: mmap rings: %w", err)
	}
	r.mem = mem
	sqeMem, err := unix.Mmap(r.fd, ringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(ringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("io_uring: mmap entries: %w", err)
	}
	r.sqeMem = sqeMem
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.sqTail, r.sqMask = at(p.sqOff.tail), at(p.sqOff.ringMask)
	r.sqArray = unsafe.Slice(at(p.sqOff.array), p.sqEntries)
	r.sqes = unsafe.Slice((*ringSQE)(unsafe.Pointer(&sqeMem[0])), p.sqEntries)
	r.cqHead, r.cqTail, r.cqMask = at(p.cqOff.head), at(p.cqOff.tail), *at(p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*ringCQE)(unsafe.Pointer(&mem[p.cqOff.cqes])), p.cqEntries)
	return r, nil
}

func (r *ioRing) close() {
	if r.sqeMem != nil {
		_ = unix.Munmap(r.sqeMem)
	}
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
	}
	_ = unix.Close(r.fd)
}

// ringOp is one read or write of a submission: its socket and buffer, and
// what it did: n bytes went or came (EAGAIN: n is 0, err nil; for a read,
// n 0 with err nil and eagain false is the end of the stream), or err.
type ringOp struct {
	fd     int
	p      []byte
	recv   bool // a read into p; else a write of p
	n      int
	err    error
	eagain bool // nothing to read, or no room
	done   bool // its completion came
}

// submit does each of ops whose err is nil (at most ringEntries, every p
// non-empty) in one io_uring_enter and fills in their outcomes. The kernel
// is done with the buffers when it returns. An op left not done (the ring
// broke) did nothing: the caller reads or writes it on its own.
func (r *ioRing) submit(ops []ringOp) {
	if r.broken {
		return
	}
	tail := *r.sqTail // the owner is the only producer
	mask := *r.sqMask
	queued := uint32(0)
	for i := range ops {
		o := &ops[i]
		if o.err != nil {
			continue
		}
		idx := (tail + queued) & mask
		sqe := ringSQE{
			opcode:   ringOpSend,
			fd:       int32(o.fd),
			addr:     uint64(uintptr(unsafe.Pointer(&o.p[0]))),
			len:      uint32(len(o.p)),
			msgFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL,
			userData: uint64(i),
		}
		if o.recv {
			sqe.opcode, sqe.msgFlags = ringOpRecv, unix.MSG_DONTWAIT
		}
		r.sqes[idx] = sqe
		r.sqArray[idx] = idx
		queued++
	}
	atomic.StoreUint32(r.sqTail, tail+queued)
	submit, left := queued, int(queued)
	for left > 0 {
		n, _, errno := unix.RawSyscall6(sysIOUringEnter, uintptr(r.fd), uintptr(submit), uintptr(left), ringEnterGetEvts, 0, 0)
		r.enters.Add(1)
		switch errno {
		case 0:
			submit -= uint32(n)
		case unix.EINTR, unix.EAGAIN, unix.EBUSY:
		default:
			// Only a broken ring fails the call itself (EFAULT, EBADF):
			// what completed counts, the rest is left not done, and the
			// loop stops using the ring.
			r.reap(ops)
			r.broken = true
			return
		}
		left -= r.reap(ops)
	}
}

// reap takes the completions posted so far and returns how many.
func (r *ioRing) reap(ops []ringOp) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	for h := head; h != tail; h++ {
		c := &r.cqes[h&r.cqMask]
		o := &ops[c.userData]
		o.done = true
		switch errno := syscall.Errno(-c.res); {
		case c.res >= 0:
			o.n = int(c.res)
		case errno == unix.EAGAIN || errno == unix.EINTR:
			o.eagain = true
		default:
			o.err = errno // as read(2) and write(2) report it (sysRead, sysWrite)
		}
	}
	atomic.StoreUint32(r.cqHead, tail)
	return int(tail - head)
}
