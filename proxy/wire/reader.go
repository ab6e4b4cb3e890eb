package wire

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

// ReadFrames reads from r until it fails, with no time or buffer bound
// (a Reader with zero ReadOptions). See Reader.Run.
func ReadFrames(r io.Reader, codec Decoder, handle func(*protocols.Message) error, flush func()) error {
	return NewReader(r, codec, ReadOptions{}).Run(handle, flush)
}

// ReadOptions bound one read loop. Zero values bound nothing.
type ReadOptions struct {
	// FrameTimeout bounds the time from a frame's first byte to its last:
	// a peer that sends a frame slower than that is cut off (ErrFrameTimeout).
	FrameTimeout time.Duration
	// IdleTimeout ends a connection that sends nothing for that long
	// between frames (ErrIdleTimeout), unless Busy says it waits for
	// something (then the idle time starts again).
	IdleTimeout time.Duration
	Busy        func() bool
	// Budget caps the bytes that all loops sharing it hold in buffers
	// grown for frames larger than the pooled buffer (ErrBufferLimit).
	Budget *Budget
	// Reject, if set, is called with the bytes at the front of the buffer
	// when they cannot be decoded, before Run returns the DecodeError (to
	// answer the peer). The bytes are valid only during the call.
	Reject func(buf []byte, err error)
	// Batch, if set, is the batch handle queues its frames' writes to: the
	// reader flushes it after Run's flush. On an event loop its writers
	// are sent with those of the turn's other readers, in one system call
	// (docs/proxy-config.md, "I/O mode").
	Batch *Batch
}

// Errors that end a read loop on its ReadOptions' bounds.
var (
	ErrFrameTimeout = errors.New("wire: frame not received within the frame timeout")
	ErrIdleTimeout  = errors.New("wire: connection idle for the idle timeout")
	ErrBufferLimit  = errors.New("wire: buffer limit for incomplete frames reached")
	// ErrDrained ends a loop that Drain asked to stop: everything the
	// peer had sent when the drain began was read.
	ErrDrained = errors.New("wire: drained")
)

// Reader is the read loop of one connection. It decodes every whole frame
// in place from a buffer taken from a pool when data arrives and given
// back when the loop has nothing left to decode and would wait: an idle
// connection holds no read buffer (an incomplete frame of a few bytes is
// kept in a small array of the Reader's own).
type Reader struct {
	r        io.Reader
	raw      syscall.RawConn // nil when r is not a socket (readfd.go)
	deadline interface{ SetReadDeadline(time.Time) error }
	codec    Decoder
	opts     ReadOptions
	drainAt  atomic.Int64 // unix nanoseconds; 0: not draining

	// The loop's own state.
	handle     func(*protocols.Message) error
	flush      func()
	msg        protocols.Message // the frame being handled, reused
	buf        []byte
	pooled     bool // buf came from the pool (else it was grown)
	start, end int
	small      [smallCarry]byte // an incomplete frame's bytes while waiting
	carry      int
	err        error // what ends the socket loop, set in its callback
	readFn     func(fd uintptr) bool
	timer      // deadline.go
	// On a Loop: its socket there; touched: the frames handled in the
	// serve in progress queued to the batch; queued: the loop's turn has
	// the batch to flush.
	lc              *loopConn
	touched, queued bool
	pre             prefetched
}

// prefetched is a read the event loop made into a Reader's buffer before
// serving it, as read(2) would have answered: serveFD takes it as its
// first read.
type prefetched struct {
	ok  bool
	n   int
	err error // syscall.EAGAIN when there was nothing
}

// smallCarry is how many bytes of an incomplete frame a waiting loop keeps
// without a pooled buffer (a Dubbo header is 16).
const smallCarry = 64

// NewReader prepares the read loop of r (not started: see Run).
func NewReader(r io.Reader, codec Decoder, opts ReadOptions) *Reader {
	l := &Reader{r: r, codec: codec, opts: opts}
	if sc, ok := r.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			l.raw = raw
			l.readFn = l.serveFD
		}
	}
	l.deadline, _ = r.(interface{ SetReadDeadline(time.Time) error })
	if lc, ok := r.(*loopConn); ok { // Loop.Enroll
		lc.rd, l.lc, l.deadline = l, lc, lc
	}
	return l
}

// Run reads until the connection fails or a bound ends it, decoding every
// whole frame in place and handing it to handle. A Message (and its Raw
// bytes) is valid only during its handle call. The buffer grows to fit one
// frame (the codec bounds frame size). After handling the frames of each
// read, and before returning, it calls flush (if not nil): frames queued
// while handling one read go out together. It returns r's error (io.EOF
// at a clean end), a *DecodeError, ErrDrained, one of the bound errors,
// or the first error handle returns.
//
// On a socket, handle runs inside the loop's read (readfd.go): closing
// the socket from handle must go through its Writer, which shuts it down
// first (writer.go), as closing it directly waits for handle to return.
//
// On a connection Loop.Enroll returned, handle and flush run on the event loop (or on the
// goroutine the loop was taken from while a handler waited), never two at
// once, and the socket must be closed through its Writer as well: the
// loop learns of the end from the shutdown. flush then runs at the end of
// the loop's turn, once for all the reads of the turn.
func (l *Reader) Run(handle func(*protocols.Message) error, flush func()) error {
	if flush == nil {
		flush = func() {}
	}
	l.handle, l.flush = handle, flush
	defer l.release()
	var err error
	switch {
	case l.lc != nil:
		err = l.runLoop()
	case l.raw != nil:
		err = l.runFD()
	default:
		err = l.run()
	}
	l.endReads()
	return err
}

