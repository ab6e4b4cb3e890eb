// Package capture puts a TCP relay between a Dubbo consumer and provider and
// records every Dubbo frame that crosses it, byte-exact, in both directions.
//
// A Dubbo frame is a 16-byte header followed by a body:
//
//	bytes 0-1   magic 0xda 0xbb
//	byte  2     flags: 0x80 request, 0x40 two-way, 0x20 event, low 5 bits serialization id
//	byte  3     status (responses; 20 = OK)
//	bytes 4-11  request id, big-endian int64
//	bytes 12-15 body length, big-endian int32
//
// The relay reads whole frames and forwards each unchanged, so what the
// other side receives is exactly what was recorded.
package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// HeaderLen is the length of a Dubbo frame header.
const HeaderLen = 16

// Header flag bits (byte 2).
const (
	FlagRequest = 0x80
	FlagTwoWay  = 0x40
	FlagEvent   = 0x20
	SerialMask  = 0x1f
)

// StatusOK is the OK response status.
const StatusOK = 20

// maxFrame bounds one recorded frame (Dubbo's default payload limit is 8 MiB).
const maxFrame = 16 << 20

// Direction of a frame through the relay.
type Direction int

// Directions.
const (
	ToProvider Direction = iota // consumer -> provider
	ToConsumer                  // provider -> consumer
)

func (d Direction) String() string {
	if d == ToProvider {
		return "consumer->provider"
	}
	return "provider->consumer"
}

// Frame is one recorded Dubbo frame.
type Frame struct {
	Seq   int       // order of arrival at the relay, from 0
	Conn  int       // relay connection number, from 0
	Dir   Direction // which way it went
	Bytes []byte    // the whole frame, header and body
	At    time.Time
}

// IsRequest reports the request flag.
func (f Frame) IsRequest() bool { return f.Bytes[2]&FlagRequest != 0 }

// IsTwoWay reports the two-way flag.
func (f Frame) IsTwoWay() bool { return f.Bytes[2]&FlagTwoWay != 0 }

// IsEvent reports the event (heartbeat) flag.
func (f Frame) IsEvent() bool { return f.Bytes[2]&FlagEvent != 0 }

// Serialization is the serialization id (2 = hessian2).
func (f Frame) Serialization() byte { return f.Bytes[2] & SerialMask }

// Status is the status byte.
func (f Frame) Status() byte { return f.Bytes[3] }

// ID is the request id.
func (f Frame) ID() int64 { return int64(binary.BigEndian.Uint64(f.Bytes[4:12])) }

// BodyLen is the body length from the header.
func (f Frame) BodyLen() int { return int(int32(binary.BigEndian.Uint32(f.Bytes[12:16]))) }

// Body is the frame's body.
func (f Frame) Body() []byte { return f.Bytes[HeaderLen:] }

// Describe summarises the header.
func (f Frame) Describe() string {
	kind := "response"
	switch {
	case f.IsRequest() && f.IsEvent():
		kind = "event request"
	case f.IsRequest() && f.IsTwoWay():
		kind = "two-way request"
	case f.IsRequest():
		kind = "oneway request"
	case f.IsEvent():
		kind = "event response"
	}
	s := fmt.Sprintf("flag 0x%02x (%s, serialization %d)", f.Bytes[2], kind, f.Serialization())
	if !f.IsRequest() {
		s += fmt.Sprintf(", status %d", f.Status())
	} else {
		s += fmt.Sprintf(", status byte %d", f.Status())
	}
	return s + fmt.Sprintf(", id %d, body %d bytes", f.ID(), f.BodyLen())
}

// Relay accepts consumer connections on a loopback port and relays each to
// the provider at Target over a connection of its own.
type Relay struct {
	Target string

	ln     net.Listener
	mu     sync.Mutex
	cond   *sync.Cond
	frames []Frame
	conns  int
	errs   []error
	closed bool
	open   []net.Conn
	wg     sync.WaitGroup
}

// NewRelay listens on 127.0.0.1 (a free port) and relays to target.
func NewRelay(target string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{Target: target, ln: ln}
	r.cond = sync.NewCond(&r.mu)
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the address consumers should dial.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Frames returns a copy of everything recorded so far, in arrival order.
func (r *Relay) Frames() []Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Frame(nil), r.frames...)
}

// Conns is the number of consumer connections accepted so far.
func (r *Relay) Conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// Errors returns framing errors seen (a stream that is not Dubbo).
func (r *Relay) Errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// WaitFor waits until a recorded frame with Seq >= from satisfies match, and
// returns it.
func (r *Relay) WaitFor(from int, timeout time.Duration, match func(Frame) bool) (Frame, error) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer t.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for _, f := range r.frames {
			if f.Seq >= from && match(f) {
				return f, nil
			}
		}
		if r.closed || time.Now().After(deadline) {
			return Frame{}, errors.New("capture: no matching frame before timeout")
		}
		r.cond.Wait()
	}
}

// Len is the number of frames recorded so far.
func (r *Relay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// Close stops accepting, closes every relayed connection and waits for the
// relay's goroutines.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	open := r.open
	r.open = nil
	r.cond.Broadcast()
	r.mu.Unlock()
	err := r.ln.Close()
	for _, c := range open {
		c.Close()
	}
	r.wg.Wait()
	return err
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		down, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.Target)
		if err != nil {
			down.Close()
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		id := r.conns
		r.conns++
		r.open = append(r.open, down, up)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(id, ToProvider, down, up)
		go r.pipe(id, ToConsumer, up, down)
	}
}

// pipe copies src to dst frame by frame, recording each frame.
func (r *Relay) pipe(conn int, dir Direction, src, dst net.Conn) {
	defer r.wg.Done()
	defer dst.Close()
	defer src.Close()
	hdr := make([]byte, HeaderLen)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		if hdr[0] != 0xda || hdr[1] != 0xbb {
			r.fail(fmt.Errorf("conn %d %s: bad magic % x", conn, dir, hdr[:2]))
			_, _ = dst.Write(hdr)
			_, _ = io.Copy(dst, src)
			return
		}
		n := int(int32(binary.BigEndian.Uint32(hdr[12:16])))
		if n < 0 || n > maxFrame {
			r.fail(fmt.Errorf("conn %d %s: body length %d", conn, dir, n))
			_, _ = dst.Write(hdr)
			_, _ = io.Copy(dst, src)
			return
		}
		frame := make([]byte, HeaderLen+n)
		copy(frame, hdr)
		if _, err := io.ReadFull(src, frame[HeaderLen:]); err != nil {
			r.fail(fmt.Errorf("conn %d %s: short body: %v", conn, dir, err))
			return
		}
		r.mu.Lock()
		r.frames = append(r.frames, Frame{Seq: len(r.frames), Conn: conn, Dir: dir, Bytes: frame, At: time.Now()})
		r.cond.Broadcast()
		r.mu.Unlock()
		if _, err := dst.Write(frame); err != nil {
			return
		}
	}
}

func (r *Relay) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}
