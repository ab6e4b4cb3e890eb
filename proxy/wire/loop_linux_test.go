//go:build linux

package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// oneLoop is the event loop of these tests: one, so that every connection
// of a test shares it and a connection that stalled it would stall all.
var oneLoop = sync.OnceValue(func() *wire.Loop {
	ls, err := wire.NewLoops(wire.LoopOptions{Count: 1})
	if err != nil {
		panic(err)
	}
	return ls.Pick(0)
})

// loopPair is tcpPair with the local end on the test loop.
func loopPair(t *testing.T) (local, remote net.Conn) {
	t.Helper()
	tcp, remote := tcpPair(t)
	local = oneLoop().Enroll(tcp)
	if local == tcp {
		t.Fatal("Enroll kept the TCP connection off the loop")
	}
	t.Cleanup(func() { _ = local.Close() })
	return local, remote
}

// echo runs a read loop on the event loop that writes every frame back
// through local's Writer, batched as the proxy does (the loop sends the
// batches of a turn's readers together).
func echo(local net.Conn, opts wire.ReadOptions, maxPending int) (*wire.Writer, <-chan error) {
	w := wire.NewWriter(local, maxPending)
	var b wire.Batch
	opts.Batch = &b
	done := make(chan error, 1)
	go func() {
		err := wire.NewReader(local, lenCodec{}, opts).Run(func(m *protocols.Message) error {
			b.Add(w)
			return w.Queue(func(dst []byte) []byte { return append(dst, m.Raw...) })
		}, nil)
		w.Close()
		done <- err
	}()
	return w, done
}

// readFrames reads n frames of the echo from c.
func readFrames(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the echo differs from what was sent (%d bytes)", len(want))
	}
}

// TestLoopWakesForBytesSentWhileHandling is the goroutine mode's test on
// the event loop: after a short read the loop waits without reading until
// EAGAIN, and bytes that arrive while it handles the read's frames must
// still be reported (level-triggered epoll). Each handler has the peer
// send the next frame and waits until it is in the socket, so a loop that
// lost the readiness would wait forever.
func TestLoopWakesForBytesSentWhileHandling(t *testing.T) {
	local, remote := loopPair(t)
	wakesForBytesSentWhileHandling(t, local, remote)
}

// TestLoopWakesForBytesSentToAnotherSocket: bytes that reach one of the
// loop's sockets during a turn, after the poll that began it, are served
// (by the next poll, or a wake of the loop once it waits). Two
// connections pass a frame back and forth: each handler has the other's
// peer send the next frame and waits until it is in the other socket,
// which the poll of the turn handling it did not see. A loop that lost
// that arrival would wait forever.
func TestLoopWakesForBytesSentToAnotherSocket(t *testing.T) {
	const frames = 50
	aLocal, aRemote := loopPair(t)
	bLocal, bRemote := loopPair(t)
	var n atomic.Int64
	pass := func(toRemote, toLocal net.Conn) func(*protocols.Message) error {
		return func(*protocols.Message) error {
			i := n.Add(1)
			if i >= frames {
				return errStop
			}
			if _, err := toRemote.Write(frame(nil, payload(int(i), 8))); err != nil {
				return err
			}
			waitQueued(t, toLocal)
			return nil
		}
	}
	aDone := runReader(wire.NewReader(aLocal, lenCodec{}, wire.ReadOptions{}), pass(bRemote, bLocal))
	bDone := runReader(wire.NewReader(bLocal, lenCodec{}, wire.ReadOptions{}), pass(aRemote, aLocal))
	if _, err := aRemote.Write(frame(nil, payload(0, 8))); err != nil {
		t.Fatal(err)
	}
	what := "it did not wake for bytes sent to another socket during a turn"
	var err error
	select {
	case err = <-aDone:
	case err = <-bDone:
	case <-time.After(20 * time.Second):
		t.Fatalf("no read loop returned after %d of %d frames: %s", n.Load(), frames, what)
	}
	if !errors.Is(err, errStop) {
		t.Fatalf("a read loop returned %v after %d frames, want all %d", err, n.Load(), frames)
	}
}