// run is the loop of a reader that is not a socket: one Read per turn.
func (l *Reader) run() error {
	for {
		if err := l.arm(); err != nil {
			return err
		}
		if err := l.ensure(); err != nil {
			return err
		}
		n, err := l.r.Read(l.buf[l.end:])
		if derr := l.consume(n); derr != nil {
			return derr
		}
		if err != nil {
			if err = l.classify(err); err != nil {
				return err
			}
		}
	}
}

// consume decodes and handles every whole frame that the n bytes just
// read into the buffer complete, then flushes what handling them queued.
//
// Before flushing, it yields the processor once. Under load the poller
// wakes many read loops at a time; yielding lets the others queue their
// frames to the same writers (most often a shared upstream connection),
// and the first flush then sends them all in one write while the later
// ones find nothing left to send. With no other goroutine waiting, the
// yield returns at once. (redis-benchmark -P 1 with 50 clients through
// one upstream: 4.1 → 3.6 read/write syscalls per request;
// docs/benchmarks.md.)
func (l *Reader) consume(n int) error {
	before := l.incomplete()
	l.end += n
	if n > 0 {
		l.stamp()
	}
	handled := false
	for l.start < l.end {
		size, derr := l.codec.Decode(l.buf[l.start:l.end], &l.msg)
		if derr != nil {
			if l.opts.Reject != nil {
				l.opts.Reject(l.buf[l.start:l.end], derr)
			}
			return &DecodeError{Err: derr}
		}
		if size == 0 {
			break
		}
		if size < 0 || size > l.end-l.start {
			return &DecodeError{Err: fmt.Errorf("codec consumed %d of %d bytes", size, l.end-l.start)}
		}
		l.start += size
		if herr := l.handle(&l.msg); herr != nil {
			return herr
		}
		handled = true
	}
	switch {
	case !handled:
	case l.lc != nil:
		l.touched = true // flushed at the end of the loop's turn
	default:
		runtime.Gosched()
		l.endReads()
	}
	l.settle(before, handled, n)
	return nil
}

// endReads runs the flush Run was given, then flushes the batch.
func (l *Reader) endReads() {
	l.flush()
	if l.opts.Batch != nil {
		l.opts.Batch.Flush()
	}
}

// settle records when the incomplete frame left by a read began, and
// drops an emptied buffer that was grown for a large frame.
func (l *Reader) settle(before, handled bool, n int) {
	if !l.incomplete() {
		l.start, l.end = 0, 0
		l.frameAt = time.Time{}
		if !l.pooled && l.buf != nil {
			l.drop()
		}
		return
	}
	if (!before || handled) && n > 0 {
		l.frameBegan()
	}
}

// incomplete reports whether the loop holds bytes of a frame not yet whole.
func (l *Reader) incomplete() bool { return l.end > l.start || l.carry > 0 }

// ensure gives the loop a buffer with room to read into: from the pool
// (with the bytes carried while waiting), compacted, or grown.
func (l *Reader) ensure() error {
	if l.buf == nil {
		l.buf, l.pooled = getBuf(), true
		l.end = copy(l.buf, l.small[:l.carry])
		l.start, l.carry = 0, 0
	}
	if l.end < len(l.buf) {
		return nil
	}
	if l.start > 0 {
		l.end = copy(l.buf, l.buf[l.start:l.end])
		l.start = 0
		return nil
	}
	size := 2 * len(l.buf)
	if !l.opts.Budget.reserve(int64(size)) {
		return ErrBufferLimit
	}
	grown := make([]byte, size)
	copy(grown, l.buf[:l.end])
	l.drop()
	l.buf = grown
	return nil
}

// park gives the buffer back before the loop waits, keeping a small
// incomplete frame's bytes aside.
func (l *Reader) park() {
	if !l.pooled || l.end-l.start > smallCarry {
		return
	}
	l.carry = copy(l.small[:], l.buf[l.start:l.end])
	l.start, l.end = 0, 0
	l.drop()
}

// drop gives the buffer back: to the pool, or its bytes to the budget.
func (l *Reader) drop() {
	if l.pooled {
		putBuf(l.buf)
	} else {
		l.opts.Budget.release(int64(len(l.buf)))
	}
	l.buf, l.pooled = nil, false
}

func (l *Reader) release() {
	if l.buf != nil {
		l.drop()
	}
}

// Decoder decodes one frame from the front of buf (protocols.Codec's
// Decode contract).
type Decoder interface {
	Decode(buf []byte, msg *protocols.Message) (int, error)
}

// DecodeError is a frame that cannot be decoded: the connection it came
// from is closed, the process carries on.
type DecodeError struct{ Err error }

func (e *DecodeError) Error() string { return "decode: " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }
