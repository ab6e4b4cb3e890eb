//go:build !linux

package wire

import (
	"errors"
	"net"
)

// Loop is an event loop: Linux only (loop_linux.go). Elsewhere there is
// none, and every read loop runs in a goroutine of its own.
type Loop struct{}

// Loops is a set of event loops: none outside Linux.
type Loops struct{}

var errNoLoops = errors.New("wire: event loops need Linux (epoll)")

// SharedLoops fails outside Linux.
func SharedLoops(LoopOptions) (*Loops, error) { return nil, errNoLoops }

// NewLoops fails outside Linux.
func NewLoops(LoopOptions) (*Loops, error) { return nil, errNoLoops }

// Len returns 0.
func (*Loops) Len() int { return 0 }

// Pick returns nil: no loop.
func (*Loops) Pick(uint64) *Loop { return nil }

// Handoffs returns 0: no loop.
func (*Loops) Handoffs() uint64 { return 0 }

// RingEnters returns 0: no loop.
func (*Loops) RingEnters() uint64 { return 0 }

// Handoffs returns 0: no loop.
func (*Loop) Handoffs() uint64 { return 0 }

// Enroll returns nc: there is no loop outside Linux.
func (*Loop) Enroll(nc net.Conn) net.Conn { return nc }

// loopConn never exists outside Linux.
type loopConn struct {
	net.Conn
	rd *Reader
}

func (l *Reader) runLoop() error { return errNoLoops }

func (*loopConn) handOff() {}