// TestLoopManyClientsEchoTogether: clients sending at once are echoed
// whole and in order, each on its own connection, while the loop sends
// the replies of a turn's readers together (in one io_uring_enter where
// the kernel has io_uring). Under -race this also checks the turn's
// shared writes against the writers' own.
func TestLoopManyClientsEchoTogether(t *testing.T) {
	const clients, rounds = 16, 100
	before := oneLoop().RingEnters()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		local, remote := loopPair(t)
		echo(local, wire.ReadOptions{}, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = remote.SetDeadline(time.Now().Add(20 * time.Second))
			for r := range rounds {
				var sent []byte
				for i := range 1 + r%3 {
					sent = frame(sent, payload(c*rounds+r+i, 10+(c*31+r)%200))
				}
				if _, err := remote.Write(sent); err != nil {
					errs <- fmt.Errorf("client %d: %v", c, err)
					return
				}
				got := make([]byte, len(sent))
				if _, err := io.ReadFull(remote, got); err != nil {
					errs <- fmt.Errorf("client %d, round %d: reading the echo: %v", c, r, err)
					return
				}
				if !bytes.Equal(got, sent) {
					errs <- fmt.Errorf("client %d, round %d: the echo differs from what was sent", c, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("io_uring_enter calls of the loop's turns: %d", oneLoop().RingEnters()-before)
}

// TestLoopReadAheadSurvivesAHandOff: the loop reads a turn's readable
// sockets ahead of serving them (in one io_uring_enter); when a handler
// among them waits and the watchdog hands the loop to a new goroutine,
// the new one serves the sockets read ahead, which raise no event again.
// A busy connection holds the loop while a waiting one and the echo
// clients send, so one poll finds them together; the waiting handler is
// released only once every echo came back, so a read-ahead left behind
// would hang the round (and fail it at the echo's deadline).
func TestLoopReadAheadSurvivesAHandOff(t *testing.T) {
	const echoes, rounds = 6, 30
	busyLocal, busyRemote := loopPair(t)
	waitLocal, waitRemote := loopPair(t)
	runReader(wire.NewReader(busyLocal, lenCodec{}, wire.ReadOptions{}), func(*protocols.Message) error {
		for end := time.Now().Add(300 * time.Microsecond); time.Now().Before(end); {
		}
		return nil
	})
	release := make(chan struct{})
	runReader(wire.NewReader(waitLocal, lenCodec{}, wire.ReadOptions{}), func(*protocols.Message) error {
		<-release
		return nil
	})
	var remotes []net.Conn
	for range echoes {
		local, remote := loopPair(t)
		echo(local, wire.ReadOptions{}, 0)
		remotes = append(remotes, remote)
	}
	for r := range rounds {
		f := frame(nil, payload(r, 8))
		for _, c := range append([]net.Conn{busyRemote, waitRemote}, remotes...) {
			if _, err := c.Write(f); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range remotes {
			readFrames(t, c, f)
		}
		release <- struct{}{}
	}
}

// TestLoopPartialFrames: frames sent in pieces that split them anywhere
// (one byte, a header, across two frames) come out whole and in order.
func TestLoopPartialFrames(t *testing.T) {
	local, remote := loopPair(t)
	_, done := echo(local, wire.ReadOptions{FrameTimeout: time.Minute, IdleTimeout: time.Minute}, 0)
	var stream []byte
	for i := range 40 {
		stream = frame(stream, payload(i, 1+i*997%40000)) // some over the pooled buffer
	}
	go func() {
		for rest, i := stream, 0; len(rest) > 0; i++ {
			n := min(len(rest), []int{1, 3, 4, 5, 700, 16 << 10, 9}[i%7])
			if _, err := remote.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
			if i%5 == 0 {
				time.Sleep(time.Millisecond) // a separate read
			}
		}
	}()
	readFrames(t, remote, stream)
	_ = remote.Close()
	if err := await(t, done, "after the peer closed"); !errors.Is(err, io.EOF) {
		t.Fatalf("Run returned %v, want io.EOF", err)
	}
}

// TestLoopPeerClosesMidFrame: a peer that closes in the middle of a frame
// ends its read loop with io.EOF after the whole frames before it, and
// gives back what the incomplete frame held of the buffer budget.
func TestLoopPeerClosesMidFrame(t *testing.T) {
	local, remote := loopPair(t)
	budget := wire.NewBudget(1 << 20)
	var handled atomic.Int32
	done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{Budget: budget}), func(*protocols.Message) error {
		handled.Add(1)
		return nil
	})
	whole := frame(frame(nil, payload(1, 10)), payload(2, 10))
	big := frame(nil, payload(3, 100<<10)) // grows the buffer past the pool's size
	if _, err := remote.Write(append(whole, big[:60<<10]...)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); budget.Used() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if budget.Used() == 0 {
		t.Fatal("the incomplete large frame never took from the budget")
	}
	_ = remote.Close()
	if err := await(t, done, "after the peer closed mid-frame"); !errors.Is(err, io.EOF) {
		t.Fatalf("Run returned %v, want io.EOF", err)
	}
	if n := handled.Load(); n != 2 {
		t.Errorf("handled %d frames, want the 2 whole ones", n)
	}
	if u := budget.Used(); u != 0 {
		t.Errorf("budget holds %d bytes after the read loop ended, want 0", u)
	}
}

// TestLoopMalformedFrameClosesOneConnection: a frame the codec rejects
// ends its own read loop with a DecodeError; another connection on the
// same loop goes on being served.
func TestLoopMalformedFrameClosesOneConnection(t *testing.T) {
	badLocal, badRemote := loopPair(t)
	goodLocal, goodRemote := loopPair(t)
	var rejected atomic.Int32
	bad := runReader(wire.NewReader(badLocal, lenCodec{maxFrame: 100},
		wire.ReadOptions{Reject: func([]byte, error) { rejected.Add(1) }}), func(*protocols.Message) error { return nil })
	_, good := echo(goodLocal, wire.ReadOptions{}, 0)
	if _, err := badRemote.Write(frame(nil, payload(0, 1000))); err != nil {
		t.Fatal(err)
	}
	var de *wire.DecodeError
	if err := await(t, bad, "after a malformed frame"); !errors.As(err, &de) {
		t.Fatalf("Run returned %v, want a *wire.DecodeError", err)
	}
	if rejected.Load() != 1 {
		t.Errorf("Reject called %d times, want 1", rejected.Load())
	}
	for i := range 10 {
		f := frame(nil, payload(i, 50))
		if _, err := goodRemote.Write(f); err != nil {
			t.Fatal(err)
		}
		readFrames(t, goodRemote, f)
	}
	_ = goodRemote.Close()
	if err := await(t, good, "the good connection"); !errors.Is(err, io.EOF) {
		t.Fatalf("the good connection's Run returned %v, want io.EOF", err)
	}
}

// TestLoopSlowReader: a peer that sends without reading its replies fills
// its Writer up to the pending limit, which closes that connection (the
// memory held for it stays bounded); the loop never waits for the peer,
// so another connection on it is served all the while.
func TestLoopSlowReader(t *testing.T) {
	slowLocal, slowRemote := loopPair(t)
	fastLocal, fastRemote := loopPair(t)
	const limit = 1 << 20
	_, slow := echo(slowLocal, wire.ReadOptions{}, limit)
	_, fast := echo(fastLocal, wire.ReadOptions{}, 0)
	chunk := frame(nil, payload(7, 64<<10))
	writeErr := make(chan error, 1)
	go func() {
		// Until the proxy side gives up: the socket buffers (a few MB
		// both ways on loopback) and the Writer's limit, then a reset.
		for {
			if _, err := slowRemote.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	for i := range 20 {
		f := frame(nil, payload(i, 100))
		if _, err := fastRemote.Write(f); err != nil {
			t.Fatal(err)
		}
		readFrames(t, fastRemote, f)
	}
	// The handler's Queue failed on the limit, which ends the read loop.
	if err := await(t, slow, "the peer that does not read"); err == nil || !strings.Contains(err.Error(), "not reading") {
		t.Fatalf("Run returned %v, want the pending limit's error", err)
	}
	select {
	case <-writeErr:
	case <-time.After(20 * time.Second):
		t.Fatal("the peer that does not read could still write after its connection ended")
	}
	_ = fastRemote.Close()
	if err := await(t, fast, "the fast connection"); !errors.Is(err, io.EOF) {
		t.Fatalf("the fast connection's Run returned %v, want io.EOF", err)
	}
}

// TestLoopHandlerThatWaits: a handler that waits (as a dial does) has the
// loop taken from it: the other connections on the loop are served while
// it waits, and its own later frames are handled, in order, once it is
// done.
func TestLoopHandlerThatWaits(t *testing.T) {
	slowLocal, slowRemote := loopPair(t)
	fastLocal, fastRemote := loopPair(t)
	handoffs := oneLoop().Handoffs()
	release := make(chan struct{})
	var order []byte
	slowDone := runReader(wire.NewReader(slowLocal, lenCodec{}, wire.ReadOptions{}), func(m *protocols.Message) error {
		order = append(order, m.Raw[4])
		if m.Raw[4] == 0 {
			<-release
		}
		if len(order) == 3 {
			return errStop
		}
		return nil
	})
	_, fast := echo(fastLocal, wire.ReadOptions{}, 0)
	if _, err := slowRemote.Write(frame(nil, payload(0, 1))); err != nil {
		t.Fatal(err)
	}
	// While the first handler waits: its connection's next frames, and
	// the other connection's round trips.
	if _, err := slowRemote.Write(append(frame(nil, payload(1, 1)), frame(nil, payload(2, 1))...)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		f := frame(nil, payload(i, 100))
		if _, err := fastRemote.Write(f); err != nil {
			t.Fatal(err)
		}
		readFrames(t, fastRemote, f)
	}
	// The other connection was served while the handler waited: the
	// watchdog handed the loop to a new goroutine, and counted it.
	if n := oneLoop().Handoffs(); n == handoffs {
		t.Errorf("Handoffs() = %d, unchanged by a handler that waited", n)
	}
	close(release)
	if err := await(t, slowDone, "after its handler stopped waiting"); !errors.Is(err, errStop) {
		t.Fatalf("Run returned %v, want errStop", err)
	}
	if !bytes.Equal(order, []byte{0, 1, 2}) {
		t.Errorf("frames handled in the order %v, want [0 1 2]", order)
	}
	// The loop still serves the other connection after the one it was
	// taken from came back and ended.
	f := frame(nil, payload(9, 10))
	if _, err := fastRemote.Write(f); err != nil {
		t.Fatal(err)
	}
	readFrames(t, fastRemote, f)
	_ = fastRemote.Close()
	if err := await(t, fast, "the fast connection"); !errors.Is(err, io.EOF) {
		t.Fatalf("the fast connection's Run returned %v, want io.EOF", err)
	}
}

// TestLoopWillWait: a handler that says it is about to wait
// (Reader.WillWait) has the loop handed to a new goroutine before it
// returns, without the watchdog's look, and the loop's other connection
// is served while it waits.
func TestLoopWillWait(t *testing.T) {
	slowLocal, slowRemote := loopPair(t)
	fastLocal, fastRemote := loopPair(t)
	before := oneLoop().Handoffs()
	release := make(chan struct{})
	handedOff := make(chan uint64, 1)
	slow := wire.NewReader(slowLocal, lenCodec{}, wire.ReadOptions{})
	slowDone := runReader(slow, func(*protocols.Message) error {
		slow.WillWait()
		handedOff <- oneLoop().Handoffs()
		<-release
		return errStop
	})
	_, fast := echo(fastLocal, wire.ReadOptions{}, 0)
	if _, err := slowRemote.Write(frame(nil, payload(0, 1))); err != nil {
		t.Fatal(err)
	}
	if n := <-handedOff; n == before {
		t.Errorf("Handoffs() = %d right after WillWait, unchanged", n)
	}
	f := frame(nil, payload(1, 100))
	if _, err := fastRemote.Write(f); err != nil {
		t.Fatal(err)
	}
	readFrames(t, fastRemote, f)
	close(release)
	if err := await(t, slowDone, "after its handler stopped waiting"); !errors.Is(err, errStop) {
		t.Fatalf("Run returned %v, want errStop", err)
	}
	_ = fastRemote.Close()
	if err := await(t, fast, "the fast connection"); !errors.Is(err, io.EOF) {
		t.Fatalf("the fast connection's Run returned %v, want io.EOF", err)
	}
}

// TestLoopTimeouts: the idle and frame timeouts end a read loop on the
// event loop as they do a goroutine's.
func TestLoopTimeouts(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		local, remote := loopPair(t)
		done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{IdleTimeout: 200 * time.Millisecond}),
			func(*protocols.Message) error { return nil })
		if _, err := remote.Write(frame(nil, payload(0, 10))); err != nil {
			t.Fatal(err)
		}
		if err := await(t, done, "an idle connection"); !errors.Is(err, wire.ErrIdleTimeout) {
			t.Fatalf("Run returned %v, want ErrIdleTimeout", err)
		}
	})
	t.Run("frame", func(t *testing.T) {
		local, remote := loopPair(t)
		done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{FrameTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour}),
			func(*protocols.Message) error { return nil })
		if _, err := remote.Write(frame(nil, payload(0, 10))[:6]); err != nil {
			t.Fatal(err)
		}
		if err := await(t, done, "a frame never finished"); !errors.Is(err, wire.ErrFrameTimeout) {
			t.Fatalf("Run returned %v, want ErrFrameTimeout", err)
		}
	})
	t.Run("busy", func(t *testing.T) {
		local, remote := loopPair(t)
		var busy atomic.Bool
		busy.Store(true)
		done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{IdleTimeout: 100 * time.Millisecond, Busy: busy.Load}),
			func(*protocols.Message) error { return nil })
		_ = remote
		select {
		case err := <-done:
			t.Fatalf("a busy connection ended: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		busy.Store(false)
		if err := await(t, done, "once no longer busy"); !errors.Is(err, wire.ErrIdleTimeout) {
			t.Fatalf("Run returned %v, want ErrIdleTimeout", err)
		}
	})
}

// TestLoopDrain: Drain ends a read loop on the event loop once it has read
// what the peer sent, with ErrDrained.
func TestLoopDrain(t *testing.T) {
	local, remote := loopPair(t)
	var handled atomic.Int32
	rd := wire.NewReader(local, lenCodec{}, wire.ReadOptions{IdleTimeout: time.Hour})
	done := runReader(rd, func(*protocols.Message) error {
		handled.Add(1)
		return nil
	})
	if _, err := remote.Write(frame(frame(nil, payload(0, 10)), payload(1, 10))); err != nil {
		t.Fatal(err)
	}
	rd.Drain(100 * time.Millisecond)
	if err := await(t, done, "a drained connection"); !errors.Is(err, wire.ErrDrained) {
		t.Fatalf("Run returned %v, want ErrDrained", err)
	}
	if n := handled.Load(); n != 2 {
		t.Errorf("handled %d frames before the drain ended the loop, want 2", n)
	}
}

// TestLoopBufferBudget: a frame that would grow the buffer past the budget
// ends its read loop with ErrBufferLimit.
func TestLoopBufferBudget(t *testing.T) {
	local, remote := loopPair(t)
	budget := wire.NewBudget(40 << 10)
	done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{Budget: budget}), func(*protocols.Message) error { return nil })
	go func() { _, _ = remote.Write(frame(nil, payload(0, 200<<10))) }()
	if err := await(t, done, "a frame over the budget"); !errors.Is(err, wire.ErrBufferLimit) {
		t.Fatalf("Run returned %v, want ErrBufferLimit", err)
	}
	if u := budget.Used(); u != 0 {
		t.Errorf("budget holds %d bytes after the read loop ended, want 0", u)
	}
}

// TestLoopLateReader: a peer that reads its replies only after the
// socket filled gets every byte: the Writer's write that found no room
// waits for the loop to report room (EPOLLOUT), then finishes.
func TestLoopLateReader(t *testing.T) {
	local, remote := loopPair(t)
	_, done := echo(local, wire.ReadOptions{}, 0)
	var stream []byte
	for i := range 256 {
		stream = frame(stream, payload(i, 32<<10)) // 8 MiB: more than loopback buffers hold
	}
	go func() { _, _ = remote.Write(stream) }()
	time.Sleep(300 * time.Millisecond) // the echo fills the socket meanwhile
	readFrames(t, remote, stream)
	_ = remote.Close()
	if err := await(t, done, "after the peer closed"); !errors.Is(err, io.EOF) {
		t.Fatalf("Run returned %v, want io.EOF", err)
	}
}
